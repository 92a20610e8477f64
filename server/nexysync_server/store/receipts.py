"""Delivery receipts: where each recipient's copy of a message is, with the time of each step.

A copy moves ``queued`` (stored) → ``delivered`` (the recipient fetched its content) → ``read``
→ ``acked`` and never back. ``queued`` needs no record: a receipt document is made at a copy's
first step, keyed ``<project_id>:<message_id>:<agent_id>``, so a send writes nothing more. The
step reached is the document's ``rank``, moved forward only by an update conditional on the rank
it was read at; a step that skips others (a first fetch that also reads) records them all, at
one time.

``told_rank`` is the furthest step the sender was told of (``message_receipt`` events, one per
step, in order). Whoever moves a copy tells the steps it moved it through and then records the
telling; a copy found moved but not told (a server that died in between, or one still telling)
is left to the sweep (:meth:`ReceiptStore.untold`): the sender hears of each step at least once,
and neither a retry nor a quick next request tells it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from ..ids import iso, utcnow
from .documents import AgentRef, MessageDoc, MessageRef
from .expiry import Expiry
from .failures import insert_new
from .queries import eq

STATES = ("queued", "delivered", "read", "acked")
_RANK = {state: rank for rank, state in enumerate(STATES)}
# A copy moved by several requests at once is read again and retried; this many losses in a
# row means something is wrong, not busy.
_ATTEMPTS = 10


@dataclass(frozen=True, slots=True)
class Step:
    """A step a copy reached that its sender was not told of yet."""

    key: str
    project_id: str
    message_id: str
    sender_id: str
    agent: str
    state: str
    at: str

    @property
    def rank(self) -> int:
        """The step's place in :data:`STATES`."""
        return _RANK[self.state]


def receipt_key(project_id: str, message_id: str, agent_id: str) -> str:
    """Return the ``_id`` of one recipient's receipt of a message."""
    return f"{project_id}:{message_id}:{agent_id}"


def _untold(doc: dict[str, Any]) -> list[Step]:
    """Return the steps a receipt document reached that its sender was not told of, in order."""
    return [
        Step(
            doc["_id"],
            doc["project_id"],
            doc["message_id"],
            doc["sender_id"],
            doc["agent"],
            state,
            doc[f"{state}_at"],
        )
        for state in STATES[doc.get("told_rank", 0) + 1 : doc["rank"] + 1]
    ]


def state_of(doc: dict[str, Any] | None) -> str:
    """Return the state a receipt document records (``queued`` when there is none)."""
    return STATES[doc["rank"]] if doc else "queued"


class ReceiptStore:
    """The ``receipts`` collection."""

    def __init__(self, db: AsyncDatabase[Any], expiry: Expiry | None = None) -> None:
        self._expiry = expiry or Expiry()
        self.col = db["receipts"]

    async def ensure_indexes(self) -> None:
        """Create the per-message index and the TTL index (a receipt lives as long as its message)."""
        await self.col.create_index([("project_id", 1), ("message_id", 1)])
        # The sweep looks for copies whose last step was not told; they are few, and recent.
        await self.col.create_index([("untold", 1), ("moved_at", 1)])
        await self._expiry.index(self.col, "expires_at")

    async def advance(self, messages: Iterable[MessageRef], agent: AgentRef, state: str) -> list[Step]:
        """Move the agent's copies of ``messages`` to ``state`` (those already there or past it stay).

        Messages the agent is not a recipient of are ignored.

        Returns:
            The steps this call moved these copies through: tell them, then call :meth:`told`
            (steps whose teller died are the sweep's, see :meth:`untold`).
        """
        return await self.advance_copies([(message, agent) for message in messages], state)

    async def advance_copies(
        self, copies: Iterable[tuple[MessageRef, AgentRef]], state: str, *, first_steps: bool = False
    ) -> list[Step]:
        """Move each ``(message, agent)`` copy to ``state``, the copies of several agents in one write.

        As :meth:`advance`; a pair whose agent is not a recipient of its message is ignored.
        ``first_steps``: the copies are most likely at no step yet (handed over as they were
        sent), so they are inserted at once and read only if stored already.
        """
        rank = _RANK[state]
        targets = {
            receipt_key(m["project_id"], m["id"], agent["_id"]): (m, agent)
            for m, agent in copies
            if agent["_id"] in m["recipients"]
        }
        if not targets or rank == 0:
            return []
        now = iso(utcnow())
        current: dict[str, dict[str, Any]] = {}
        pending = list(targets)
        if len(targets) > 1 and not first_steps:
            current = {doc["_id"]: doc async for doc in self.col.find({"_id": {"$in": pending}})}
        # else: a single copy (a message fetched on its push) is usually fetched for the first
        # time, so it is inserted at once, and read first only if it exists.
        # key -> the rank this call moved the copy from: only those steps are this call's to tell.
        # A step moved by an earlier request is that request's (it may be telling it right now),
        # and one whose teller died is the sweep's; returning it here told it twice.
        moved_from: dict[str, int] = {}
        for _ in range(_ATTEMPTS):
            fresh = [key for key in pending if key not in current]
            behind = [key for key in pending if key in current and current[key]["rank"] < rank]
            starts = {key: 0 for key in fresh} | {key: current[key]["rank"] for key in behind}
            new_docs = [self._new(key, *targets[key], rank, now) for key in fresh]
            lost = await self._insert(new_docs, current)
            lost += await self._forward([current[key] for key in behind], rank, now, current)
            moved_from |= {key: start for key, start in starts.items() if key not in lost}
            if not lost:
                break
            # Stored already, or moved by another request first: read them again and go on from there.
            current.update({doc["_id"]: doc async for doc in self.col.find({"_id": {"$in": lost}})})
            pending = lost
        else:
            raise RuntimeError(f"receipts lost {_ATTEMPTS} races in a row")
        return [
            step for key, start in moved_from.items() for step in _untold(current[key]) if _RANK[step.state] > start
        ]

    @staticmethod
    def _new(key: str, message: MessageRef, agent: AgentRef, rank: int, now: str) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "_id": key,
            "project_id": message["project_id"],
            "message_id": message["id"],
            "sender_id": message["from_id"],
            "agent_id": agent["_id"],
            "agent": agent["slug"],
            "rank": rank,
            "told_rank": 0,
            # rank > told_rank, kept as a field for the sweep: the embedded database's find()
            # mishandles an $or beside other conditions, and a field can be indexed.
            "untold": True,
            "moved_at": now,
            "expires_at": message["expires_at"],
        }
        for state in STATES[1 : rank + 1]:
            doc[f"{state}_at"] = now
        return doc

    async def _insert(self, docs: list[dict[str, Any]], current: dict[str, dict[str, Any]]) -> list[str]:
        """Insert first receipts; return the keys someone else inserted first."""
        lost = {docs[index]["_id"] for index in await insert_new(self.col, docs)}
        for doc in docs:
            if doc["_id"] not in lost:
                current[doc["_id"]] = doc
        return list(lost)

    async def _forward(
        self, docs: list[dict[str, Any]], rank: int, now: str, current: dict[str, dict[str, Any]]
    ) -> list[str]:
        """Move stored receipts forward, each only from the rank it was read at; return those that moved since."""
        lost: list[str] = []
        for doc in docs:
            changes: dict[str, Any] = {"rank": rank, "moved_at": now, "untold": True}
            for state in STATES[doc["rank"] + 1 : rank + 1]:
                changes[f"{state}_at"] = now
            result = await self.col.update_one({"_id": doc["_id"], "rank": doc["rank"]}, {"$set": changes})
            if result.modified_count == 1:
                current[doc["_id"]] = {**doc, **changes}
            else:
                lost.append(doc["_id"])
        return lost

    async def told(self, steps: Iterable[Step]) -> None:
        """Record that the senders were told of these steps (each copy: up to its furthest one here)."""
        furthest: dict[str, int] = {}
        for step in steps:
            furthest[step.key] = max(furthest.get(step.key, 0), step.rank)
        by_rank: dict[int, list[str]] = {}
        for key, rank in furthest.items():
            by_rank.setdefault(rank, []).append(key)
        for rank, keys in by_rank.items():
            # Only where the copy is still at that step: one moved on since has steps to tell.
            await self.col.update_many(
                {"_id": {"$in": keys}, "rank": rank, "told_rank": {"$lt": rank}},
                {"$set": {"told_rank": rank, "untold": False}},
            )

    async def untold(self, older_than_s: float, limit: int = 200) -> list[Step]:
        """Return the steps of copies moved more than ``older_than_s`` ago that nobody told (its teller died)."""
        horizon = iso(utcnow() - timedelta(seconds=older_than_s))
        query = {"untold": True, "moved_at": {"$lt": horizon}}
        return [step async for doc in self.col.find(query).limit(limit) for step in _untold(doc)]

    async def of_message(self, message: MessageDoc) -> dict[str, dict[str, Any]]:
        """Return a message's receipt documents by recipient agent id."""
        return {doc["agent_id"]: doc for doc in await self._of(message["project_id"], message["id"])}

    async def of_messages(self, project_id: str, message_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Return the receipt documents of several messages, by message id.

        One indexed query per message, side by side: a ``$in`` over message ids would be read
        whole by the embedded database (see :mod:`.queries`).
        """
        unique = list(dict.fromkeys(message_ids))
        found = await asyncio.gather(*(self._of(project_id, message_id) for message_id in unique))
        return dict(zip(unique, found, strict=True))

    async def _of(self, project_id: str, message_id: str) -> list[dict[str, Any]]:
        query = {"project_id": eq(project_id), "message_id": eq(message_id)}
        return [doc async for doc in self.col.find(query)]

    async def delete_project(self, project_id: str) -> None:
        """Delete every receipt of a project."""
        await self.col.delete_many({"project_id": project_id})
