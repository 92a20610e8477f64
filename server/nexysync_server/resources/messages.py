"""Messages (agent key): send, inbox, read, ack, thread, reactions and pins."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi

from .. import params
from ..errors import Problem, not_found
from ..realtime.hub import Hub
from ..store import messages
from . import Context, page_body


async def _visible_message(ctx: Context, req: falcon.asgi.Request, message_id: str) -> dict[str, Any]:
    """Return a message the caller sent or received, or raise 404 (also for other projects' ids)."""
    params.path_id(message_id, "Message")
    agent = req.context.agent
    message = await ctx.store.messages.get(agent["project_id"], message_id)
    if message is None or not messages.visible_to(message, agent["_id"]):
        raise not_found("Message", "MESSAGE_NOT_FOUND")
    return message


class Collection:
    """``/v1/messages``."""

    auth = "agent"

    def __init__(self, ctx: Context, hub: Hub) -> None:
        self._ctx = ctx
        self._hub = hub

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """List the caller's inbox in storage order."""
        agent = req.context.agent
        docs, next_cursor = await self._ctx.store.messages.inbox(
            agent["project_id"],
            agent["_id"],
            since=params.timestamp(req, "since"),
            status=params.choice(req, "status", ("unread", "read", "acked")),
            sender_slug=params.slug(req, "from"),
            message_type=params.choice(req, "type", ("request", "response", "notification")),
            pinned=params.boolean(req, "pinned"),
            limit=params.limit(req),
            cursor=params.cursor(req),
            budget=self._ctx.settings.read_budget_bytes,
        )
        resp.media = page_body([messages.public(doc, agent["_id"]) for doc in docs], next_cursor)

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Store a direct message or a broadcast (idempotent by client-made id)."""
        body = await self._ctx.body(req, "MessageCreate")
        store = self._ctx.store
        sender = req.context.agent
        project_id = sender["project_id"]
        if body.get("broadcast"):
            recipients = await store.agents.ids_except(project_id, sender["_id"])
        else:
            recipient_id = await store.agents.id_for_slug(project_id, body["to"])
            if recipient_id is None:
                raise not_found(f"Agent '{body['to']}'", "RECIPIENT_NOT_FOUND")
            recipients = [recipient_id]
        if body.get("reply_to"):
            parent = await store.messages.get(project_id, body["reply_to"])
            if parent is None or not messages.visible_to(parent, sender["_id"]):
                raise not_found(f"Message {body['reply_to']} (reply_to)", "REPLY_TO_NOT_FOUND")
        ttl_hours = await store.projects.message_ttl_hours(project_id)
        if ttl_hours is None:
            raise not_found("Project", "PROJECT_NOT_FOUND")
        size = messages.content_size(body)
        quotas = self._ctx.quotas
        await quotas.reserve_message(project_id, size)
        try:
            message, created, event = await store.messages.insert(
                project_id=project_id, sender=sender, body=body, recipients=recipients, ttl_hours=ttl_hours
            )
        except messages.IdConflict as exc:
            quotas.release_message(project_id, size)
            self._hub.publish(exc.filler)  # so that this process's streams need not wait for it
            raise Problem(
                409, "ID_CONFLICT", f"Message {body.get('id')} was already sent with a different body."
            ) from exc
        except BaseException:
            quotas.release_message(project_id, size)
            raise
        self._hub.publish(event)
        if not created:
            quotas.release_message(project_id, size)  # a retry: counted when it was first stored
        else:
            resp.status = falcon.HTTP_201
            resp.location = f"/v1/messages/{message['id']}"
        resp.media = messages.public(message, sender["_id"])


class Item:
    """``/v1/messages/{message_id}``."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, message_id: str) -> None:
        """Return a message and mark it read for the caller (unless ``mark_read=false``)."""
        mark_read = params.boolean(req, "mark_read")
        message = await _visible_message(self._ctx, req, message_id)
        agent_id = req.context.agent["_id"]
        if mark_read is not False:
            message = await self._ctx.store.messages.mark_read(message, agent_id)
        resp.media = messages.public(message, agent_id)


class Ack:
    """``POST /v1/messages/ack``."""

    auth = "agent"

    def __init__(self, ctx: Context, hub: Hub) -> None:
        self._ctx = ctx
        self._hub = hub

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Acknowledge messages addressed to the caller; report the ids that are not."""
        body = await self._ctx.body(req, "AckRequest")
        agent = req.context.agent
        store = self._ctx.store
        acked, untold = await store.messages.ack(agent["project_id"], agent["_id"], body["ids"])
        for sender_id, ids in untold.items():
            await self._hub.emit(agent["project_id"], "message_acked", [sender_id], {"ids": ids, "by": agent["slug"]})
        if untold:
            told = [message_id for ids in untold.values() for message_id in ids]
            await store.messages.told_acks(agent["project_id"], agent["_id"], told)
        done = set(acked)
        resp.media = {
            "acked": [i for i in body["ids"] if i in done],
            "not_found": [i for i in body["ids"] if i not in done],
        }


class Thread:
    """``GET /v1/messages/{message_id}/thread``."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, message_id: str) -> None:
        """Return a page of the thread from its root, as far as the caller may see it."""
        cursor = params.cursor(req)
        message = await _visible_message(self._ctx, req, message_id)
        agent_id = req.context.agent["_id"]
        root_id, members, next_cursor = await self._ctx.store.messages.thread(
            message, agent_id, budget=self._ctx.settings.read_budget_bytes, cursor=cursor
        )
        resp.media = {
            "root_id": root_id,
            "data": [messages.public(doc, agent_id) for doc in members],
            "next_cursor": next_cursor,
        }


class Reactions:
    """``POST /v1/messages/{message_id}/reactions``."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, message_id: str) -> None:
        """Add the caller's reaction (once per emoji)."""
        message = await _visible_message(self._ctx, req, message_id)
        body = await self._ctx.body(req, "ReactionCreate")
        agent = req.context.agent
        try:
            message = await self._ctx.store.messages.add_reaction(message, agent["slug"], body["emoji"])
        except messages.TooManyReactions as exc:
            raise Problem(409, "TOO_MANY_REACTIONS", "This message holds as many reactions as it may.") from exc
        resp.media = messages.public(message, agent["_id"])


class Pin:
    """``PUT|DELETE /v1/messages/{message_id}/pin``."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_put(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, message_id: str) -> None:
        """Pin the message."""
        await self._set(req, resp, message_id, True)

    async def on_delete(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, message_id: str) -> None:
        """Unpin the message."""
        await self._set(req, resp, message_id, False)

    async def _set(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, message_id: str, pinned: bool) -> None:
        message = await _visible_message(self._ctx, req, message_id)
        agent_id = req.context.agent["_id"]
        message = await self._ctx.store.messages.set_pinned(message, agent_id, pinned)
        resp.media = messages.public(message, agent_id)
