"""Per-project daily counters, kept in MongoDB so they hold across workers.

Sends are counted in memory and written in one ``$inc`` per project every second, so counting
adds no database write to each send. Readers add what this process has not written yet; other
workers' counts show up within a second.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ..background import Periodic
from ..cache import TtlCache
from ..ids import utcnow

FLUSH_INTERVAL_S = 1.0
#: How old the stored daily counts a quota check reads may be.
STORED_TTL_S = 1.0


def today() -> str:
    """Return the current UTC day as ``YYYY-MM-DD``."""
    return utcnow().strftime("%Y-%m-%d")


def _day_document(key: tuple[str, str]) -> dict[str, str]:
    """The ``usage_daily`` document of a (project, day) key, as a filter that upserts it whole."""
    project_id, day = key
    return {"_id": f"{project_id}:{day}", "project_id": project_id, "day": day}


def _storage_id(project_id: str) -> str:
    return f"{project_id}:storage"


def _projects_id(user_id: str) -> str:
    return f"user:{user_id}:projects"


class UsageStore:
    """The ``usage_daily`` collection: one document per project and UTC day, plus its storage counter."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.col = db["usage_daily"]
        self._pending: Counter[tuple[str, str]] = Counter()
        self._pending_bytes: Counter[tuple[str, str]] = Counter()
        # Counts and bytes being written right now (by a flush or a settle): still this process's to count.
        self._flying: Counter[tuple[str, str]] = Counter()
        self._flying_bytes: Counter[tuple[str, str]] = Counter()
        # Today's (count, bytes) as stored, read at most once a second per project.
        self._stored: TtlCache[tuple[str, str], tuple[int, int]] = TtlCache(ttl_s=STORED_TTL_S)
        self._flusher = Periodic("usage-flusher", self.flush, FLUSH_INTERVAL_S)

    async def ensure_indexes(self) -> None:
        """Create the per-project index used when a project is deleted."""
        await self.col.create_index("project_id")

    def add_messages(self, project_id: str, count: int = 1, size: int = 0) -> None:
        """Count ``count`` more messages of ``size`` bytes in all for today (written within a second).

        A negative count and size give back what was counted for a send that stored nothing.
        """
        key = (project_id, today())
        self._pending[key] += count
        self._pending_bytes[key] += size

    async def messages_today(self, project_id: str) -> int:
        """Return how many messages the project sent today."""
        return (await self.stored_messages(project_id))[0] + self.pending_messages(project_id)[0]

    async def message_bytes_today(self, project_id: str) -> int:
        """Return how many bytes of messages the project sent today."""
        return (await self.stored_messages(project_id))[1] + self.pending_messages(project_id)[1]

    async def stored_messages(self, project_id: str) -> tuple[int, int]:
        """Return today's message count and bytes as written to the database (by every worker)."""
        doc = await self.col.find_one({"_id": f"{project_id}:{today()}"})
        return (int(doc.get("messages", 0)), int(doc.get("message_bytes", 0))) if doc else (0, 0)

    def pending_messages(self, project_id: str) -> tuple[int, int]:
        """Return the count and bytes this process counted today and has not written yet."""
        key = (project_id, today())
        return self._pending[key] + self._flying[key], self._pending_bytes[key] + self._flying_bytes[key]

    async def counted_today(self, project_id: str) -> tuple[tuple[int, int], tuple[int, int]]:
        """Return today's message count and bytes for a quota check: as stored (at most a second old), and unwritten.

        A flush moves this process's counts into the stored ones without a moment where they are
        in neither (which would let a burst of sends through): counts being written stay counted
        as this process's, and are added to the cached stored counts once written.
        """
        key = (project_id, today())
        stored = self._stored.get(key)
        if stored is None:
            stored = await self.stored_messages(project_id)
            self._stored.put(key, stored)
        return stored, self.pending_messages(project_id)

    async def settle_messages(self, project_id: str, count: int, size: int) -> tuple[int, int]:
        """Write this process's unwritten counts of today and ``count`` messages of ``size`` bytes now.

        Returns:
            Today's message count and bytes as stored after the write (every worker's).
        """
        key = (project_id, today())
        moved = (self._pending.pop(key, 0), self._pending_bytes.pop(key, 0))
        amount = (moved[0] + count, moved[1] + size)
        self._fly(key, amount, 1)
        try:
            doc = await self.col.find_one_and_update(
                _day_document(key),
                {"$inc": {"messages": amount[0], "message_bytes": amount[1]}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except BaseException:
            self._pending[key] += moved[0]
            self._pending_bytes[key] += moved[1]
            raise
        finally:
            self._fly(key, amount, -1)
        assert doc is not None  # (upserted)
        total = (int(doc["messages"]), int(doc["message_bytes"]))
        self._stored.put(key, total)
        return total

    async def flush(self) -> None:
        """Write the counts held in memory."""
        pending, self._pending = self._pending, Counter()
        pending_bytes, self._pending_bytes = self._pending_bytes, Counter()
        keys = list(dict.fromkeys([*pending, *pending_bytes]))
        for key in keys:
            self._fly(key, (pending[key], pending_bytes[key]), 1)
        for index, key in enumerate(keys):
            increments = {"messages": pending[key], "message_bytes": pending_bytes[key]}
            try:
                await self.col.update_one(_day_document(key), {"$inc": increments}, upsert=True)
            except Exception:
                # Keep what was not written, to try again on the next flush.
                for left in keys[index:]:
                    self._pending[left] += pending[left]
                    self._pending_bytes[left] += pending_bytes[left]
                    self._fly(left, (pending[left], pending_bytes[left]), -1)
                raise
            written = (pending[key], pending_bytes[key])
            self._fly(key, written, -1)
            cached = self._stored.get(key)
            if cached is not None:
                # Read before this write, most likely; if after, this counts it twice for under
                # a second, which refuses early rather than late.
                self._stored.put(key, (cached[0] + written[0], cached[1] + written[1]))

    def _fly(self, key: tuple[str, str], amount: tuple[int, int], sign: int) -> None:
        """Note ``amount`` as being written (``sign`` 1) or no longer (-1)."""
        self._flying[key] += sign * amount[0]
        self._flying_bytes[key] += sign * amount[1]
        if not (self._flying[key] or self._flying_bytes[key]):
            del self._flying[key], self._flying_bytes[key]

    def start(self) -> None:
        """Start flushing every second in the background."""
        self._flusher.start()

    async def stop(self) -> None:
        """Stop the background flusher and write what is left."""
        await self._flusher.stop()
        await self.flush()

    async def reserve_storage(self, project_id: str, size: int, limit: int) -> bool:
        """Add ``size`` bytes to the project's storage if it stays within ``limit``; tell whether it did.

        One conditional ``$inc``, so two workers reserving at once cannot both pass the limit; the
        first reservation too, as the counter is made (at zero) before it is ever reserved from.
        """
        if size > limit:
            return False
        key = _storage_id(project_id)
        return await self._reserve({"_id": key, "project_id": project_id}, "storage_bytes", size, limit, 0)

    async def _reserve(self, counter: dict[str, str], field: str, amount: int, limit: int, start: int) -> bool:
        """Add ``amount`` to a counter's ``field`` if it stays within ``limit``; make the counter at ``start`` first."""
        done = await self.col.update_one(
            {"_id": counter["_id"], field: {"$lte": limit - amount}}, {"$inc": {field: amount}}
        )
        if done.matched_count:
            return True
        # The counter may not exist yet, or may have been made by a racing first reserver since
        # our $inc: either way, try once more once it exists (a full counter refuses again).
        # Racing first reservers all get here: one insert wins, the others find it made, and
        # every one of them then takes its share through the conditional $inc alone.
        if await self.col.find_one({"_id": counter["_id"]}, {"_id": 1}) is None:
            with contextlib.suppress(DuplicateKeyError):
                await self.col.insert_one({**counter, field: start})
        done = await self.col.update_one(
            {"_id": counter["_id"], field: {"$lte": limit - amount}}, {"$inc": {field: amount}}
        )
        return bool(done.matched_count)

    async def reserve_project(self, user_id: str, limit: int, owned: int) -> bool:
        """Count one more project of ``user_id`` if it stays within ``limit``; tell whether it did.

        Args:
            user_id: The owner.
            limit: The most projects a user may own.
            owned: How many the user owns now: the counter's start for accounts older than it.
        """
        return await self._reserve({"_id": _projects_id(user_id)}, "projects", 1, limit, owned)

    async def reserve_agent(self, project_id: str, limit: int, existing: int) -> bool:
        """Count one more agent of the project if it stays within ``limit``; tell whether it did.

        Args:
            project_id: The project.
            limit: The most agents a project may have.
            existing: How many it has now: the counter's start for projects older than it.
        """
        counter = {"_id": f"{project_id}:agents", "project_id": project_id}
        return await self._reserve(counter, "agents", 1, limit, existing)

    async def release_agent(self, project_id: str) -> None:
        """Give back one agent of the project (deleted, or its creation failed)."""
        await self.col.update_one({"_id": f"{project_id}:agents"}, {"$inc": {"agents": -1}})

    async def release_project(self, user_id: str) -> None:
        """Give back one project of ``user_id`` (deleted, or its creation failed)."""
        await self.col.update_one({"_id": _projects_id(user_id)}, {"$inc": {"projects": -1}})

    async def release_storage(self, project_id: str, size: int) -> None:
        """Give back ``size`` bytes of the project's storage (a file, reference or value was deleted)."""
        if size <= 0:
            return
        await self.col.update_one({"_id": _storage_id(project_id)}, {"$inc": {"storage_bytes": -size}})

    async def storage_bytes(self, project_id: str) -> int:
        """Return the bytes the project's references and files take."""
        doc = await self.col.find_one({"_id": _storage_id(project_id)})
        return max(0, int(doc["storage_bytes"])) if doc else 0

    async def delete_project(self, project_id: str) -> None:
        """Delete a project's counters, including any not written yet."""
        for key in [key for key in self._pending if key[0] == project_id]:
            del self._pending[key]
        for key in [key for key in self._pending_bytes if key[0] == project_id]:
            del self._pending_bytes[key]
        for key in [key for key in self._flying if key[0] == project_id]:
            self._flying.pop(key, None)
            self._flying_bytes.pop(key, None)
        self._stored.drop((project_id, today()))
        await self.col.delete_many({"project_id": project_id})
