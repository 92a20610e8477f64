"""The project owner's read-only view of the whole project (human token): what the console shows.

Everything here is ciphertext and routing, exactly as agents get it: the owner decrypts in the
browser with the project key, which the server never holds. Another user's project is a 404, an
agent key a 401 (these routes take only a user's access token). Opening the message list (its
first page) and the stream is recorded in the audit log.
"""

from __future__ import annotations

import falcon.asgi

from .. import params
from ..cdn.signing import UrlSigner
from ..errors import Problem
from ..realtime.hub import Hub
from ..store.documents import AgentDoc
from . import Context, actor, page_body
from .files import FileUrls, files_page
from .kv import entries_page
from .projects import owned_project
from .realtime import Stream, last_event_id, max_duration
from .refs import refs_page


class Messages:
    """``GET /v1/projects/{project_id}/messages``: every message of the project, as ciphertext."""

    auth = "human"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str) -> None:
        """Page through the project's messages in storage order, with the inbox's filters plus ``agent``."""
        await owned_project(self._ctx, req, project_id)
        agent_slug = params.slug(req, "agent")
        since = params.timestamp(req, "since")
        status = params.choice(req, "status", ("unread", "read", "acked"))
        sender_slug = params.slug(req, "from")
        message_type = params.choice(req, "type", ("request", "response", "notification"))
        pinned = params.boolean(req, "pinned")
        limit = params.limit(req)
        cursor = params.cursor(req)
        if cursor is None:
            # The first page is the owner opening the project's traffic; later pages only follow it.
            target = f"project:{project_id}"
            await self._ctx.services.audit.record(actor(req), project_id, "owner.messages.read", target)
        data, next_cursor = await self._ctx.services.messaging.project_page(
            project_id,
            agent_slug=agent_slug,
            since=since,
            status=status,
            sender_slug=sender_slug,
            message_type=message_type,
            pinned=pinned,
            limit=limit,
            cursor=cursor,
        )
        resp.media = page_body(data, next_cursor)


class MessageReceipts:
    """``GET /v1/projects/{project_id}/messages/{message_id}/receipts``: where each recipient's copy is."""

    auth = "human"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str, message_id: str
    ) -> None:
        """List each recipient's receipt (queued, delivered, read, acked, with times), as agents see them."""
        await owned_project(self._ctx, req, project_id)
        params.path_id(message_id, "Message")
        resp.media = {"data": await self._ctx.services.messaging.project_receipts(project_id, message_id)}


class _NoPresence:
    """The owner is not an agent: watching the project does not make anyone online."""

    async def connect(self, agent: AgentDoc) -> str:
        return ""

    async def disconnect(self, lease_id: str) -> None:
        return None


class OwnerStream(Stream):
    """``GET /v1/projects/{project_id}/stream``: every event of the project, as Server-Sent Events.

    The agent stream's machinery (replay after Last-Event-ID, then live, in ``seq`` order, with
    heartbeats and a bounded duration), subscribed for every event of the project. A stream
    lasts at most as long as an access token, so that a signed-out owner's stream does not
    outlive the token that opened it; the console reconnects with a fresh one and loses nothing.
    """

    auth = "human"

    def __init__(self, ctx: Context, hub: Hub) -> None:
        super().__init__(ctx, hub, _NoPresence())  # type: ignore[arg-type]

    async def on_get(  # type: ignore[override]
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str
    ) -> None:
        """Open the stream: replay what the owner missed, then follow live."""
        await owned_project(self._ctx, req, project_id)
        settings = self._ctx.settings
        last = last_event_id(req)
        duration = max_duration(req, min(settings.stream_max_duration_s, settings.access_token_ttl_s))
        if self._hub.draining:
            raise Problem(503, "SERVER_DRAINING", "This server is stopping; reconnect.", headers={"Retry-After": "1"})
        await self._ctx.services.audit.record(actor(req), project_id, "owner.stream.open", f"project:{project_id}")
        listener, settled = await self._hub.subscribe(project_id, None)
        resp.set_header("Cache-Control", "no-cache")
        resp.set_header("X-Accel-Buffering", "no")
        resp.sse = self._events(listener, "", settled, last, duration)


class Presence:
    """``GET /v1/projects/{project_id}/presence``: the project's agents that are online."""

    auth = "human"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str) -> None:
        """List agents holding a stream, then agents seen recently through requests."""
        await owned_project(self._ctx, req, project_id)
        resp.media = {"data": await self._ctx.services.agents.online(project_id)}


class Kv:
    """``GET /v1/projects/{project_id}/kv``: the project's key-value entries (values are envelopes)."""

    auth = "human"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str) -> None:
        """List entries in key order."""
        await owned_project(self._ctx, req, project_id)
        resp.media = await entries_page(self._ctx, req, project_id)


class Refs:
    """``GET /v1/projects/{project_id}/refs``: every code reference of the project, direct ones included."""

    auth = "human"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str) -> None:
        """List references in storage order."""
        await owned_project(self._ctx, req, project_id)
        resp.media = await refs_page(self._ctx, req, project_id, None)


class Files:
    """``GET /v1/projects/{project_id}/files``: the project's ready files, each with a signed download URL."""

    auth = "human"

    def __init__(self, ctx: Context, signer: UrlSigner) -> None:
        self._ctx = ctx
        self._urls = FileUrls(signer)

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str) -> None:
        """List ready files in id order."""
        await owned_project(self._ctx, req, project_id)
        resp.media = await files_page(self._ctx, req, project_id, self._urls)
