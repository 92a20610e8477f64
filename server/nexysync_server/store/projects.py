"""Projects: the isolation boundary."""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from ..cache import TtlCache
from ..ids import iso, new_id, utcnow
from .documents import ProjectDoc
from .failures import find_one_and_update
from .pages import page


class ProjectStore:
    """The ``projects`` collection."""

    def __init__(self, db: AsyncDatabase[Any], cache_ttl_s: float = 0.5) -> None:
        self.col: AsyncCollection[ProjectDoc] = db["projects"]
        # project -> message TTL in hours, read on every send. A change through this process
        # applies at once; through another worker, to this one's sends within ``cache_ttl_s``.
        self._ttl_hours: TtlCache[str, int] = TtlCache(ttl_s=cache_ttl_s)

    async def ensure_indexes(self) -> None:
        """Create the owner index used to list a user's projects."""
        await self.col.create_index("owner_id")

    async def create(self, owner_id: str, name: str, ttl_hours: int) -> ProjectDoc:
        """Insert a project owned by ``owner_id``."""
        now = iso(utcnow())
        project: ProjectDoc = {
            "_id": new_id(),
            "name": name,
            "owner_id": owner_id,
            "default_ttl_hours": ttl_hours,
            "created_at": now,
            "updated_at": now,
        }
        await self.col.insert_one(project)
        return project

    async def get_owned(self, project_id: str, owner_id: str) -> ProjectDoc | None:
        """Find a project if ``owner_id`` owns it (others' projects look like missing ones)."""
        return await self.col.find_one({"_id": project_id, "owner_id": owner_id})

    async def exists(self, project_id: str) -> bool:
        """Tell whether a project exists."""
        return await self.col.find_one({"_id": project_id}, {"_id": 1}) is not None

    async def message_ttl_hours(self, project_id: str) -> int | None:
        """Return how long the project keeps messages (cached for the cache TTL); ``None`` if it is gone."""
        hours = self._ttl_hours.get(project_id)
        if hours is None:
            epoch = self._ttl_hours.epoch
            project = await self.col.find_one({"_id": project_id}, {"default_ttl_hours": 1})
            if project is None:
                return None
            hours = int(project["default_ttl_hours"])
            self._ttl_hours.put(project_id, hours, epoch)
        return hours

    async def count_owned(self, owner_id: str) -> int:
        """Count a user's projects."""
        return await self.col.count_documents({"owner_id": owner_id})

    async def list_owned(self, owner_id: str, limit: int, cursor: str | None) -> tuple[list[ProjectDoc], str | None]:
        """Page through a user's projects, oldest first."""
        return await page(self.col, {"owner_id": owner_id}, "_id", limit, cursor)

    async def update(self, project_id: str, owner_id: str, changes: dict[str, Any]) -> ProjectDoc | None:
        """Apply ``changes`` (name, default_ttl_hours) to an owned project; ``None`` if not found."""
        updated = await find_one_and_update(
            self.col,
            {"_id": project_id, "owner_id": owner_id},
            {"$set": {**changes, "updated_at": iso(utcnow())}},
            return_document=ReturnDocument.AFTER,
        )
        # After the write, so that a send reading meanwhile cannot put the old value back.
        self._ttl_hours.drop(project_id)
        return updated

    async def delete(self, project_id: str) -> None:
        """Delete the project record."""
        await self.col.delete_one({"_id": project_id})
        self._ttl_hours.drop(project_id)
