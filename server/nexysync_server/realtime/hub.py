"""Fan events out to this process's streams, per project, strictly in ``seq`` order.

Events reach the hub from three sources: the request that wrote them (fast path, this process
only), the change-stream watcher (every process), and the sweeper, which reads the log by
``seq`` to fill gaps and to cover a watcher that missed something. The same event may arrive
several times and out of order; the hub releases each ``seq`` once, after every smaller one.
A ``seq`` that stays missing for ``gap_wait_s`` was lost by its writer and is skipped.

Each listener's queue is bounded: a stream that falls that far behind is ended with
:data:`OVERFLOW` instead of growing without end, and its client resumes from the log with
Last-Event-ID, losing nothing. A ``key_revoked`` event (written when a key is rotated or its agent
or project deleted) ends the streams of that key with :data:`REVOKED`, in ``seq`` order, so no
event after it reaches them.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..background import Periodic
from ..ids import utcnow
from ..metrics import (
    DATABASE_ERRORS,
    EVENTS_DELIVERED,
    FANOUT_DURATION,
    STREAMS_CAP,
    STREAMS_ENDED,
    STREAMS_OPEN,
)
from ..store.documents import EventDoc
from ..store.events import EventStore, contiguous, visible_to
from ..store.failures import DatabaseError

log = logging.getLogger(__name__)

# How many recent seqs a new feed checks for writes still in flight.
_OPEN_WINDOW = 256
_SWEEP_BATCH = 500

#: Queue markers that end a stream: it fell too far behind, or its key was revoked.
OVERFLOW = "overflow"
REVOKED = "revoked"
#: The event type that revokes a key; addressed to nobody, so no client is ever sent it.
KEY_REVOKED = "key_revoked"
#: ``agent_id`` of a ``key_revoked`` event that revokes every key of the project (it was deleted).
ALL_AGENTS = "*"


#: The ``reason`` label of a stream the server ends, by the marker that ends it.
_END_REASONS: dict[str | None, str] = {OVERFLOW: "slow_consumer", REVOKED: "revoked", None: "stopping"}


class Mailbox:
    """A stream's queue: what ``asyncio.Queue`` does for one reader, in a tenth of its memory.

    An idle stream holds its queue for hours; ``asyncio.Queue`` keeps three deques (about 2.2 KiB
    together, a tenth of an idle stream's cost). This keeps no container while empty and one
    future while its reader waits. Unbounded: :meth:`Listener.offer` bounds it. One reader only.
    """

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: collections.deque[EventDoc | str | None] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def qsize(self) -> int:
        """Return how many items wait."""
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        """Say whether nothing waits."""
        return not self._items

    def put_nowait(self, item: EventDoc | str | None) -> None:
        """Add an item and wake the reader."""
        if self._items is None:
            self._items = collections.deque()
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def get_nowait(self) -> EventDoc | str | None:
        """Take the first item.

        Raises:
            asyncio.QueueEmpty: nothing waits.
        """
        if not self._items:
            raise asyncio.QueueEmpty
        item = self._items.popleft()
        if not self._items:
            self._items = None  # an idle stream keeps no deque
        return item

    async def get(self) -> EventDoc | str | None:
        """Wait for an item and take it (cancellable: nothing is taken then)."""
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self.get_nowait()


@dataclass(eq=False)
class Listener:
    """One stream's subscription: the events addressed to its agent (all, for the owner: ``None``), in order.

    ``queue`` holds events in order, then possibly one marker that ends the stream: ``None`` (the
    server is stopping), :data:`OVERFLOW` or :data:`REVOKED`.
    """

    project_id: str
    agent_id: str | None
    #: The API key (its hash) an agent's stream was opened with, or "".
    key_hash: str = ""
    queue_max: int = 0
    #: The sign-in session an owner's stream was opened in, or "".
    session_id: str = ""
    queue: Mailbox = field(init=False, default_factory=Mailbox)
    ended: bool = False

    def offer(self, event: EventDoc) -> bool:
        """Queue an event; end the stream with :data:`OVERFLOW` when its queue is full.

        Returns:
            Whether the event was queued (the hub counts them once per event, not per stream:
            a metric's update costs more than the queueing).
        """
        if self.ended:
            return False
        if self.queue_max and self.queue.qsize() >= self.queue_max:
            self.end(OVERFLOW)
            return False
        self.queue.put_nowait(event)
        return True

    def end(self, marker: str | None) -> None:
        """End the stream after what it has queued (``None``), or at once, dropping the queue (a reason)."""
        if self.ended:
            return
        self.ended = True
        STREAMS_ENDED.labels(_END_REASONS.get(marker, "other")).inc()
        if marker is not None:
            # What was queued is not sent: the client gets it again from the log when it resumes.
            while not self.queue.empty():
                self.queue.get_nowait()
        self.queue.put_nowait(marker)


@dataclass(eq=False)
class _Feed:
    delivered: int
    pending: dict[int, EventDoc] = field(default_factory=dict)
    listeners: set[Listener] = field(default_factory=set)
    gap_since: float | None = None


class Hub:
    """Order and fan out events to the listeners of this process.

    Args:
        events: The event log.
        gap_wait_s: How long to wait for a missing ``seq`` before taking it as lost.
        sweep_interval_s: How often to read the log for events the watcher did not bring.
        queue_max: The most events a stream may have waiting (0: no bound).
        max_listeners: The most streams this process holds at once (0: no bound); see :attr:`full`.
    """

    def __init__(
        self,
        events: EventStore,
        gap_wait_s: float,
        sweep_interval_s: float,
        queue_max: int = 0,
        max_listeners: int = 0,
    ) -> None:
        self._events = events
        self._queue_max = queue_max
        self._max_listeners = max_listeners
        self._listener_count = 0
        STREAMS_CAP.set(max_listeners)
        self._gap_wait_s = gap_wait_s
        self._sweep_interval_s = sweep_interval_s
        self._feeds: dict[str, _Feed] = {}
        self._opening: dict[str, asyncio.Lock] = {}
        self._last_full_sweep = 0.0
        # Ticks often enough to catch a gap at half the gap wait.
        tick = min(sweep_interval_s, gap_wait_s / 4)
        self._sweeper = Periodic("event-sweeper", self._sweep_due, tick)
        self._has_listeners = asyncio.Event()
        self._revoked_callbacks: list[Callable[[str | None], None]] = []
        self.draining = False

    async def subscribe(
        self, project_id: str, agent_id: str | None, key_hash: str = "", *, session_id: str = ""
    ) -> tuple[Listener, int]:
        """Register a listener; return it and the ``seq`` up to which events are settled.

        Every event above that ``seq`` will reach the listener's queue (if addressed to its
        agent); everything up to it is in the log, so a reconnecting stream replays that part
        from the database and the rest live, with neither gap nor overlap.
        """
        feed = self._feeds.get(project_id)
        if feed is None:
            lock = self._opening.setdefault(project_id, asyncio.Lock())
            async with lock:
                feed = self._feeds.get(project_id)
                if feed is None:
                    feed = await self._open(project_id)
                    self._feeds[project_id] = feed
        listener = Listener(project_id, agent_id, key_hash, self._queue_max, session_id)
        feed.listeners.add(listener)
        self._listener_count += 1
        STREAMS_OPEN.labels(_kind(listener)).inc()
        self._has_listeners.set()
        return listener, feed.delivered

    async def emit(self, project_id: str, kind: str, recipients: list[str], data: dict[str, Any]) -> EventDoc:
        """Append an event to the log and hand it to this process's streams at once."""
        event = await self._events.append(project_id, kind, recipients, data)
        self.publish(event)
        return event

    async def revoke(self, project_id: str, agent_id: str = ALL_AGENTS, key_hash: str | None = None) -> None:
        """End the open streams of a revoked key (or of a whole project) on every worker.

        Call it after the key stopped working: it is written to the event log, so every event
        after it in ``seq`` order finds those streams closed.
        """
        await self.emit(project_id, KEY_REVOKED, [], {"agent_id": agent_id, "key_hash": key_hash})

    def unsubscribe(self, listener: Listener) -> None:
        """Remove a listener; forget the project when it was the last one."""
        feed = self._feeds.get(listener.project_id)
        if feed is None or listener not in feed.listeners:
            return
        feed.listeners.discard(listener)
        self._listener_count -= 1
        STREAMS_OPEN.labels(_kind(listener)).dec()
        if not feed.listeners:
            del self._feeds[listener.project_id]
            self._opening.pop(listener.project_id, None)
            if not self._feeds:
                self._has_listeners.clear()

    def drain(self) -> None:
        """End every stream of this process: each listener gets ``None`` after its queued events."""
        self.draining = True
        for listener in self.listeners():
            listener.end(None)

    def listeners(self) -> list[Listener]:
        """Return every listener of this process."""
        return [listener for feed in self._feeds.values() for listener in feed.listeners]

    @property
    def full(self) -> bool:
        """Tell whether this process holds as many streams as it may: a new one should go elsewhere.

        A stream that is refused here costs its client one retry on another worker (or server);
        one accepted past what a worker can carry slows every stream of that worker.
        """
        return bool(self._max_listeners) and self._listener_count >= self._max_listeners

    def has_listeners(self) -> bool:
        """Tell whether any stream of this process is open."""
        return bool(self._feeds)

    async def wait_for_listeners(self) -> None:
        """Return once a stream of this process is open."""
        await self._has_listeners.wait()

    def on_revoked(self, callback: Callable[[str | None], None]) -> None:
        """Call ``callback(key_hash)`` for every ``key_revoked`` event seen (``None``: the whole project).

        Caches of keys and slugs hang here, so another worker's revocation reaches them as soon
        as its event does, whether or not this process has a stream of that project.
        """
        self._revoked_callbacks.append(callback)

    def publish(self, event: EventDoc) -> bool:
        """Take an event from any source; release it and whatever it unblocks, in order.

        Returns:
            Whether it was news to this process's streams: ``False`` when none follows its project
            or the event came already (this process wrote it, or another source was first).
        """
        if event["type"] == KEY_REVOKED:
            data = event.get("data") or {}
            for callback in self._revoked_callbacks:
                callback(None if data.get("agent_id") == ALL_AGENTS else data.get("key_hash"))
        feed = self._feeds.get(event["project_id"])
        if feed is None:
            return False
        seq = event["seq"]
        if seq <= feed.delivered or seq in feed.pending:
            return False
        feed.pending[seq] = event
        self._release(feed)
        return True

    def _release(self, feed: _Feed) -> None:
        while (feed.delivered + 1) in feed.pending:
            event = feed.pending.pop(feed.delivered + 1)
            feed.delivered = event["seq"]
            if event["type"] == KEY_REVOKED:
                _revoke(feed.listeners, event["data"])
                continue
            started = time.perf_counter()
            queued = 0
            for listener in feed.listeners:
                if visible_to(event, listener.agent_id) and listener.offer(event):
                    queued += 1
            if queued:
                EVENTS_DELIVERED.labels(event["type"]).inc(queued)
            FANOUT_DURATION.observe(time.perf_counter() - started)
        if feed.pending:
            if feed.gap_since is None:
                feed.gap_since = time.monotonic()
        else:
            feed.gap_since = None

    async def _open(self, project_id: str) -> _Feed:
        latest = await self._events.latest_seq(project_id)
        start = max(0, latest - _OPEN_WINDOW)
        recent = await self._events.after(project_id, start, _OPEN_WINDOW + 1, upto=latest)
        taken, passed = contiguous(recent, start, utcnow(), self._gap_wait_s)
        feed = _Feed(delivered=passed)
        for event in recent[len(taken) :]:
            feed.pending[event["seq"]] = event
        self._release(feed)
        return feed

    def start(self) -> None:
        """Start the sweeper in the background."""
        self._sweeper.start()

    async def stop(self) -> None:
        """Stop the sweeper."""
        await self._sweeper.stop()

    async def _sweep_due(self) -> None:
        """Sweep every project once per sweep interval, and one with a gap at half the gap wait."""
        now = time.monotonic()
        full = now - self._last_full_sweep >= self._sweep_interval_s
        if full:
            self._last_full_sweep = now
        for project_id, feed in list(self._feeds.items()):
            gap_due = feed.gap_since is not None and now - feed.gap_since >= self._gap_wait_s / 2
            if not (full or gap_due):
                continue
            try:
                await self.sweep(project_id)
            except DatabaseError as exc:
                DATABASE_ERRORS.labels("sweeper").inc()
                # The database is down or restarting: one line per attempt, not a traceback.
                log.warning("reading the event log of project %s failed (%s); retrying", project_id, exc)
            except Exception:
                log.exception("reading the event log of project %s failed; retrying", project_id)

    async def catch_up(self) -> None:
        """Read every followed project's log after what was released (the watcher was away)."""
        for project_id in list(self._feeds):
            await self.sweep(project_id)

    async def sweep(self, project_id: str) -> None:
        """Read the project's log after what was delivered: fill gaps, skip lost ``seq``s."""
        feed = self._feeds.get(project_id)
        if feed is None:
            return
        events = await self._events.after(project_id, feed.delivered, _SWEEP_BATCH)
        for event in events:
            self.publish(event)
        feed = self._feeds.get(project_id)
        if feed is None or feed.gap_since is None:
            return
        if time.monotonic() - feed.gap_since >= self._gap_wait_s and feed.pending:
            # The missing seq was taken by a writer that never wrote it: move past it.
            lost_upto = min(feed.pending) - 1
            log.warning("project %s: events %d..%d never arrived; skipping", project_id, feed.delivered + 1, lost_upto)
            feed.delivered = lost_upto
            feed.gap_since = None
            self._release(feed)


def _kind(listener: Listener) -> str:
    """The ``kind`` label of a listener's stream: an agent's, or a project owner's."""
    return "owner" if listener.agent_id is None else "agent"


def _revoke(listeners: set[Listener], data: dict[str, Any]) -> None:
    """End the streams a ``key_revoked`` event names: one key of an agent, or every agent's."""
    for listener in listeners:
        if data.get("agent_id") == ALL_AGENTS or (
            listener.agent_id == data.get("agent_id") and listener.key_hash == data.get("key_hash")
        ):
            listener.end(REVOKED)
