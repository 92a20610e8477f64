"""The project owner's read-only view of the whole project (human token): what the console shows.

Everything here is ciphertext and routing, exactly as agents get it: the owner decrypts in the
browser with the project key, which the server never holds. Another user's project is a 404, an
agent key a 401 (these routes take only a user's access token). Opening the message list (its
first page) and the stream is recorded in the audit log.
"""

from __future__ import annotations

import time

import falcon.asgi

from .. import caller, params, views
from ..cdn.signing import UrlSigner
from ..realtime.hub import Hub
from ..services.presence import TooManyStreams
from . import Context, actor, page_body
from .files import FileUrls, files_page
from .kv import entries_page
from .projects import owned_project
from .realtime import Stream, admit, last_event_id, max_duration, stream_limit
from .refs import refs_page
from .tasks import tasks_page


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


class OwnerStream(Stream):
    """``GET /v1/projects/{project_id}/stream``: every event of the project, as Server-Sent Events.

    The agent stream's machinery (replay after Last-Event-ID, then live, in ``seq`` order, with
    heartbeats and a bounded duration), subscribed for every event of the project. A stream
    ends when the access token that opened it expires (its own ``exp``), and within the key
    check's interval of its session being signed out; the console reconnects with a fresh token
    and loses nothing. A user holds at most ``max_owner_streams_per_user`` at once.
    """

    auth = "human"

    def __init__(self, ctx: Context, hub: Hub) -> None:
        super().__init__(ctx, hub, ctx.services.owner_streams)

    async def on_get(  # type: ignore[override]
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str
    ) -> None:
        """Open the stream: replay what the owner missed, then follow live."""
        await owned_project(self._ctx, req, project_id)
        settings = self._ctx.settings
        access = caller.access(req)
        last = last_event_id(req)
        token_left = access.expires_at - time.time()
        duration = max_duration(req, max(0.1, min(settings.stream_max_duration_s, token_left)))
        admit(self._hub)
        owner_streams = self._ctx.services.owner_streams
        try:
            lease_id = await owner_streams.connect(access.user_id)
        except TooManyStreams as exc:
            raise stream_limit(
                f"You hold {owner_streams.max_per_user} open project streams, as many as you may; close one "
                "(a stream that died is let go within a lease).",
                settings.presence_lease_s,
                "owner_streams_per_user",
            ) from exc
        try:
            await self._ctx.services.audit.record(actor(req), project_id, "owner.stream.open", f"project:{project_id}")
            listener, settled = await self._hub.subscribe(project_id, None, session_id=access.session_id)
        except BaseException:
            await owner_streams.disconnect(lease_id)
            raise
        resp.set_header("Cache-Control", "no-cache")
        resp.set_header("X-Accel-Buffering", "no")
        resp.sse = self._events(listener, lease_id, settled, last, duration)


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


class Leases:
    """``GET /v1/projects/{project_id}/leases``: the project's live path leases."""

    auth = "human"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str) -> None:
        """List live leases, oldest first."""
        await owned_project(self._ctx, req, project_id)
        resp.media = {"data": [views.lease(doc) for doc in await self._ctx.services.path_leases.live(project_id)]}


class Tasks:
    """``GET /v1/projects/{project_id}/tasks``: the project's task board."""

    auth = "human"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str) -> None:
        """List tasks, oldest first."""
        await owned_project(self._ctx, req, project_id)
        resp.media = await tasks_page(self._ctx, req, project_id, assignee=None)


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
