"""Messages (agent key): send, inbox, read, ack, thread, reactions and pins."""

from __future__ import annotations

import falcon
import falcon.asgi

from .. import caller, params
from . import Context, page_body


class Collection:
    """``/v1/messages``."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """List the caller's inbox in storage order; what it lists is delivered."""
        views, next_cursor = await self._ctx.services.messaging.inbox(
            caller.agent(req),
            since=params.timestamp(req, "since"),
            status=params.choice(req, "status", ("unread", "read", "acked")),
            sender_slug=params.slug(req, "from"),
            message_type=params.choice(req, "type", ("request", "response", "notification")),
            pinned=params.boolean(req, "pinned"),
            limit=params.limit(req),
            cursor=params.cursor(req),
        )
        resp.media = page_body(views, next_cursor)

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Store a direct message or a broadcast (idempotent by client-made id)."""
        body = await self._ctx.body(req, "MessageCreate")
        view, created = await self._ctx.services.messaging.send(caller.agent(req), body)
        if created:
            resp.status = falcon.HTTP_201
            resp.location = f"/v1/messages/{view['id']}"
        resp.media = view


class Item:
    """``/v1/messages/{message_id}``."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, message_id: str) -> None:
        """Return a message: delivered to the caller, and read unless ``mark_read=false``."""
        mark_read = params.boolean(req, "mark_read")
        params.path_id(message_id, "Message")
        resp.media = await self._ctx.services.messaging.read(
            caller.agent(req), message_id, mark_read=mark_read is not False
        )


class MessageReceipts:
    """``GET /v1/messages/{message_id}/receipts``."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, message_id: str) -> None:
        """List where each recipient's copy is (queued, delivered, read, acked), with times; for any party."""
        params.path_id(message_id, "Message")
        messaging = self._ctx.services.messaging
        message = await messaging.visible(caller.agent(req), message_id)
        resp.media = {"data": await messaging.receipts(message)}


def _outcome(done_as: str, ids: list[str], done: set[str]) -> dict[str, list[str]]:
    """Split the ids of a request on several messages into those done (in order) and those not found."""
    return {done_as: [i for i in ids if i in done], "not_found": [i for i in ids if i not in done]}


class Ack:
    """``POST /v1/messages/ack``."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Acknowledge messages addressed to the caller; report the ids that are not."""
        body = await self._ctx.body(req, "AckRequest")
        done = await self._ctx.services.messaging.ack(caller.agent(req), body["ids"])
        resp.media = _outcome("acked", body["ids"], done)


class MarkRead:
    """``POST /v1/messages/read``."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Mark read messages addressed to the caller; report the ids that are not."""
        body = await self._ctx.body(req, "AckRequest")
        done = await self._ctx.services.messaging.mark_read(caller.agent(req), body["ids"])
        resp.media = _outcome("read", body["ids"], done)


class Thread:
    """``GET /v1/messages/{message_id}/thread``."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, message_id: str) -> None:
        """Return a page of the thread from its root, as far as the caller may see it; what it shows is delivered."""
        cursor = params.cursor(req)
        params.path_id(message_id, "Message")
        root_id, views, next_cursor = await self._ctx.services.messaging.thread(caller.agent(req), message_id, cursor)
        resp.media = {"root_id": root_id, "data": views, "next_cursor": next_cursor}


class Reactions:
    """``POST /v1/messages/{message_id}/reactions``."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, message_id: str) -> None:
        """Add the caller's reaction (once per emoji)."""
        params.path_id(message_id, "Message")
        messaging = self._ctx.services.messaging
        message = await messaging.visible(caller.agent(req), message_id)
        body = await self._ctx.body(req, "ReactionCreate")
        resp.media = await messaging.react(caller.agent(req), message, body["emoji"])


class Pin:
    """``PUT|DELETE /v1/messages/{message_id}/pin``."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_put(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, message_id: str) -> None:
        """Pin the message."""
        params.path_id(message_id, "Message")
        resp.media = await self._ctx.services.messaging.pin(caller.agent(req), message_id, True)

    async def on_delete(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, message_id: str) -> None:
        """Unpin the message."""
        params.path_id(message_id, "Message")
        resp.media = await self._ctx.services.messaging.pin(caller.agent(req), message_id, False)
