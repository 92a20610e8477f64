"""Messages: ciphertext content plus the plaintext routing the server needs.

A message document is keyed ``<project_id>:<id>`` so a client-made id can never collide
with, or reveal, another project's message. Per-recipient state lives in the arrays
``read_by`` and ``acked_by`` (agent ids), created empty at insert. Pins are each agent's own
(``pinned_by``): a pin marks a message for its pinner, so one recipient of a broadcast cannot
pin or unpin it for the others.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ..ids import iso, new_id, parse_rfc3339, ulid_floor, ulid_time, utcnow
from .batching import Batcher
from .documents import AgentDoc, EventDoc, MessageDoc, MessageRef
from .events import EventStore, Outcomes, event_key
from .expiry import Expiry
from .failures import find_one_and_update
from .idempotency import fingerprint, is_retry
from .pages import page
from .queries import eq

log = logging.getLogger(__name__)

CONTENT_FIELDS = ("topic", "payload", "metadata")
_ROUTING_FIELDS = ("to", "broadcast", "type", "priority", "reply_to")
_MAX_THREAD = 1000
# What thread membership is worked out from: routing, never content.
_MEMBER_FIELDS = {"id": 1, "reply_to": 1, "from_id": 1, "recipients": 1, "sk": 1}
# Full messages of a thread read per round trip.
_THREAD_BATCH = 8
_MAX_REACTIONS = 50
#: Reactions one agent may add to one message: no single agent can use up the message's reactions.
MAX_REACTIONS_PER_AGENT = 5
_REACTION_ATTEMPTS = 10
# A message is stored within this long of its sort key being made (a request that took longer
# failed), so below ``now - _SETTLED`` no message can still appear: the unread floor's limit.
_SETTLED = timedelta(minutes=1)


class IdConflict(Exception):
    """A message with this id exists with a different body (or sender); ``filler`` is the event stored for the try."""

    def __init__(self, message_id: str, filler: EventDoc) -> None:
        super().__init__(message_id)
        self.filler = filler


class _Duplicate(Exception):
    """The message id is already stored.

    ``stored`` is the stored message (``None`` if it is gone since); ``event`` is the event stored
    for this try: a filler, or the message's ``new_message`` if its first try left none.
    """

    def __init__(self, event: EventDoc, stored: MessageDoc | None) -> None:
        super().__init__("duplicate message id")
        self.event = event
        self.stored = stored


class TooManyReactions(Exception):
    """The message has as many reactions as it may hold."""


class TooManyOwnReactions(TooManyReactions):
    """The agent has added as many reactions to the message as one agent may."""


def _key(project_id: str, message_id: str) -> str:
    return f"{project_id}:{message_id}"


def content_size(message: Mapping[str, Any]) -> int:
    """Return the bytes of a message's content (its envelopes, ASCII): what the daily byte quota counts."""
    return sum(len(message[name]) for name in CONTENT_FIELDS if message.get(name) is not None)


def body_fingerprint(body: dict[str, Any]) -> str:
    """Hash the parts of a send request that define the message, to compare idempotent retries."""
    canonical = {name: body.get(name) for name in (*_ROUTING_FIELDS, *CONTENT_FIELDS)}
    canonical["broadcast"] = bool(canonical["broadcast"])
    canonical["priority"] = canonical["priority"] or "normal"
    return fingerprint(canonical)


def _same_send(stored: MessageDoc, message: MessageDoc) -> bool:
    """Tell whether a stored message is the one a retry sends again: same sender, same body."""
    return is_retry(stored, message["from_id"], message["fingerprint"])


def routing(message: MessageDoc) -> dict[str, Any]:
    """Return what a ``new_message`` event tells: ids and plaintext routing, never content."""
    return {
        "id": message["id"],
        "from": message["from"],
        "to": message["to"],
        "broadcast": message["broadcast"],
        "type": message["type"],
        "priority": message["priority"],
        "reply_to": message["reply_to"],
        "created_at": message["created_at"],
    }


def carried_ref(event: Mapping[str, Any]) -> MessageRef | None:
    """Return the message a stored ``new_message`` event carries whole, as receipts need it; else ``None``.

    A stream that writes such an event hands the message over: that is its ``delivered`` step.
    Any other event (an unstored ``reset``, say) gives ``None``.
    """
    data = event["data"]
    if event["type"] != "new_message" or "sender_id" not in event or "payload" not in data:
        return None
    return {
        "id": data["id"],
        "project_id": event["project_id"],
        "from_id": event["sender_id"],
        "recipients": event["recipients"],
        "expires_at": parse_rfc3339(data["expires_at"]),
    }


def raised_unread_floor(current: str | None, first_unread: MessageDoc | None) -> str | None:
    """Return where an agent's unread messages begin now, or ``None`` when it is not worth a write.

    Call it after a listing of the agent's unread messages that had no other filter and no
    cursor, with the first one it found (``None``: it found none). Every message before that one
    is read; so is every one before the settled horizon (``now - _SETTLED``): a message made
    before it is stored by now or never, so nothing can appear below the floor later. The floor
    only rises, and a move of less than ``_SETTLED`` is not written (a listing then reads at
    most that much more of the project's messages). The servers' clocks must agree to well within
    ``_SETTLED``, as they do under NTP.
    """
    settled = ulid_floor(utcnow() - _SETTLED)
    floor = settled if first_unread is None else min(first_unread["sk"], settled)
    if current is not None and ulid_time(floor) - ulid_time(current) < _SETTLED:
        return None
    return floor


def visible_to(message: Mapping[str, Any], agent_id: str) -> bool:
    """Tell whether an agent may see a message: it sent it or is one of its recipients."""
    return message["from_id"] == agent_id or agent_id in message["recipients"]


def _status_filter(agent_id: str, status: str | None) -> dict[str, Any]:
    """Return the query terms for messages in ``status`` (unread, read, acked) for a recipient."""
    if status == "unread":
        return {"read_by": {"$nin": [agent_id]}, "acked_by": {"$nin": [agent_id]}}
    if status == "read":
        return {"read_by": agent_id, "acked_by": {"$nin": [agent_id]}}
    if status == "acked":
        return {"acked_by": agent_id}
    return {}


def _routing_filter(
    sender_slug: str | None, message_type: str | None, pinned: bool | None, agent_id: str | None
) -> dict[str, Any]:
    """Return the query terms of the list filters on plaintext routing: sender, type, pinned.

    ``pinned`` is ``agent_id``'s own pin; for ``None`` (the owner), whether anyone pinned it.
    """
    terms: dict[str, Any] = {}
    if sender_slug is not None:
        terms["from"] = sender_slug
    if message_type is not None:
        terms["type"] = message_type
    if pinned is not None and agent_id is not None:
        terms["pinned_by"] = agent_id if pinned else {"$nin": [agent_id]}
    elif pinned is not None:
        # The empty and not-empty tests that MongoDB and the embedded database answer alike.
        terms["pinned_by"] = {"$elemMatch": {"$exists": True}} if pinned else {"$size": 0}
    return terms


class MessageStore:
    """The ``messages`` collection."""

    def __init__(
        self,
        db: AsyncDatabase[Any],
        events: EventStore,
        expiry: Expiry | None = None,
        event_content_max_bytes: int = 8192,
    ) -> None:
        self._expiry = expiry or Expiry()
        # A message whose envelopes add up to at most this comes whole in its new_message event.
        self._event_content_max = event_content_max_bytes
        self.col: AsyncCollection[MessageDoc] = db["messages"]
        self._events = events
        # Concurrent sends go out as one batch, written with their events by the event log in
        # one command where it can (EventStore.write_with_records). Retries add a look-up. One
        # stage rather than several that overlap: the database runs one command at a time, so
        # the number of commands and the size of the batches decide the latency and the rate.
        self._sends: Batcher[MessageDoc, EventDoc] = Batcher(self._send_batch)

    async def ensure_indexes(self) -> None:
        """Create the inbox, thread and TTL indexes."""
        await self.col.create_index([("project_id", 1), ("recipients", 1), ("sk", 1)])
        await self.col.create_index([("project_id", 1), ("reply_to", 1)])
        # The owner's view of the whole project (GET /v1/projects/{id}/messages), in storage order.
        await self.col.create_index([("project_id", 1), ("sk", 1)])
        await self._expiry.index(self.col, "expires_at")

    async def insert(
        self,
        *,
        project_id: str,
        sender: AgentDoc,
        body: dict[str, Any],
        recipients: list[str],
        ttl_hours: int,
    ) -> tuple[MessageDoc, bool, EventDoc]:
        """Store a message with its ``new_message`` event, or find the one stored earlier under the same id.

        Returns:
            ``(message, created, event)``: ``created`` is false when the id was already stored
            with an identical body (an idempotent retry). ``event`` is then a stored filler,
            unless the first try stored the message but not its ``new_message`` event (the server
            failed in between): then the retry announces the message.

        Raises:
            IdConflict: the id is stored with a different body.
        """
        message_id = body.get("id") or new_id()
        sort_key = new_id()
        # created_at is the sort key's own time, so ``since`` can filter on the key exactly.
        now = ulid_time(sort_key)
        message: MessageDoc = {
            "_id": _key(project_id, message_id),
            "id": message_id,
            "project_id": project_id,
            "sk": sort_key,
            "from_id": sender["_id"],
            "from": sender["slug"],
            "to": None if body.get("broadcast") else body["to"],
            "broadcast": bool(body.get("broadcast")),
            "type": body["type"],
            "priority": body.get("priority") or "normal",
            "reply_to": body.get("reply_to"),
            "topic": body["topic"],
            "payload": body["payload"],
            "metadata": body.get("metadata"),
            "recipients": recipients,
            "read_by": [],
            "acked_by": [],
            # Recipients whose ack the sender was told of (message_acked), so a retry tells again
            # only what was not told. Made empty here: on the embedded database, $addToSet does
            # nothing to a field that is missing.
            "acks_told": [],
            "pinned_by": [],
            "reactions": [],
            "reaction_keys": [],
            "rev": 0,
            "fingerprint": body_fingerprint(body),
            "created_at": iso(now),
            "expires_at": now + timedelta(hours=ttl_hours),
        }
        try:
            event = await self._sends.submit(message)
        except _Duplicate as exc:
            if exc.stored is None or not _same_send(exc.stored, message):
                raise IdConflict(message_id, exc.event) from None
            return exc.stored, False, exc.event
        return message, True, event

    def _announce(self, event: EventDoc, message: MessageDoc) -> None:
        """Make a numbered event the ``new_message`` event of ``message``: its routing, and itself when small."""
        data = routing(message)
        if content_size(message) <= self._event_content_max:
            # The message as a recipient first sees it (views.message), its envelopes still sealed:
            # the recipient has it in hand without a GET. It stays unread until the recipient says.
            data |= {
                "project_id": message["project_id"],
                "topic": message["topic"],
                "payload": message["payload"],
                "metadata": message["metadata"],
                "status": "unread",
                "pinned": False,
                "reactions": [],
                "expires_at": iso(message["expires_at"]),
            }
            event["sender_id"] = message["from_id"]
        event.update({"type": "new_message", "recipients": message["recipients"], "data": data})

    async def _send_batch(self, docs: list[MessageDoc]) -> list[EventDoc | BaseException]:
        reannounced: list[tuple[str, int]] = []

        async def settle(events: list[EventDoc], outcomes: Outcomes) -> list[EventDoc | BaseException]:
            return await self._settle(docs, events, outcomes, reannounced)

        results = await self._events.write_with_records(self.col.name, docs, self._announce, settle)
        for key, seq in reannounced:
            try:
                await self.col.update_one({"_id": key}, {"$set": {"seq": seq}})
            except Exception:
                # Announced and answered all the same; the next retry of it may announce it again.
                log.warning("message %s was announced again but could not be marked so", key, exc_info=True)
        return results

    async def _settle(
        self,
        docs: list[MessageDoc],
        events: list[EventDoc],
        outcomes: Outcomes,
        reannounced: list[tuple[str, int]],
    ) -> list[EventDoc | BaseException]:
        """Answer each send from its insert's outcome.

        A retry's message (a duplicate id) is looked up: announced (noted in ``reannounced``) if
        its first try stored it but no event for it, else answered with a filler.
        """
        results: list[EventDoc | BaseException] = []
        retried = [d for d, outcome in zip(docs, outcomes, strict=True) if isinstance(outcome, DuplicateKeyError)]
        lookup_error: Exception | None = None
        found: dict[str, MessageDoc] = {}
        unannounced: set[str] = set()
        if retried:
            try:
                found, unannounced = await self._unannounced(retried, events)
            except Exception as exc:
                lookup_error = exc  # fails the retries alone: the new messages are announced
        for doc, event, outcome in zip(docs, events, outcomes, strict=True):
            if outcome is None:
                self._announce(event, doc)
                results.append(event)
            elif isinstance(outcome, DuplicateKeyError):
                original = found.get(doc["_id"])
                if lookup_error is not None:
                    results.append(lookup_error)
                    continue
                if original is not None and doc["_id"] in unannounced and _same_send(original, doc):
                    self._announce(event, original)
                    unannounced.discard(doc["_id"])
                    reannounced.append((doc["_id"], event["seq"]))
                results.append(_Duplicate(event, original))
            else:
                results.append(outcome)
        return results

    async def _unannounced(
        self, retried: list[MessageDoc], batch_events: list[EventDoc]
    ) -> tuple[dict[str, MessageDoc], set[str]]:
        """Read the stored messages that retries collided with; tell which have no ``new_message`` event.

        A message whose event is one of this batch's (the same id twice in one batch) is announced
        by this batch. Messages stored before events were named in them, and messages older than
        the event log keeps events, count as announced.
        """
        cursor = self.col.find({"_id": {"$in": list({doc["_id"] for doc in retried})}})
        stored = {doc["_id"]: doc async for doc in cursor}
        in_batch = {event["_id"] for event in batch_events}
        keys = {
            event_key(doc["project_id"], doc["seq"]): doc["_id"]
            for doc in stored.values()
            if "seq" in doc
            and event_key(doc["project_id"], doc["seq"]) not in in_batch
            and self._events.still_kept(ulid_time(doc["sk"]))
        }
        announced = await self._events.of_kind(list(keys), "new_message") if keys else set()
        return stored, {message for key, message in keys.items() if key not in announced}

    async def get(self, project_id: str, message_id: str) -> MessageDoc | None:
        """Find a message of a project by id."""
        return await self.col.find_one({"_id": _key(project_id, message_id)})

    async def inbox(
        self,
        project_id: str,
        agent_id: str,
        *,
        unread_floor: str | None = None,
        since: datetime | None,
        status: str | None,
        sender_slug: str | None,
        message_type: str | None,
        pinned: bool | None,
        limit: int,
        cursor: str | None,
        budget: int = 0,
    ) -> tuple[list[MessageDoc], str | None]:
        """Page through the messages addressed to an agent in storage order, up to ``budget`` content bytes a page.

        With ``status="unread"``, ``unread_floor`` (see :func:`raised_unread_floor`) is where the
        agent's unread messages begin: the listing starts there, not at the project's first
        message, and so reads as much as came since then rather than everything ever sent.
        """
        query: dict[str, Any] = {"project_id": eq(project_id), "recipients": agent_id}
        # On the sort key, not on created_at: the embedded database compares date-like strings
        # to the second only.
        start = max(ulid_floor(since) if since is not None else "", (status == "unread" and unread_floor) or "")
        if start:
            query["sk"] = {"$gte": start}
        query.update(_status_filter(agent_id, status))
        query.update(_routing_filter(sender_slug, message_type, pinned, agent_id))
        return await page(self.col, query, "sk", limit, cursor, size=content_size, budget=budget)

    async def mark_read(self, message: MessageDoc, agent_id: str) -> MessageDoc:
        """Mark a message read for a recipient; return it as stored now."""
        if agent_id not in message["recipients"] or agent_id in message["read_by"]:
            return message
        updated = await find_one_and_update(
            self.col,
            {"_id": message["_id"]},
            {"$addToSet": {"read_by": agent_id}},
            return_document=ReturnDocument.AFTER,
        )
        return updated or message

    async def ack(self, project_id: str, agent_id: str, ids: Iterable[str]) -> tuple[list[str], dict[str, list[str]]]:
        """Acknowledge (and mark read) messages addressed to an agent.

        Returns:
            The ids addressed to the agent (acknowledged now or before), and those whose senders
            were not told of this agent's ack yet, grouped by sender's agent id: tell them, then
            call :meth:`told_acks` (a retry after a failure in between tells them again).
        """
        keys = [_key(project_id, message_id) for message_id in ids]
        query = {"_id": {"$in": keys}, "recipients": agent_id}
        fields = {"id": 1, "from_id": 1, "acked_by": 1, "acks_told": 1}
        addressed = [doc async for doc in self.col.find(query, fields)]
        if any(agent_id not in doc["acked_by"] for doc in addressed):
            await self.col.update_many(query, {"$addToSet": {"acked_by": agent_id, "read_by": agent_id}})
        untold: dict[str, list[str]] = {}
        for doc in addressed:
            # Messages stored before acks were recorded as told count as told once acked.
            told = doc.get("acks_told", doc["acked_by"])
            if agent_id not in told:
                untold.setdefault(doc["from_id"], []).append(doc["id"])
        return [doc["id"] for doc in addressed], untold

    async def told_acks(self, project_id: str, agent_id: str, ids: Iterable[str]) -> None:
        """Record that the senders of these messages were told of the agent's ack."""
        keys = [_key(project_id, message_id) for message_id in ids]
        await self.col.update_many({"_id": {"$in": keys}}, {"$addToSet": {"acks_told": agent_id}})

    async def set_pinned(self, message: MessageDoc, agent_id: str, pinned: bool) -> MessageDoc:
        """Pin or unpin a message for one agent only; return it as stored now."""
        if pinned and "pinned_by" not in message:
            # Stored before pins were per agent: $addToSet does nothing to a missing field here.
            update: dict[str, Any] = {"$set": {"pinned_by": [agent_id]}}
        elif pinned:
            update = {"$addToSet": {"pinned_by": agent_id}}
        else:
            update = {"$pull": {"pinned_by": agent_id}}
        updated = await find_one_and_update(
            self.col, {"_id": message["_id"]}, update, return_document=ReturnDocument.AFTER
        )
        return updated or message

    async def add_reaction(self, message: MessageDoc, agent_slug: str, emoji: str) -> MessageDoc:
        """Add an agent's reaction once; adding the same one again changes nothing.

        The list is rewritten whole under an optimistic revision check: ``$push`` of a
        document is not portable to the embedded database, and two concurrent reactions must
        both survive.

        Raises:
            TooManyReactions: the message holds the most reactions it may.
            TooManyOwnReactions: the agent added the most reactions one agent may.
        """
        reaction_key = f"{agent_slug}|{emoji}"
        current = message
        for _ in range(_REACTION_ATTEMPTS):
            if reaction_key in current["reaction_keys"]:
                return current
            if len(current["reaction_keys"]) >= _MAX_REACTIONS:
                raise TooManyReactions(current["id"])
            own = sum(1 for key in current["reaction_keys"] if key.startswith(f"{agent_slug}|"))
            if own >= MAX_REACTIONS_PER_AGENT:
                raise TooManyOwnReactions(current["id"])
            reaction = {"emoji": emoji, "agent": agent_slug, "created_at": iso(utcnow())}
            updated = await find_one_and_update(
                self.col,
                {"_id": current["_id"], "rev": current["rev"]},
                {
                    "$set": {
                        "reactions": [*current["reactions"], reaction],
                        "reaction_keys": [*current["reaction_keys"], reaction_key],
                    },
                    "$inc": {"rev": 1},
                },
                return_document=ReturnDocument.AFTER,
            )
            if updated is not None:
                return updated
            # Someone else changed the reactions first: start again from what is stored now.
            fresh = await self.col.find_one({"_id": current["_id"]})
            if fresh is None:
                return current
            current = fresh
        raise RuntimeError(f"reaction on message {message['id']} lost {_REACTION_ATTEMPTS} races in a row")

    async def thread(
        self, message: MessageDoc, agent_id: str, *, budget: int = 0, cursor: str | None = None
    ) -> tuple[str, list[MessageDoc], str | None]:
        """Return a page of the thread of a message, as far as the agent may see it.

        The thread is every message reachable from the root through ``reply_to``. Membership is
        worked out on routing fields alone (never content); then the visible members' full
        documents are read, oldest first, a few at a time, until ``budget`` bytes of content.

        Args:
            message: A message of the thread the agent may see.
            agent_id: The reader.
            budget: The most bytes of content a page holds (at least one message; 0: no bound).
            cursor: The ``next_cursor`` of the previous page.

        Returns:
            ``(root_id, messages, next_cursor)``: ``root_id`` is the earliest message of the
            thread the agent may see, so no id it may not see is named.
        """
        project_id = message["project_id"]
        # Members are read with their routing fields alone (a projection, not whole documents).
        whole: Mapping[str, Any] = message
        node: Mapping[str, Any] = {name: whole[name] for name in _MEMBER_FIELDS}
        seen = {node["id"]}
        while node["reply_to"] and len(seen) < _MAX_THREAD:
            parent = await self.col.find_one({"_id": _key(project_id, node["reply_to"])}, _MEMBER_FIELDS)
            if parent is None or parent["id"] in seen:
                break
            seen.add(parent["id"])
            node = parent
        members: dict[str, Mapping[str, Any]] = {node["id"]: node}
        frontier = [node["id"]]
        while frontier and len(members) < _MAX_THREAD:
            children = self.col.find({"project_id": project_id, "reply_to": {"$in": frontier}}, _MEMBER_FIELDS)
            frontier = []
            async for child in children:
                if child["id"] not in members:
                    members[child["id"]] = child
                    frontier.append(child["id"])
        visible = sorted((doc for doc in members.values() if visible_to(doc, agent_id)), key=lambda doc: doc["sk"])
        root_id = visible[0]["id"] if visible else message["id"]
        wanted = [doc for doc in visible if cursor is None or doc["sk"] > cursor]
        page_docs: list[MessageDoc] = []
        spent = 0
        for start in range(0, len(wanted), _THREAD_BATCH):
            keys = [_key(project_id, doc["id"]) for doc in wanted[start : start + _THREAD_BATCH]]
            batch = [doc async for doc in self.col.find({"_id": {"$in": keys}}).sort("sk", 1)]
            for doc in batch:
                spent += content_size(doc)
                if budget and page_docs and spent > budget:
                    return root_id, page_docs, page_docs[-1]["sk"]
                page_docs.append(doc)
        return root_id, page_docs, None

    async def project_page(
        self,
        project_id: str,
        *,
        agent_id: str | None,
        since: datetime | None,
        status: str | None,
        sender_slug: str | None,
        message_type: str | None,
        pinned: bool | None,
        limit: int,
        cursor: str | None,
        budget: int = 0,
    ) -> tuple[list[MessageDoc], str | None]:
        """Page through every message of a project in storage order (the owner's view), up to ``budget`` bytes a page.

        Args:
            project_id: The project.
            agent_id: Only messages this agent sent or received; ``status`` is then its state.
            since: Only messages stored at or after this time.
            status: Only messages in this state: for ``agent_id`` if given, else the furthest
                state any recipient reached (see :func:`furthest_status`).
            sender_slug: Only messages from this slug.
            message_type: Only messages of this type.
            pinned: Only pinned or unpinned messages.
            limit: Page size.
            cursor: The previous page's ``next_cursor``.
            budget: At most this many content bytes a page (0: no bound).
        """
        query: dict[str, Any] = {"project_id": project_id}
        if agent_id is not None:
            query["$or"] = [{"from_id": agent_id}, {"recipients": agent_id}]
        if since is not None:
            query["sk"] = {"$gte": ulid_floor(since)}
        if agent_id is not None and status is not None:
            # Its state as a recipient: what it sent has no such state, so status keeps it out.
            query["recipients"] = agent_id
            query.update(_status_filter(agent_id, status))
        elif status is not None:
            # "$size 0" and "$elemMatch $exists" are the empty and not-empty tests that MongoDB and
            # the embedded database answer alike there ("a.0" $exists finds nothing on the embedded
            # one, and its $expr ignores the other terms of the query).
            not_empty = {"$elemMatch": {"$exists": True}}
            if status == "acked":
                query["acked_by"] = not_empty
            else:
                query["acked_by"] = {"$size": 0}
                query["read_by"] = not_empty if status == "read" else {"$size": 0}
        query.update(_routing_filter(sender_slug, message_type, pinned, agent_id))
        return await page(self.col, query, "sk", limit, cursor, size=content_size, budget=budget)

    async def mark_read_many(self, project_id: str, agent_id: str, ids: Iterable[str]) -> list[MessageDoc]:
        """Mark read the messages among ``ids`` addressed to an agent; return them (what their receipts need)."""
        addressed = await self.addressed(project_id, agent_id, ids)
        unread = [doc["_id"] for doc in addressed if agent_id not in doc["read_by"]]
        if unread:
            await self.col.update_many({"_id": {"$in": unread}}, {"$addToSet": {"read_by": agent_id}})
        return addressed

    async def addressed(self, project_id: str, agent_id: str, ids: Iterable[str]) -> list[MessageDoc]:
        """Return the messages among ``ids`` addressed to an agent (what its receipts need of them)."""
        keys = [_key(project_id, message_id) for message_id in ids]
        fields = {"id": 1, "project_id": 1, "from_id": 1, "recipients": 1, "read_by": 1, "expires_at": 1}
        return [doc async for doc in self.col.find({"_id": {"$in": keys}, "recipients": agent_id}, fields)]

    async def delete_project(self, project_id: str) -> None:
        """Delete every message of a project."""
        await self.col.delete_many({"project_id": project_id})
