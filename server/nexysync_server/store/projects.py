"""Projects: the isolation boundary."""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from ..ids import iso, new_id, utcnow
from .pages import page


def public(project: dict[str, Any]) -> dict[str, Any]:
    """Return the API representation of a project."""
    return {
        "id": project["_id"],
        "name": project["name"],
        "owner_id": project["owner_id"],
        "default_ttl_hours": project["default_ttl_hours"],
        "created_at": project["created_at"],
        "updated_at": project["updated_at"],
    }


class ProjectStore:
    """The ``projects`` collection."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.col = db["projects"]

    async def ensure_indexes(self) -> None:
        """Create the owner index used to list a user's projects."""
        await self.col.create_index("owner_id")

    async def create(self, owner_id: str, name: str, ttl_hours: int) -> dict[str, Any]:
        """Insert a project owned by ``owner_id``."""
        now = iso(utcnow())
        project = {
            "_id": new_id(),
            "name": name,
            "owner_id": owner_id,
            "default_ttl_hours": ttl_hours,
            "created_at": now,
            "updated_at": now,
        }
        await self.col.insert_one(project)
        return project

    async def get_owned(self, project_id: str, owner_id: str) -> dict[str, Any] | None:
        """Find a project if ``owner_id`` owns it (others' projects look like missing ones)."""
        return await self.col.find_one({"_id": project_id, "owner_id": owner_id})

    async def get(self, project_id: str) -> dict[str, Any] | None:
        """Find a project by id."""
        return await self.col.find_one({"_id": project_id})

    async def list_owned(self, owner_id: str, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Page through a user's projects, oldest first."""
        return await page(self.col, {"owner_id": owner_id}, "_id", limit, cursor)

    async def update(self, project_id: str, owner_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        """Apply ``changes`` (name, default_ttl_hours) to an owned project; ``None`` if not found."""
        return await self.col.find_one_and_update(
            {"_id": project_id, "owner_id": owner_id},
            {"$set": {**changes, "updated_at": iso(utcnow())}},
            return_document=ReturnDocument.AFTER,
        )

    async def delete(self, project_id: str) -> None:
        """Delete the project record."""
        await self.col.delete_one({"_id": project_id})
