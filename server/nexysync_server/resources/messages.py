"""Messages (agent key): send, inbox, read, ack, thread, reactions and pins."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import falcon
import falcon.asgi

from .. import params
from ..errors import Problem, not_found
from ..realtime.hub import Hub
from ..realtime.receipts import Receipts
from ..store import messages
from ..store import receipts as store_receipts
from . import Context, page_body


async def _visible_message(ctx: Context, req: falcon.asgi.Request, message_id: str) -> dict[str, Any]:
    """Return a message the caller sent or received, or raise 404 (also for other projects' ids)."""
    params.path_id(message_id, "Message")
    agent = req.context.agent
    message = await ctx.store.messages.get(agent["project_id"], message_id)
    if message is None or not messages.visible_to(message, agent["_id"]):
        raise not_found("Message", "MESSAGE_NOT_FOUND")
    return message


async def _views(receipts: Receipts, docs: list[dict[str, Any]], agent_id: str) -> list[dict[str, Any]]:
    """Return the API representations of messages; those the caller sent carry their receipt counts."""
    views = [messages.public(doc, agent_id) for doc in docs]
    await receipts.with_summaries(views, docs, agent_id)
    return views


async def _recipients(ctx: Context, project_id: str, recipient_ids: list[str]) -> list[dict[str, Any]]:
    """Say of each recipient whether it holds a stream now (and so hears of a message at once)."""
    briefs, streaming = await asyncio.gather(
        ctx.store.agents.briefs(project_id, recipient_ids), ctx.store.presence.streaming_among(recipient_ids)
    )
    return [
        {"agent": brief["slug"], "online": agent_id in streaming, "last_seen_at": brief.get("last_seen_at")}
        for agent_id in recipient_ids
        if (brief := briefs.get(agent_id)) is not None
    ]


class Collection:
    """``/v1/messages``."""

    auth = "agent"

    def __init__(self, ctx: Context, hub: Hub, receipts: Receipts) -> None:
        self._ctx = ctx
        self._hub = hub
        self._receipts = receipts

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """List the caller's inbox in storage order; what it lists is delivered."""
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
        await self._receipts.reach(agent, docs, "delivered")
        resp.media = page_body([messages.public(doc, agent["_id"]) for doc in docs], next_cursor)

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Store a direct message or a broadcast (idempotent by client-made id)."""
        body = await self._ctx.body(req, "MessageCreate")
        store = self._ctx.store
        sender = req.context.agent
        project_id = sender["project_id"]
        size = messages.content_size(body)
        quotas = self._ctx.quotas
        reserved = False

        async def recipients_of() -> list[str]:
            if body.get("broadcast"):
                return await store.agents.ids_except(project_id, sender["_id"])
            recipient_id = await store.agents.id_for_slug(project_id, body["to"])
            if recipient_id is None:
                raise not_found(f"Agent '{body['to']}'", "RECIPIENT_NOT_FOUND")
            return [recipient_id]

        async def check_parent() -> None:
            if body.get("reply_to"):
                parent = await store.messages.get(project_id, body["reply_to"])
                if parent is None or not messages.visible_to(parent, sender["_id"]):
                    raise not_found(f"Message {body['reply_to']} (reply_to)", "REPLY_TO_NOT_FOUND")

        async def ttl_of() -> int:
            hours = await store.projects.message_ttl_hours(project_id)
            if hours is None:
                raise not_found("Project", "PROJECT_NOT_FOUND")
            return hours

        async def reserve() -> None:
            nonlocal reserved
            await quotas.reserve_message(project_id, size)
            reserved = True  # no await since the reservation: a cancellation cannot fall between

        # The four are independent reads: one round trip's wait instead of four. The first failure
        # in this order is the answer (as when they ran one after another), and a reservation
        # that happened is given back whatever failed, cancellation included.
        try:
            lookups = (recipients_of(), check_parent(), ttl_of(), reserve())
            outcomes = await asyncio.gather(*lookups, return_exceptions=True)
            failure = next((outcome for outcome in outcomes if isinstance(outcome, BaseException)), None)
            if failure is not None:
                raise failure
        except BaseException:
            if reserved:
                quotas.release_message(project_id, size)
            raise
        recipients, ttl_hours = cast(list[str], outcomes[0]), cast(int, outcomes[2])
        insert = store.messages.insert(
            project_id=project_id, sender=sender, body=body, recipients=recipients, ttl_hours=ttl_hours
        )
        try:
            (message, created, event), presence = await asyncio.gather(
                insert, _recipients(self._ctx, project_id, recipients)
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
        if created:
            resp.status = falcon.HTTP_201
            resp.location = f"/v1/messages/{message['id']}"
            view = messages.public(message, sender["_id"])
            view["receipts"] = store_receipts.summary(len(message["recipients"]), [])
        else:
            quotas.release_message(project_id, size)  # a retry: counted when it was first stored
            (view,) = await _views(self._receipts, [message], sender["_id"])
        view["recipients"] = presence
        resp.media = view


class Item:
    """``/v1/messages/{message_id}``."""

    auth = "agent"

    def __init__(self, ctx: Context, receipts: Receipts) -> None:
        self._ctx = ctx
        self._receipts = receipts

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, message_id: str) -> None:
        """Return a message: delivered to the caller, and read unless ``mark_read=false``."""
        mark_read = params.boolean(req, "mark_read")
        message = await _visible_message(self._ctx, req, message_id)
        agent = req.context.agent
        if mark_read is not False:
            message = await self._ctx.store.messages.mark_read(message, agent["_id"])
        await self._receipts.reach(agent, [message], "delivered" if mark_read is False else "read")
        (resp.media,) = await _views(self._receipts, [message], agent["_id"])


async def receipt_list(ctx: Context, message: dict[str, Any]) -> dict[str, Any]:
    """Return a message's ``ReceiptList`` body: one receipt per recipient still in the project, in order."""
    store = ctx.store
    briefs, docs = await asyncio.gather(
        store.agents.briefs(message["project_id"], message["recipients"]), store.receipts.of_message(message)
    )
    return {
        "data": [
            store_receipts.public(message, briefs[agent_id]["slug"], docs.get(agent_id))
            for agent_id in message["recipients"]
            if agent_id in briefs
        ]
    }


class MessageReceipts:
    """``GET /v1/messages/{message_id}/receipts``."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, message_id: str) -> None:
        """List where each recipient's copy is (queued, delivered, read, acked), with times; for any party."""
        message = await _visible_message(self._ctx, req, message_id)
        resp.media = await receipt_list(self._ctx, message)


class Ack:
    """``POST /v1/messages/ack``."""

    auth = "agent"

    def __init__(self, ctx: Context, hub: Hub, receipts: Receipts) -> None:
        self._ctx = ctx
        self._hub = hub
        self._receipts = receipts

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
        if acked:
            addressed = await store.messages.addressed(agent["project_id"], agent["_id"], acked)
            await self._receipts.reach(agent, addressed, "acked")
        done = set(acked)
        resp.media = {
            "acked": [i for i in body["ids"] if i in done],
            "not_found": [i for i in body["ids"] if i not in done],
        }


class Thread:
    """``GET /v1/messages/{message_id}/thread``."""

    auth = "agent"

    def __init__(self, ctx: Context, receipts: Receipts) -> None:
        self._ctx = ctx
        self._receipts = receipts

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, message_id: str) -> None:
        """Return a page of the thread from its root, as far as the caller may see it; what it shows is delivered."""
        cursor = params.cursor(req)
        message = await _visible_message(self._ctx, req, message_id)
        agent = req.context.agent
        root_id, members, next_cursor = await self._ctx.store.messages.thread(
            message, agent["_id"], budget=self._ctx.settings.read_budget_bytes, cursor=cursor
        )
        await self._receipts.reach(agent, members, "delivered")
        resp.media = {
            "root_id": root_id,
            "data": await _views(self._receipts, members, agent["_id"]),
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
