"""Messaging: send, inbox, read, receipts, ack, thread, reactions and pins.

A send is the one saga of the API: four independent look-ups (recipients, the parent of a
reply, the project's TTL) run together with the daily quota's reservation; the message and its
``new_message`` event are stored in one write of the event log; the event reaches this
process's streams at once. The reservation is given back on every way a send stores nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from .. import views
from ..realtime.hub import Hub
from ..store import Store, messages
from ..store.documents import AgentDoc, MessageDoc
from .errors import Conflict, NotFound
from .quotas import Quotas
from .receipts import Receipts


def _missing() -> NotFound:
    return NotFound("Message", "MESSAGE_NOT_FOUND")


class Messaging:
    """The messages of a project, as its agents send and read them.

    Args:
        store: The database.
        hub: This process's fan-out (a send's event reaches its streams at once).
        receipts: Delivery receipts, moved forward by every read.
        quotas: The daily message quota a send reserves.
        read_budget_bytes: The most content bytes a page of messages holds.
    """

    def __init__(self, store: Store, hub: Hub, receipts: Receipts, quotas: Quotas, read_budget_bytes: int) -> None:
        self._store = store
        self._hub = hub
        self._receipts = receipts
        self._quotas = quotas
        self._budget = read_budget_bytes

    async def visible(self, agent: AgentDoc, message_id: str) -> MessageDoc:
        """Return a message the agent sent or received.

        Raises:
            NotFound: ``MESSAGE_NOT_FOUND``, also for another project's id.
        """
        message = await self._store.messages.get(agent["project_id"], message_id)
        if message is None or not messages.visible_to(message, agent["_id"]):
            raise _missing()
        return message

    async def views(self, docs: list[MessageDoc], agent_id: str) -> list[dict[str, Any]]:
        """Return the API representations of messages; those the agent sent carry their receipt counts."""
        shown = [views.message(doc, agent_id) for doc in docs]
        await self._receipts.with_summaries(shown, docs, agent_id)
        return shown

    async def inbox(
        self,
        agent: AgentDoc,
        *,
        since: datetime | None,
        status: str | None,
        sender_slug: str | None,
        message_type: str | None,
        pinned: bool | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Return a page of the agent's inbox in storage order; what it lists is delivered."""
        floor = agent.get("unread_floor")
        docs, next_cursor = await self._store.messages.inbox(
            agent["project_id"],
            agent["_id"],
            unread_floor=floor,
            since=since,
            status=status,
            sender_slug=sender_slug,
            message_type=message_type,
            pinned=pinned,
            limit=limit,
            cursor=cursor,
            budget=self._budget,
        )
        unfiltered = since is None and sender_slug is None and message_type is None and pinned is None
        if status == "unread" and cursor is None and unfiltered:
            raised = messages.raised_unread_floor(floor, docs[0] if docs else None)
            if raised is not None:
                await self._store.agents.raise_unread_floor(agent["_id"], raised)
        await self._receipts.reach(agent, docs, "delivered")
        return [views.message(doc, agent["_id"]) for doc in docs], next_cursor

    async def send(self, sender: AgentDoc, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Store a direct message or a broadcast (idempotent by its client-made id) and announce it.

        Returns:
            The message as the sender sees it, with ``recipients`` (who holds a stream now), and
            whether this call stored it (false for a retry of a stored send).

        Raises:
            NotFound: ``RECIPIENT_NOT_FOUND``, ``REPLY_TO_NOT_FOUND`` or ``PROJECT_NOT_FOUND``.
            QuotaExceeded: the project sent its messages (or bytes) of the day.
            Conflict: ``ID_CONFLICT``, the id was sent with another body.
        """
        store = self._store
        project_id = sender["project_id"]
        size = messages.content_size(body)
        quotas = self._quotas
        reserved = False

        async def recipients_of() -> list[str]:
            if body.get("broadcast"):
                return await store.agents.ids_except(project_id, sender["_id"])
            recipient_id = await store.agents.id_for_slug(project_id, body["to"])
            if recipient_id is None:
                raise NotFound(f"Agent '{body['to']}'", "RECIPIENT_NOT_FOUND")
            return [recipient_id]

        async def check_parent() -> None:
            if body.get("reply_to"):
                parent = await store.messages.get(project_id, body["reply_to"])
                if parent is None or not messages.visible_to(parent, sender["_id"]):
                    raise NotFound(f"Message {body['reply_to']} (reply_to)", "REPLY_TO_NOT_FOUND")

        async def ttl_of() -> int:
            hours = await store.projects.message_ttl_hours(project_id)
            if hours is None:
                raise NotFound("Project", "PROJECT_NOT_FOUND")
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
                insert, self._presence_of(project_id, recipients)
            )
        except messages.IdConflict as exc:
            quotas.release_message(project_id, size)
            self._hub.publish(exc.filler)  # so that this process's streams need not wait for it
            raise Conflict("ID_CONFLICT", f"Message {body.get('id')} was already sent with a different body.") from exc
        except BaseException:
            quotas.release_message(project_id, size)
            raise
        self._hub.publish(event)
        if created:
            view = views.message(message, sender["_id"])
            view["receipts"] = views.receipt_summary(len(message["recipients"]), [])
        else:
            quotas.release_message(project_id, size)  # a retry: counted when it was first stored
            (view,) = await self.views([message], sender["_id"])
        view["recipients"] = presence
        return view, created

    async def _presence_of(self, project_id: str, recipient_ids: list[str]) -> list[dict[str, Any]]:
        """Say of each recipient whether it holds a stream now (and so hears of a message at once)."""
        store = self._store
        briefs, streaming = await asyncio.gather(
            store.agents.briefs(project_id, recipient_ids), store.presence.streaming_among(recipient_ids)
        )
        return [
            {"agent": brief["slug"], "online": agent_id in streaming, "last_seen_at": brief.get("last_seen_at")}
            for agent_id in recipient_ids
            if (brief := briefs.get(agent_id)) is not None
        ]

    async def read(self, agent: AgentDoc, message_id: str, *, mark_read: bool = True) -> dict[str, Any]:
        """Return a message: delivered to the agent, and read unless ``mark_read`` is false.

        Raises:
            NotFound: ``MESSAGE_NOT_FOUND``.
        """
        message = await self.visible(agent, message_id)
        if mark_read:
            message = await self._store.messages.mark_read(message, agent["_id"])
        await self._receipts.reach(agent, [message], "read" if mark_read else "delivered")
        (view,) = await self.views([message], agent["_id"])
        return view

    async def receipts(self, message: MessageDoc) -> list[dict[str, Any]]:
        """Return a message's receipts: one per recipient still in the project, in order."""
        store = self._store
        briefs, docs = await asyncio.gather(
            store.agents.briefs(message["project_id"], message["recipients"]), store.receipts.of_message(message)
        )
        return [
            views.receipt(message, briefs[agent_id]["slug"], docs.get(agent_id))
            for agent_id in message["recipients"]
            if agent_id in briefs
        ]

    async def project_receipts(self, project_id: str, message_id: str) -> list[dict[str, Any]]:
        """Return the receipts of any message of a project (the owner's view).

        Raises:
            NotFound: ``MESSAGE_NOT_FOUND``.
        """
        message = await self._store.messages.get(project_id, message_id)
        if message is None:
            raise _missing()
        return await self.receipts(message)

    async def project_page(
        self,
        project_id: str,
        *,
        agent_slug: str | None,
        since: datetime | None,
        status: str | None,
        sender_slug: str | None,
        message_type: str | None,
        pinned: bool | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Return a page of every message of a project in storage order (the owner's view), moving no receipt.

        ``agent_slug`` keeps what that agent sent or received (nothing for an agent that does not
        exist); ``status`` and ``pinned`` are then that agent's.
        """
        store = self._store
        agent_id = await store.agents.id_for_slug(project_id, agent_slug) if agent_slug else None
        if agent_slug is not None and agent_id is None:
            return [], None
        docs, next_cursor = await store.messages.project_page(
            project_id,
            agent_id=agent_id,
            since=since,
            status=status,
            sender_slug=sender_slug,
            message_type=message_type,
            pinned=pinned,
            limit=limit,
            cursor=cursor,
            budget=self._budget,
        )
        return [views.owner_message(doc, agent_id) for doc in docs], next_cursor

    async def ack(self, agent: AgentDoc, ids: Iterable[str]) -> set[str]:
        """Acknowledge messages addressed to the agent and tell their senders; return the ids that were."""
        store = self._store
        project_id = agent["project_id"]
        acked, untold = await store.messages.ack(project_id, agent["_id"], ids)
        for sender_id, sender_ids in untold.items():
            await self._hub.emit(project_id, "message_acked", [sender_id], {"ids": sender_ids, "by": agent["slug"]})
        if untold:
            told = [message_id for sender_ids in untold.values() for message_id in sender_ids]
            await store.messages.told_acks(project_id, agent["_id"], told)
        if acked:
            addressed = await store.messages.addressed(project_id, agent["_id"], acked)
            await self._receipts.reach(agent, addressed, "acked")
        return set(acked)

    async def mark_read(self, agent: AgentDoc, ids: Iterable[str]) -> set[str]:
        """Mark read the messages among ``ids`` addressed to the agent; return their ids.

        For messages whose content came in the agent's stream: reading them there is not a GET.
        """
        addressed = await self._store.messages.mark_read_many(agent["project_id"], agent["_id"], ids)
        await self._receipts.reach(agent, addressed, "read")
        return {doc["id"] for doc in addressed}

    async def thread(
        self, agent: AgentDoc, message_id: str, cursor: str | None
    ) -> tuple[str, list[dict[str, Any]], str | None]:
        """Return a page of a message's thread from its root, as far as the agent may see it (delivered now).

        Raises:
            NotFound: ``MESSAGE_NOT_FOUND``.
        """
        message = await self.visible(agent, message_id)
        root_id, members, next_cursor = await self._store.messages.thread(
            message, agent["_id"], budget=self._budget, cursor=cursor
        )
        await self._receipts.reach(agent, members, "delivered")
        return root_id, await self.views(members, agent["_id"]), next_cursor

    async def react(self, agent: AgentDoc, message: MessageDoc, emoji: str) -> dict[str, Any]:
        """Add the agent's reaction to a message it may see (once per emoji); return the message.

        Raises:
            Conflict: ``TOO_MANY_REACTIONS``.
        """
        try:
            message = await self._store.messages.add_reaction(message, agent["slug"], emoji)
        except messages.TooManyOwnReactions as exc:
            limit = messages.MAX_REACTIONS_PER_AGENT
            raise Conflict(
                "TOO_MANY_REACTIONS", f"You have added {limit} reactions to this message, as many as one agent may."
            ) from exc
        except messages.TooManyReactions as exc:
            raise Conflict("TOO_MANY_REACTIONS", "This message holds as many reactions as it may.") from exc
        return views.message(message, agent["_id"])

    async def pin(self, agent: AgentDoc, message_id: str, pinned: bool) -> dict[str, Any]:
        """Pin or unpin a message for the agent alone; return the message.

        Raises:
            NotFound: ``MESSAGE_NOT_FOUND``.
        """
        message = await self.visible(agent, message_id)
        message = await self._store.messages.set_pinned(message, agent["_id"], pinned)
        return views.message(message, agent["_id"])
