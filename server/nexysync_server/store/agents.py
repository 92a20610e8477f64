"""Agents and their API keys (kept only as SHA-256 hashes)."""

from __future__ import annotations

import asyncio
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ..cache import TtlCache
from ..ids import iso, new_id, utcnow
from ..security import api_key_prefix, new_api_key, sha256_hex
from .batching import Batcher
from .documents import AgentBrief, AgentDoc
from .failures import find_one_and_delete, find_one_and_update
from .pages import page
from .queries import eq


class SlugTaken(Exception):
    """The project has an agent with this slug already."""


class AgentStore:
    """The ``agents`` collection."""

    def __init__(self, db: AsyncDatabase[Any], cache_ttl_s: float = 0.5) -> None:
        self.col: AsyncCollection[AgentDoc] = db["agents"]
        # Every agent request looks up its key and every send its recipient's slug, so both are
        # kept for ``cache_ttl_s``. A change through this process drops its entries at once (exact
        # here); another worker's change shows here when its ``key_revoked`` event arrives (see
        # :meth:`forget`) and at the latest when the entry expires: that TTL is the stated bound.
        self._by_key_hash: TtlCache[str, AgentDoc] = TtlCache(ttl_s=cache_ttl_s)
        self._ids_by_slug: TtlCache[tuple[str, str], str] = TtlCache(ttl_s=cache_ttl_s)
        # (project, agent id) -> slug and last_seen_at, for each send's ``recipients``; last_seen_at
        # is written once a minute at most, so a lag of the TTL tells nothing new.
        self._briefs: TtlCache[tuple[str, str], AgentBrief] = TtlCache(ttl_s=cache_ttl_s)
        # Concurrent look-ups that miss the cache go out together, one indexed query per distinct key.
        self._key_lookups: Batcher[str, AgentDoc | None] = Batcher(self._find_by_key_hashes)

    async def ensure_indexes(self) -> None:
        """Create the unique (project, slug) and key-hash indexes.

        (project, slug) also serves listing by project; nx-27017 cannot put ``_id`` in a compound index.
        """
        await self.col.create_index([("project_id", 1), ("slug", 1)], unique=True)
        await self.col.create_index("key_hash", unique=True)

    async def create(
        self, project_id: str, slug: str, name: str, role: str, capabilities: list[str]
    ) -> tuple[AgentDoc, str]:
        """Insert an agent and return it with its API key (the only time the key exists in clear).

        Raises:
            SlugTaken: the slug is used in this project.
        """
        api_key = new_api_key(slug)
        now = iso(utcnow())
        agent: AgentDoc = {
            "_id": new_id(),
            "project_id": project_id,
            "slug": slug,
            "name": name,
            "role": role,
            "capabilities": capabilities,
            "key_hash": sha256_hex(api_key),
            "key_prefix": api_key_prefix(api_key),
            "created_at": now,
            "updated_at": now,
            "last_seen_at": None,
        }
        try:
            await self.col.insert_one(agent)
        except DuplicateKeyError as exc:
            raise SlugTaken(slug) from exc
        return agent, api_key

    async def by_key(self, api_key: str) -> AgentDoc | None:
        """Find the agent an API key belongs to (a copy the caller may change).

        A key rotated or deleted through this process fails at once; through another worker,
        within the cache TTL (sooner when its ``key_revoked`` event reaches :meth:`forget`).
        Unknown keys are never cached, so a guess always costs a query (and counts as one).
        """
        key_hash = sha256_hex(api_key)
        cached = self._by_key_hash.get(key_hash)
        if cached is not None:
            return cached.copy()
        epoch = self._by_key_hash.epoch
        agent = await self._key_lookups.submit(key_hash)
        if agent is not None:
            self._by_key_hash.put(key_hash, agent.copy(), epoch)
        return agent

    def forget(self, key_hash: str | None = None) -> None:
        """Drop what is cached of a revoked key (every key and slug when ``key_hash`` is ``None``).

        The hub calls it for each ``key_revoked`` event it sees, including other workers'.
        """
        # A revocation also means an agent may be gone: slugs are cheap to read again.
        self._ids_by_slug.clear()
        self._briefs.clear()
        if key_hash is None:
            self._by_key_hash.clear()
        else:
            self._by_key_hash.drop(key_hash)

    async def _find_by_key_hashes(self, hashes: list[str]) -> list[AgentDoc | BaseException | None]:
        # One indexed query per key, side by side: the embedded database reads a ``$in`` on
        # ``key_hash`` whole (see :mod:`.queries`), and this runs for every request's key.
        unique = list(dict.fromkeys(hashes))
        docs = await asyncio.gather(*(self.col.find_one({"key_hash": eq(key_hash)}) for key_hash in unique))
        found = {doc["key_hash"]: doc for doc in docs if doc is not None}
        # Each caller gets its own copy: callers change the document they get (last_seen_at).
        return [found[h].copy() if h in found else None for h in hashes]

    async def raise_unread_floor(self, agent_id: str, floor: str) -> None:
        """Record where the agent's unread messages begin (see ``messages.raised_unread_floor``); it only rises."""
        await self.col.update_one({"_id": agent_id}, {"$max": {"unread_floor": floor}})

    async def key_hashes(self, agent_ids: set[str]) -> set[str]:
        """Return the key hashes the agents ``agent_ids`` hold now (one query; a deleted agent holds none).

        By ``_id``, which the embedded database answers through its index: a ``$in`` on
        ``key_hash`` reads the whole collection there, and this runs every few seconds.
        """
        cursor = self.col.find({"_id": {"$in": sorted(agent_ids)}}, {"key_hash": 1})
        return {doc["key_hash"] async for doc in cursor}

    async def get(self, project_id: str, agent_id: str) -> AgentDoc | None:
        """Find an agent of a project."""
        return await self.col.find_one({"_id": agent_id, "project_id": project_id})

    async def id_for_slug(self, project_id: str, slug: str) -> str | None:
        """Return the id of a project's agent by slug (cached for the cache TTL), or ``None``."""
        agent_id = self._ids_by_slug.get((project_id, slug))
        if agent_id is None:
            epoch = self._ids_by_slug.epoch
            agent = await self.col.find_one({"project_id": eq(project_id), "slug": eq(slug)}, {"_id": 1})
            if agent is None:
                return None
            agent_id = agent["_id"]
            self._ids_by_slug.put((project_id, slug), agent_id, epoch)
        return agent_id

    async def ids_except(self, project_id: str, agent_id: str) -> list[str]:
        """Return the ids of every agent of a project but one (a broadcast's recipients)."""
        cursor = self.col.find({"project_id": eq(project_id), "_id": {"$ne": agent_id}}, {"_id": 1})
        return [doc["_id"] async for doc in cursor]

    async def briefs(self, project_id: str, agent_ids: list[str]) -> dict[str, AgentBrief]:
        """Return slug and ``last_seen_at`` of a project's agents by id (those that still exist; cached)."""
        found: dict[str, AgentBrief] = {}
        missing = []
        for agent_id in agent_ids:
            brief = self._briefs.get((project_id, agent_id))
            if brief is None:
                missing.append(agent_id)
            else:
                found[agent_id] = brief
        if missing:
            epoch = self._briefs.epoch
            query = {"project_id": eq(project_id), "_id": {"$in": missing}}
            async for doc in self.col.find(query, {"slug": 1, "last_seen_at": 1}):
                found[doc["_id"]] = {"_id": doc["_id"], "slug": doc["slug"], "last_seen_at": doc.get("last_seen_at")}
                self._briefs.put((project_id, doc["_id"]), found[doc["_id"]], epoch)
        return found

    async def list(self, project_id: str, limit: int, cursor: str | None) -> tuple[list[AgentDoc], str | None]:
        """Page through a project's agents, oldest first."""
        return await page(self.col, {"project_id": project_id}, "_id", limit, cursor)

    async def count(self, project_id: str) -> int:
        """Count a project's agents."""
        return await self.col.count_documents({"project_id": project_id})

    async def update(self, project_id: str, agent_id: str, changes: dict[str, Any]) -> AgentDoc | None:
        """Apply ``changes`` (name, role, capabilities); ``None`` if not found."""
        updated = await find_one_and_update(
            self.col,
            {"_id": agent_id, "project_id": project_id},
            {"$set": {**changes, "updated_at": iso(utcnow())}},
            return_document=ReturnDocument.AFTER,
        )
        if updated is not None:
            self._by_key_hash.drop(updated["key_hash"])  # this process shows the new name at once
        return updated

    async def rotate_key(self, project_id: str, agent_id: str) -> tuple[AgentDoc, str, str] | None:
        """Replace an agent's key; the old one stops matching at once.

        Returns:
            The agent, its new key and the hash of the key it replaced; ``None`` if not found.
        """
        agent = await self.get(project_id, agent_id)
        if agent is None:
            return None
        api_key = new_api_key(agent["slug"])
        updated = await find_one_and_update(
            self.col,
            {"_id": agent_id, "project_id": project_id, "key_hash": agent["key_hash"]},
            {
                "$set": {
                    "key_hash": sha256_hex(api_key),
                    "key_prefix": api_key_prefix(api_key),
                    "updated_at": iso(utcnow()),
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        self._by_key_hash.drop(agent["key_hash"])
        if updated is None:
            return None  # deleted, or rotated by someone else, meanwhile
        return updated, api_key, agent["key_hash"]

    async def touch(self, agent_id: str, when: str) -> None:
        """Record that an agent was seen at ``when``."""
        await self.col.update_one({"_id": agent_id}, {"$set": {"last_seen_at": when}})
        self._briefs.clear()  # keyed by project too; touches are once a minute per agent

    async def delete(self, project_id: str, agent_id: str) -> AgentDoc | None:
        """Delete an agent; return what was deleted, or ``None`` if it did not exist."""
        agent = await find_one_and_delete(self.col, {"_id": agent_id, "project_id": project_id})
        if agent is None:
            return None
        self._ids_by_slug.drop((project_id, agent["slug"]))
        self._by_key_hash.drop(agent["key_hash"])
        self._briefs.drop((project_id, agent_id))
        return agent

    async def delete_project(self, project_id: str) -> None:
        """Delete every agent of a project."""
        await self.col.delete_many({"project_id": project_id})
        self.forget()
