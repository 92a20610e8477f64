"""Per-project daily counters, kept in MongoDB so they hold across workers.

Sends are counted in memory and written in one ``$inc`` per project every second, so counting
adds no database write to each send. Readers add what this process has not written yet; other
workers' counts show up within a second.
"""

from __future__ import annotations

from collections import Counter

from pymongo.asynchronous.database import AsyncDatabase

from ..background import Periodic
from ..ids import utcnow

FLUSH_INTERVAL_S = 1.0


def today() -> str:
    """Return the current UTC day as ``YYYY-MM-DD``."""
    return utcnow().strftime("%Y-%m-%d")


def _storage_id(project_id: str) -> str:
    return f"{project_id}:storage"


class UsageStore:
    """The ``usage_daily`` collection: one document per project and UTC day, plus its storage counter."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.col = db["usage_daily"]
        self._pending: Counter[tuple[str, str]] = Counter()
        self._flusher = Periodic("usage-flusher", self.flush, FLUSH_INTERVAL_S)
        #: How many times this process wrote counts: a count read from the database before the
        #: latest write misses what that write moved out of the pending counts.
        self.writes = 0

    async def ensure_indexes(self) -> None:
        """Create the per-project index used when a project is deleted."""
        await self.col.create_index("project_id")

    def add_messages(self, project_id: str, count: int = 1) -> None:
        """Count ``count`` more messages for today (written within a second)."""
        self._pending[(project_id, today())] += count

    async def messages_today(self, project_id: str) -> int:
        """Return how many messages the project sent today."""
        return await self.stored_messages(project_id) + self.pending_messages(project_id)

    async def stored_messages(self, project_id: str) -> int:
        """Return today's count as written to the database (by every worker)."""
        doc = await self.col.find_one({"_id": f"{project_id}:{today()}"})
        return int(doc["messages"]) if doc else 0

    def pending_messages(self, project_id: str) -> int:
        """Return what this process counted today and has not written yet."""
        return self._pending.get((project_id, today()), 0)

    async def flush(self) -> None:
        """Write the counts held in memory.

        A count stays pending until its write is done, so that a quota check made meanwhile
        still sees it; what failed stays pending for the next flush.
        """
        for (project_id, day), count in list(self._pending.items()):
            await self.col.update_one(
                {"_id": f"{project_id}:{day}", "project_id": project_id, "day": day},
                {"$inc": {"messages": count}},
                upsert=True,
            )
            self._pending[(project_id, day)] -= count
            if self._pending[(project_id, day)] <= 0:
                del self._pending[(project_id, day)]
            self.writes += 1

    def start(self) -> None:
        """Start flushing every second in the background."""
        self._flusher.start()

    async def stop(self) -> None:
        """Stop the background flusher and write what is left."""
        await self._flusher.stop()
        await self.flush()

    async def reserve_storage(self, project_id: str, size: int, limit: int) -> bool:
        """Add ``size`` bytes to the project's storage if it stays within ``limit``; tell whether it did.

        One conditional ``$inc``, so two workers reserving at once cannot both pass the limit.
        """
        if size > limit:
            return False
        key = _storage_id(project_id)
        done = await self.col.update_one(
            {"_id": key, "storage_bytes": {"$lte": limit - size}}, {"$inc": {"storage_bytes": size}}
        )
        if done.matched_count:
            return True
        if await self.col.find_one({"_id": key}, {"_id": 1}) is not None:
            return False
        # The project's first stored bytes: create its counter. A racing creator's upsert becomes
        # an increment of this one, which can pass the limit only by that first upload.
        await self.col.update_one(
            {"_id": key, "project_id": project_id}, {"$inc": {"storage_bytes": size}}, upsert=True
        )
        return True

    async def release_storage(self, project_id: str, size: int) -> None:
        """Give back ``size`` bytes of the project's storage (a file or reference was deleted)."""
        await self.col.update_one({"_id": _storage_id(project_id)}, {"$inc": {"storage_bytes": -size}})

    async def storage_bytes(self, project_id: str) -> int:
        """Return the bytes the project's references and files take."""
        doc = await self.col.find_one({"_id": _storage_id(project_id)})
        return max(0, int(doc["storage_bytes"])) if doc else 0

    async def delete_project(self, project_id: str) -> None:
        """Delete a project's counters, including any not written yet."""
        for key in [key for key in self._pending if key[0] == project_id]:
            del self._pending[key]
        await self.col.delete_many({"project_id": project_id})
