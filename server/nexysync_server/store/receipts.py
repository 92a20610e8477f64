"""Delivery receipts: where each recipient's copy of a message is, with the time of each step.

A copy moves ``queued`` (stored) → ``delivered`` (the recipient fetched its content) → ``read``
→ ``acked`` and never back. ``queued`` needs no record: a receipt document is made at a copy's
first step, keyed ``<project_id>:<message_id>:<agent_id>``, so a send writes nothing more. The
step reached is the document's ``rank``, moved forward only by an update conditional on the rank
it was read at; a step that skips others (a first fetch that also reads) records them all, at
one time.

``told`` lists the steps the sender was told of (``message_receipt`` events). Whoever moves a
copy, or finds it moved but not told (a server that died in between), tells and then records the
telling: the sender hears of each step at least once, and a retry does not tell it again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from ..ids import iso, utcnow

STATES = ("queued", "delivered", "read", "acked")
_RANK = {state: rank for rank, state in enumerate(STATES)}
# A copy moved by several requests at once is read again and retried; this many losses in a
# row means something is wrong, not busy.
_ATTEMPTS = 10


@dataclass(frozen=True, slots=True)
class Step:
    """A step a copy reached that its sender was not told of yet."""

    key: str
    message_id: str
    sender_id: str
    state: str
    at: str


def receipt_key(project_id: str, message_id: str, agent_id: str) -> str:
    """Return the ``_id`` of one recipient's receipt of a message."""
    return f"{project_id}:{message_id}:{agent_id}"


def _times(doc: dict[str, Any] | None) -> dict[str, str | None]:
    return {f"{state}_at": (doc or {}).get(f"{state}_at") for state in STATES[1:]}


def state_of(doc: dict[str, Any] | None) -> str:
    """Return the state a receipt document records (``queued`` when there is none)."""
    return STATES[doc["rank"]] if doc else "queued"


def public(message: dict[str, Any], slug: str, doc: dict[str, Any] | None) -> dict[str, Any]:
    """Return the API representation of one recipient's receipt."""
    return {"agent": slug, "state": state_of(doc), "queued_at": message["created_at"], **_times(doc)}


def summary(recipients: int, docs: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Count a message's copies per state; copies without a receipt document are queued."""
    counts = Counter(state_of(doc) for doc in docs)
    counts["queued"] += recipients - sum(counts.values())
    return {state: counts[state] for state in STATES}


class ReceiptStore:
    """The ``receipts`` collection."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.col = db["receipts"]

    async def ensure_indexes(self) -> None:
        """Create the per-message index and the TTL index (a receipt lives as long as its message)."""
        await self.col.create_index([("project_id", 1), ("message_id", 1)])
        await self.col.create_index("expires_at", expireAfterSeconds=0)

    async def advance(self, messages: Iterable[dict[str, Any]], agent_id: str, state: str) -> list[Step]:
        """Move the agent's copies of ``messages`` to ``state`` (those already there or past it stay).

        Messages the agent is not a recipient of are ignored.

        Returns:
            Every step of these copies the sender was not told of (moved now or before): tell
            them, then call :meth:`told`.
        """
        rank = _RANK[state]
        targets = {receipt_key(m["project_id"], m["id"], agent_id): m for m in messages if agent_id in m["recipients"]}
        if not targets:
            return []
        current = {doc["_id"]: doc async for doc in self.col.find({"_id": {"$in": list(targets)}})}
        now = iso(utcnow())
        pending = list(targets)
        for _ in range(_ATTEMPTS):
            fresh = [key for key in pending if key not in current and rank > 0]
            behind = [key for key in pending if key in current and current[key]["rank"] < rank]
            lost = await self._insert(
                [self._new(key, targets[key], agent_id, rank, now) for key in fresh], current
            ) + await self._forward([current[key] for key in behind], rank, now, current)
            if not lost:
                break
            # Another request moved these first: read them again and go on from there.
            current.update({doc["_id"]: doc async for doc in self.col.find({"_id": {"$in": lost}})})
            pending = lost
        else:
            raise RuntimeError(f"receipts of agent {agent_id} lost {_ATTEMPTS} races in a row")
        steps: list[Step] = []
        for key, message in targets.items():
            doc = current.get(key)
            if doc is None:
                continue
            for reached in STATES[1 : doc["rank"] + 1]:
                if reached not in doc["told"]:
                    steps.append(Step(key, message["id"], message["from_id"], reached, doc[f"{reached}_at"]))
        return steps

    @staticmethod
    def _new(key: str, message: dict[str, Any], agent_id: str, rank: int, now: str) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "_id": key,
            "project_id": message["project_id"],
            "message_id": message["id"],
            "agent_id": agent_id,
            "rank": rank,
            # Created empty: on the embedded database $addToSet does nothing to a missing field.
            "told": [],
            "expires_at": message["expires_at"],
        }
        for state in STATES[1 : rank + 1]:
            doc[f"{state}_at"] = now
        return doc

    async def _insert(self, docs: list[dict[str, Any]], current: dict[str, dict[str, Any]]) -> list[str]:
        """Insert first receipts; return the keys someone else inserted first."""
        if not docs:
            return []
        lost: set[str] = set()
        try:
            if len(docs) == 1:
                await self.col.insert_one(docs[0])
            else:
                await self.col.insert_many(docs, ordered=False)
        except DuplicateKeyError:
            lost = {docs[0]["_id"]}
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if exc.details.get("writeConcernErrors") or any(e.get("code") != 11000 for e in errors):
                raise
            lost = {docs[error["index"]]["_id"] for error in errors}
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
            changes: dict[str, Any] = {"rank": rank}
            for state in STATES[doc["rank"] + 1 : rank + 1]:
                changes[f"{state}_at"] = now
            result = await self.col.update_one({"_id": doc["_id"], "rank": doc["rank"]}, {"$set": changes})
            if result.modified_count == 1:
                current[doc["_id"]] = {**doc, **changes}
            else:
                lost.append(doc["_id"])
        return lost

    async def told(self, steps: Iterable[Step]) -> None:
        """Record that the senders were told of these steps."""
        by_state: dict[str, list[str]] = {}
        for step in steps:
            by_state.setdefault(step.state, []).append(step.key)
        for state, keys in by_state.items():
            await self.col.update_many({"_id": {"$in": keys}}, {"$addToSet": {"told": state}})

    async def of_message(self, message: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Return a message's receipt documents by recipient agent id."""
        cursor = self.col.find({"project_id": message["project_id"], "message_id": message["id"]})
        return {doc["agent_id"]: doc async for doc in cursor}

    async def of_messages(self, project_id: str, message_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Return the receipt documents of several messages, by message id."""
        found: dict[str, list[dict[str, Any]]] = {message_id: [] for message_id in message_ids}
        if message_ids:
            cursor = self.col.find({"project_id": project_id, "message_id": {"$in": message_ids}})
            async for doc in cursor:
                found[doc["message_id"]].append(doc)
        return found

    async def delete_project(self, project_id: str) -> None:
        """Delete every receipt of a project."""
        await self.col.delete_many({"project_id": project_id})
