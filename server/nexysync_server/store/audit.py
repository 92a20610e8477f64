"""The audit log: management actions, failed sign-ins and refused keys, kept for 90 days."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from ..ids import iso, new_id, utcnow
from .documents import AuditDoc
from .expiry import Expiry
from .pages import page

_KEEP = timedelta(days=90)


class AuditStore:
    """The ``audit`` collection."""

    def __init__(self, db: AsyncDatabase[Any], expiry: Expiry | None = None) -> None:
        self._expiry = expiry or Expiry()
        self.col: AsyncCollection[AuditDoc] = db["audit"]

    async def ensure_indexes(self) -> None:
        """Create the per-project index and the 90-day TTL index."""
        await self.col.create_index("project_id")
        await self._expiry.index(self.col, "expires_at")

    async def record(
        self, project_id: str | None, actor: str, action: str, target: str, outcome: str, source_ip: str
    ) -> None:
        """Append one entry; ``project_id`` is None for events outside a project (failed sign-ins)."""
        now = utcnow()
        await self.col.insert_one(
            {
                "_id": new_id(),
                "project_id": project_id,
                "actor": actor,
                "action": action,
                "target": target,
                "outcome": outcome,
                "source_ip": source_ip,
                "at": iso(now),
                "expires_at": now + _KEEP,
            }
        )

    async def list(self, project_id: str, limit: int, cursor: str | None) -> tuple[list[AuditDoc], str | None]:
        """Page through a project's entries, oldest first."""
        return await page(self.col, {"project_id": project_id}, "_id", limit, cursor)

    async def delete_project(self, project_id: str) -> None:
        """Delete a project's entries."""
        await self.col.delete_many({"project_id": project_id})
