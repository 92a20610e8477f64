"""Presence: stream leases per connection, and one online/offline state per agent.

A stream holds a lease that its worker renews; a worker that dies stops renewing and the lease
runs out, so nobody stays online forever. The per-agent state document turns many leases on
many workers into single online/offline transitions: only the request whose conditional update
flips it emits the ``presence_change`` event.

A lease's end is compared as ``expires_ms`` (epoch milliseconds, see :func:`~..ids.epoch_ms`):
compared as the ISO string ``expires``, the embedded database's ``find`` took a lease ending later
in the current second for ended, so the sweep could end a live stream's lease up to a second
early. ``expires`` is still written, for a server of the previous version running beside this one
in a rollout; a lease only it wrote (no ``expires_ms``) is compared by that string, a second late.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ..cache import TtlCache
from ..ids import epoch_ms, iso, new_id, utcnow
from .documents import AgentRef, LeaseDoc, PresenceDoc
from .expiry import Expiry
from .queries import eq

# Leases are also dropped by a TTL index a day after they were made, whatever happened.
_GARBAGE_AFTER = timedelta(days=1)
# A lease written by the previous version has only ``expires``, compared to the second.
_STRING_SLACK = timedelta(seconds=1)


def _is_live(lease: LeaseDoc, now_ms: int) -> bool:
    if "expires_ms" in lease:
        return lease["expires_ms"] > now_ms
    return lease["expires"] > iso(utcnow())


class PresenceStore:
    """The ``presence_leases`` and ``presence_state`` collections."""

    def __init__(self, db: AsyncDatabase[Any], cache_ttl_s: float = 0.5, expiry: Expiry | None = None) -> None:
        self._expiry = expiry or Expiry()
        self.leases: AsyncCollection[LeaseDoc] = db["presence_leases"]
        self.states: AsyncCollection[PresenceDoc] = db["presence_state"]
        # agent id -> whether it is online (its state), for each send's ``recipients[].online``:
        # exact for states flipped by this process (dropped then), within ``cache_ttl_s`` for others.
        self._streaming: TtlCache[str, bool] = TtlCache(ttl_s=cache_ttl_s)

    async def ensure_indexes(self) -> None:
        """Create the lookup indexes and the garbage TTL index."""
        await self.leases.create_index("agent_id")
        await self.leases.create_index("project_id")
        await self.leases.create_index("expires")
        await self.leases.create_index("expires_ms")
        await self._expiry.index(self.leases, "gc_at")
        await self.states.create_index("project_id")

    async def hold(self, agent: AgentRef, lease_s: float) -> str:
        """Take a lease for one stream of ``agent``; return its id."""
        now = utcnow()
        lease_id = new_id()
        await self.leases.insert_one(
            {
                "_id": lease_id,
                "project_id": agent["project_id"],
                "agent_id": agent["_id"],
                "slug": agent["slug"],
                "since": iso(now),
                "expires": iso(now + timedelta(seconds=lease_s)),
                "expires_ms": epoch_ms() + int(lease_s * 1000),
                "gc_at": now + _GARBAGE_AFTER,
            }
        )
        return lease_id

    async def renew(self, lease_ids: list[str], lease_s: float) -> None:
        """Push the expiry of leases held by this process."""
        if lease_ids:
            expires = {
                "expires": iso(utcnow() + timedelta(seconds=lease_s)),
                "expires_ms": epoch_ms() + int(lease_s * 1000),
            }
            await self.leases.update_many({"_id": {"$in": lease_ids}}, {"$set": expires})

    async def release(self, lease_id: str) -> bool:
        """Drop a lease; tell whether this call dropped it."""
        result = await self.leases.delete_one({"_id": lease_id})
        return result.deleted_count == 1

    async def live_leases(self, agent_id: str) -> int:
        """Count an agent's unexpired leases, on any worker."""
        now_ms = epoch_ms()
        return sum([_is_live(lease, now_ms) async for lease in self.leases.find({"agent_id": eq(agent_id)})])

    async def expired(self, limit: int = 100) -> list[LeaseDoc]:
        """Return leases whose worker stopped renewing them."""
        found = [doc async for doc in self.leases.find({"expires_ms": {"$lte": epoch_ms()}}).limit(limit)]
        # And those only the previous version wrote, by their string, a second late rather than
        # early; a lease of this version found here too has ended anyway.
        seen = {doc["_id"] for doc in found}
        legacy = self.leases.find({"expires": {"$lte": iso(utcnow() - _STRING_SLACK)}}).limit(limit)
        found += [doc async for doc in legacy if doc["_id"] not in seen]
        return found[:limit]

    async def streaming(self, project_id: str) -> dict[str, str]:
        """Return slug -> earliest ``since`` of the project's agents holding a live stream."""
        online: dict[str, str] = {}
        now_ms = epoch_ms()
        async for lease in self.leases.find({"project_id": eq(project_id)}):
            if not _is_live(lease, now_ms):
                continue
            slug = lease["slug"]
            if slug not in online or lease["since"] < online[slug]:
                online[slug] = lease["since"]
        return online

    async def streaming_among(self, agent_ids: list[str]) -> set[str]:
        """Return which of these agents are online, as presence tells it (cached, see ``__init__``).

        Online: holding a stream on any worker, or having closed the last one less than the grace
        ago (a reconnect within it is handed what came meanwhile from the log). Read from the
        per-agent states by ``_id``, which stays as fast however many agents and streams there are.
        """
        known = {agent_id: self._streaming.get(agent_id) for agent_id in agent_ids}
        missing = [agent_id for agent_id, streaming in known.items() if streaming is None]
        if missing:
            epoch = self._streaming.epoch
            states = self.states.find({"_id": {"$in": missing}, "online": eq(True)}, {"_id": 1})
            live = {state["_id"] async for state in states}
            for agent_id in missing:
                known[agent_id] = agent_id in live
                self._streaming.put(agent_id, agent_id in live, epoch)
        return {agent_id for agent_id, streaming in known.items() if streaming}

    async def flip(self, agent: AgentRef, online: bool) -> bool:
        """Set an agent's state; tell whether this call changed it (and so must announce it)."""
        current = await self.states.find_one({"_id": agent["_id"]})
        if current is not None and bool(current["online"]) == online:
            # The common case (a reconnect while online): one read, no write.
            return False
        try:
            result = await self.states.update_one(
                {"_id": agent["_id"], "online": not online}, {"$set": {"online": online}}
            )
            if result.modified_count == 1:
                return True
            if not online:
                return False
            try:
                await self.states.insert_one({"_id": agent["_id"], "project_id": agent["project_id"], "online": True})
            except DuplicateKeyError:
                return False
            return True
        finally:
            # After the write: a read that raced it cannot cache the old state (see TtlCache's epoch).
            self._streaming.drop(agent["_id"])

    async def delete_project(self, project_id: str) -> None:
        """Forget a project's leases and states."""
        await self.leases.delete_many({"project_id": project_id})
        await self.states.delete_many({"project_id": project_id})
