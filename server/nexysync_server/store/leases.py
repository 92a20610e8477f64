"""The ``leases`` collection: leases on workspace paths the server never learns.

A lease covers one path, which the server knows only as ``key`` (an HMAC of the normalised path,
under a key the project's agents derive from the project key) and ``ancestors`` (the HMACs of the
directories above it); the path itself is an envelope. Two live leases of different agents
conflict when either is exclusive and one's key equals the other's or is among its ancestors:
``src/auth/`` and ``src/auth/login.py`` both ways, never ``src/authz/``.

Grants are serialised per project by a guard in ``lease_heads`` (``_id`` the project id): a
claimer takes it with one conditional update, reads the project's live leases, inserts its own and
gives the guard back, raising the project's fencing token past the tokens it handed out. Every
step is a single-document write, so this holds across workers and servers on MongoDB and on the
embedded database alike. A claimer that dies holding the guard stops holding it after
:data:`GUARD_MS`; one that stalls past that finds the guard taken when it gives it back, so it
deletes what it inserted and fails (:class:`GuardLost`): two agents never both believe they hold
one path, though a reader may see the loser's leases for that moment.

Times are epoch milliseconds from an injectable clock (see :func:`..ids.epoch_ms` on why not
strings); a lease past ``expires_ms`` counts for nothing, and the sweep removes and announces it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from ..ids import epoch_ms, new_id
from .documents import AgentRef, PathLeaseDoc
from .failures import find_one_and_delete, find_one_and_update, insert_new
from .queries import eq

#: How long a claimer may hold a project's guard before another may take it.
GUARD_MS = 5_000
#: How long a claimer waits for a busy guard before giving up (:class:`GuardBusy`).
_GUARD_WAIT_S = 5.0


class GuardBusy(Exception):
    """The project's guard stayed taken for as long as a claimer waits."""


class GuardLost(Exception):
    """The claimer held the guard past :data:`GUARD_MS` and another took it: nothing was granted."""


class IdTaken(Exception):
    """A lease id of the claim is already used."""


@dataclass(frozen=True, slots=True)
class Refused:
    """A claim that was not granted: the live leases in its way, or the limit it would pass."""

    conflicts: list[PathLeaseDoc]
    limit: str = ""


def in_the_way(wanted: PathLeaseDoc, held: PathLeaseDoc) -> bool:
    """Tell whether ``held`` stops ``wanted`` from being granted (see the module's rule)."""
    if held["agent_id"] == wanted["agent_id"] or not (wanted["exclusive"] or held["exclusive"]):
        return False
    return held["key"] == wanted["key"] or held["key"] in wanted["ancestors"] or wanted["key"] in held["ancestors"]


class LeaseStore:
    """The ``leases`` and ``lease_heads`` collections.

    Args:
        db: The database.
        clock: Now, in epoch milliseconds (tests move it).
    """

    def __init__(self, db: AsyncDatabase[Any], clock: Callable[[], int] = epoch_ms) -> None:
        self.col: AsyncCollection[PathLeaseDoc] = db["leases"]
        self.heads: AsyncCollection[dict[str, Any]] = db["lease_heads"]
        self.clock = clock

    async def ensure_indexes(self) -> None:
        """Index the project's leases by end, and every lease by end for the sweep."""
        await self.col.create_index([("project_id", 1), ("expires_ms", 1)])
        await self.col.create_index("expires_ms")

    async def live(self, project_id: str, agent_id: str | None = None) -> list[PathLeaseDoc]:
        """Return the project's live leases (or one agent's), oldest first."""
        query: dict[str, Any] = {"project_id": eq(project_id), "expires_ms": {"$gt": self.clock()}}
        leases = [doc async for doc in self.col.find(query)]
        if agent_id is not None:
            leases = [doc for doc in leases if doc["agent_id"] == agent_id]
        return sorted(leases, key=lambda doc: doc["token"])

    async def grant(
        self, agent: AgentRef, wanted: list[PathLeaseDoc], *, per_agent: int, per_project: int
    ) -> list[PathLeaseDoc] | Refused:
        """Grant every lease of ``wanted`` (all or none) unless a live lease is in the way or a limit passed.

        ``wanted`` are complete documents but for ``token``, ``created_ms``, ``renewed_ms``.

        Raises:
            GuardBusy: other claims of the project kept its guard for too long.
            GuardLost: this claim held the guard too long; nothing was granted.
            IdTaken: a lease id is used already.
        """
        project_id = agent["project_id"]
        nonce, token = await self._take_guard(project_id)
        granted: list[PathLeaseDoc] = []
        try:
            ids = [doc["_id"] for doc in wanted]
            stored = {doc["_id"]: doc async for doc in self.col.find({"_id": {"$in": ids}})}
            if stored:
                # A retry of a claim whose answer was lost gets what it stored; anything else is a clash.
                if len(stored) == len(ids) and all(
                    stored[doc["_id"]]["agent_id"] == agent["_id"] and stored[doc["_id"]]["key"] == doc["key"]
                    for doc in wanted
                ):
                    return [stored[lease_id] for lease_id in ids]
                raise IdTaken()
            live = await self.live(project_id)
            in_way = {held["_id"]: held for want in wanted for held in live if in_the_way(want, held)}
            if in_way:
                return Refused(sorted(in_way.values(), key=lambda doc: doc["token"]))
            if sum(1 for held in live if held["agent_id"] == agent["_id"]) + len(wanted) > per_agent:
                return Refused([], "agent")
            if len(live) + len(wanted) > per_project:
                return Refused([], "project")
            now = self.clock()
            for offset, doc in enumerate(wanted, start=1):
                doc.update({"token": token + offset, "created_ms": now, "renewed_ms": now})
            taken = await insert_new(self.col, wanted)
            if taken:  # an id used meanwhile by a lease of another project (ids are global)
                await self.col.delete_many({"_id": {"$in": [d["_id"] for i, d in enumerate(wanted) if i not in taken]}})
                raise IdTaken()
            granted = wanted
            token += len(wanted)
        finally:
            if not await self._give_guard(project_id, nonce, token):
                if granted:
                    await self.col.delete_many({"_id": {"$in": [doc["_id"] for doc in granted]}})
                raise GuardLost()
        return granted

    async def _take_guard(self, project_id: str) -> tuple[str, int]:
        """Take the project's guard; return this holder's nonce and the last token handed out."""
        nonce = new_id()
        deadline = asyncio.get_running_loop().time() + _GUARD_WAIT_S
        pause = 0.002
        while True:
            now = self.clock()
            head = await self.heads.find_one_and_update(
                {"_id": project_id, "held_until_ms": {"$lt": now}},
                {"$set": {"holder": nonce, "held_until_ms": now + GUARD_MS}},
                return_document=ReturnDocument.AFTER,
            )
            if head is not None:
                return nonce, int(head["token"])
            if await self.heads.find_one({"_id": project_id}, {"_id": 1}) is None:
                # The project's first claim: make its head (another claimer may make it first).
                await insert_new(self.heads, [{"_id": project_id, "token": 0, "holder": "", "held_until_ms": 0}])
                continue
            if asyncio.get_running_loop().time() > deadline:
                raise GuardBusy()
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    async def _give_guard(self, project_id: str, nonce: str, token: int) -> bool:
        """Give the guard back, recording the last token; ``False`` when another took it meanwhile."""
        result = await self.heads.update_one(
            {"_id": project_id, "holder": nonce}, {"$set": {"holder": "", "held_until_ms": 0, "token": token}}
        )
        return result.matched_count == 1

    async def renew(self, project_id: str, agent_id: str, lease_id: str, ttl_s: int) -> PathLeaseDoc | None:
        """Extend the agent's live lease to end ``ttl_s`` from now; ``None`` if it holds no such live lease."""
        now = self.clock()
        return await find_one_and_update(
            self.col,
            {"_id": lease_id, "project_id": project_id, "agent_id": agent_id, "expires_ms": {"$gt": now}},
            {"$set": {"expires_ms": now + ttl_s * 1000, "renewed_ms": now}},
            return_document=ReturnDocument.AFTER,
        )

    async def get(self, project_id: str, lease_id: str) -> PathLeaseDoc | None:
        """Return a live lease of the project, or ``None``."""
        doc = await self.col.find_one({"_id": lease_id, "project_id": project_id})
        return doc if doc is not None and doc["expires_ms"] > self.clock() else None

    async def remove(self, project_id: str, lease_id: str, renewed_ms: int | None = None) -> PathLeaseDoc | None:
        """Delete a lease (only if still at ``renewed_ms`` when given); return it, or ``None`` if gone or renewed."""
        query: dict[str, Any] = {"_id": lease_id, "project_id": project_id}
        if renewed_ms is not None:
            query["renewed_ms"] = renewed_ms
        return await find_one_and_delete(self.col, query)

    async def ended(self, limit: int = 200) -> list[PathLeaseDoc]:
        """Return leases past their end (any project's), for the sweep to remove and announce."""
        cursor = self.col.find({"expires_ms": {"$lte": self.clock()}}).limit(limit)
        return [doc async for doc in cursor]

    async def remove_ended(self, lease: PathLeaseDoc) -> bool:
        """Delete an ended lease unless renewed meanwhile; tell whether this call deleted it (announce it then)."""
        deleted = await self.col.delete_one(
            {"_id": lease["_id"], "expires_ms": {"$lte": self.clock()}, "renewed_ms": lease["renewed_ms"]}
        )
        return deleted.deleted_count == 1

    async def delete_project(self, project_id: str) -> None:
        """Delete a project's leases and its head."""
        await self.col.delete_many({"project_id": project_id})
        await self.heads.delete_one({"_id": project_id})
