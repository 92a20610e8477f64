"""Per-project daily counters, kept in MongoDB so they hold across workers."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from ..ids import utcnow


def today() -> str:
    """Return the current UTC day as ``YYYY-MM-DD``."""
    return utcnow().strftime("%Y-%m-%d")


class UsageStore:
    """The ``usage_daily`` collection: one document per project and UTC day."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.col = db["usage_daily"]

    async def ensure_indexes(self) -> None:
        """Create the per-project index used when a project is deleted."""
        await self.col.create_index("project_id")

    async def add_messages(self, project_id: str, count: int = 1) -> int:
        """Count ``count`` more messages today; return today's total."""
        day = today()
        doc = await self.col.find_one_and_update(
            {"_id": f"{project_id}:{day}", "project_id": project_id, "day": day},
            {"$inc": {"messages": count}},
            upsert=True,
            return_document=True,
        )
        return int(doc["messages"])

    async def messages_today(self, project_id: str) -> int:
        """Return how many messages the project sent today."""
        doc = await self.col.find_one({"_id": f"{project_id}:{today()}"})
        return int(doc["messages"]) if doc else 0

    async def delete_project(self, project_id: str) -> None:
        """Delete a project's counters."""
        await self.col.delete_many({"project_id": project_id})
