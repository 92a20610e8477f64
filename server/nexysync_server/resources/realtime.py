"""The event stream (SSE), its polling fallback and presence (agent key)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Protocol

import falcon.asgi
from falcon.asgi import SSEvent

from .. import caller, params, views
from ..errors import Problem
from ..ids import stored_at
from ..metrics import EVENT_LAG, LIMIT_REFUSALS
from ..realtime.hub import OVERFLOW, REVOKED, Hub, Listener
from ..services.feed import resume
from ..services.presence import TooManyStreams
from ..store.documents import AgentRef, EventBody
from . import Context

_DECIMAL_RE = re.compile(r"^[0-9]+(\.[0-9]+)?$")


def last_event_id(req: falcon.asgi.Request) -> int | None:
    """Read the resume point: the Last-Event-ID header, else ``?last_event_id=`` (both checked)."""
    header = req.get_header("Last-Event-ID")
    if header is not None and not params.SEQ_RE.match(header):
        raise Problem(400, "INVALID_PARAMETER", "Last-Event-ID must be the seq of an event (up to 15 digits).")
    from_query = params.seq(req, "last_event_id")
    return int(header) if header is not None else from_query


def max_duration(req: falcon.asgi.Request, limit: float) -> float:
    raw = req.get_param("max_duration_s")
    if raw is None:
        return limit
    if not _DECIMAL_RE.match(raw) or not 0.1 <= float(raw) <= 86400:
        raise Problem(400, "INVALID_PARAMETER", "Query parameter 'max_duration_s' must be a number from 0.1 to 86400.")
    return min(float(raw), limit)


def stream_limit(detail: str, lease_s: float, limit_name: str) -> Problem:
    """Return the 429 of a stream past its limit: retry once a dead stream's lease can have run out."""
    LIMIT_REFUSALS.labels(limit_name).inc()
    return Problem(429, "STREAM_LIMIT", detail, headers={"Retry-After": str(max(1, int(lease_s)))})


def _sse(event: EventBody) -> SSEvent:
    return SSEvent(event=event["type"], event_id=str(event["seq"]), json=views.event(event))


#: The ``Retry-After`` of a stream refused because its worker is full, in seconds.
BUSY_RETRY_S = 1


def admit(hub: Hub) -> None:
    """Refuse a new stream with 503 when this worker is stopping or holds as many as it may.

    Either way the client (or HAProxy, which retries a 503 on another server) should open it
    elsewhere soon: ``Retry-After`` says when. A full worker refuses streams only; its requests
    are still served.
    """
    if hub.draining:
        raise Problem(503, "SERVER_DRAINING", "This server is stopping; reconnect.", headers={"Retry-After": "1"})
    if hub.full:
        LIMIT_REFUSALS.labels("streams_per_worker").inc()
        raise Problem(
            503,
            "SERVER_BUSY",
            "This server process holds as many streams as it may (NEXYSYNC_MAX_STREAMS_PER_WORKER); "
            "reconnect, and you will be served by another one.",
            headers={"Retry-After": str(BUSY_RETRY_S)},
        )


class _Places(Protocol):
    """What holds a stream's place while it is open (the agent's presence, the owner's streams)."""

    async def disconnect(self, lease_id: str) -> None:
        """Give the stream's place back."""


class Stream:
    """``GET /v1/stream``: the caller's events, pushed as Server-Sent Events."""

    auth = "agent"

    def __init__(self, ctx: Context, hub: Hub, places: _Places) -> None:
        self._ctx = ctx
        self._hub = hub
        self._places = places

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Open the stream: replay what the caller missed, then follow live."""
        last = last_event_id(req)
        duration = max_duration(req, self._ctx.settings.stream_max_duration_s)
        admit(self._hub)
        agent = caller.agent(req)
        settings = self._ctx.settings
        listener, settled = await self._hub.subscribe(agent["project_id"], agent["_id"], agent["key_hash"])
        try:
            lease_id = await self._ctx.services.presence.connect(agent, settings.max_streams_per_agent)
        except TooManyStreams as exc:
            self._hub.unsubscribe(listener)
            raise stream_limit(
                f"This agent holds {settings.max_streams_per_agent} open streams, as many as it may; "
                "close one (a stream that died is let go within a heartbeat or a lease).",
                settings.presence_lease_s,
                "streams_per_agent",
            ) from exc
        except BaseException:
            self._hub.unsubscribe(listener)
            raise
        resp.set_header("Cache-Control", "no-cache")
        # Tells nginx-style proxies not to buffer; HAProxy streams as is.
        resp.set_header("X-Accel-Buffering", "no")
        resp.sse = self._events(listener, lease_id, settled, last, duration, agent)

    async def _events(
        self,
        listener: Listener,
        lease_id: str,
        settled: int,
        last: int | None,
        duration: float,
        agent: AgentRef | None = None,
    ) -> AsyncIterator[SSEvent]:
        """The stream's events; ``agent``: whose stream it is (``None``: an owner's, which receives no message)."""
        settings = self._ctx.settings
        receipts = self._ctx.services.receipts
        deadline = time.monotonic() + duration
        try:
            yield SSEvent(retry=settings.stream_retry_ms, comment="connected")
            sent = settled if last is None else last
            async for missed in self._ctx.services.feed.missed(listener.project_id, listener.agent_id, settled, last):
                sent = missed["seq"]
                yield _sse(missed)
                if agent is not None:
                    receipts.handed_over(agent, [missed])
            sent = max(sent, settled)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                try:
                    # asyncio.timeout, not wait_for: wait_for wraps the get in a new task each
                    # time, which a broadcast to thousands of streams pays thousands of times.
                    async with asyncio.timeout(min(settings.heartbeat_s, remaining)):
                        item = await listener.queue.get()
                except TimeoutError:
                    # A heartbeat: keeps proxies from closing an idle stream, and is how a dead
                    # client is noticed (the server learns of a closed socket only when it writes).
                    yield SSEvent(comment="heartbeat")
                    continue
                if item is None:
                    # The server is stopping: end cleanly so the client reconnects at once.
                    yield SSEvent(comment="server stopping; reconnect with Last-Event-ID")
                    return
                if item == OVERFLOW:
                    # Too far behind to buffer: what it missed is in the log, from ``sent`` on.
                    yield _sse(resume(sent))
                    return
                if item == REVOKED:
                    yield SSEvent(comment="the credentials that opened this stream were revoked or signed out")
                    return
                if not isinstance(item, dict):
                    raise TypeError(f"unexpected stream marker {item!r}")
                event = item
                if event["seq"] <= sent:
                    continue
                sent = event["seq"]
                yield _sse(event)
                # Resumed once the event is written: a message it carries is in the agent's hands.
                if agent is not None:
                    receipts.handed_over(agent, [event])
                EVENT_LAG.observe(max(0.0, time.time() - stored_at(event["created_at"])))
        finally:
            self._hub.unsubscribe(listener)
            await self._places.disconnect(lease_id)


class Events:
    """``GET /v1/events``: the same events for clients that poll."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Return the caller's events after ``after``, never past a ``seq`` still in flight."""
        after = params.seq(req, "after") or 0
        limit = params.limit(req)
        agent = caller.agent(req)
        taken, passed, reset = await self._ctx.services.feed.poll(agent["project_id"], agent["_id"], after, limit)
        resp.media = {"data": [views.event(event) for event in taken], "last_seq": passed, "reset": reset}
        self._ctx.services.receipts.handed_over(agent, taken)


class PresenceList:
    """``GET /v1/presence``: the project's agents that are online."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """List agents holding a stream, then agents seen recently through requests."""
        resp.media = {"data": await self._ctx.services.agents.online(caller.agent(req)["project_id"])}
