"""MongoDB access, one module per collection family.

Only portable MongoDB is used, and only the subset that the embedded nx-27017 gets right:
timestamps are stored as ISO 8601 strings (``$set`` of a datetime is stored as a string there),
TTL fields are datetimes written once at insert, arrays that later take ``$addToSet`` are
created empty at insert, arrays of documents are rewritten whole with ``$set`` (``$push`` of a
document turns the array into JSON strings there), "not in array" is ``$nin`` (``$ne`` on an
array matches every document there), ``_id`` is never part of a compound index,
and ``$setOnInsert`` / ``replace_one(upsert=True)`` are not used.
"""

from __future__ import annotations

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from ..settings import Settings
from .agents import AgentStore
from .audit import AuditStore
from .events import EventStore
from .kv import KvStore
from .messages import MessageStore
from .presence import PresenceStore
from .projects import ProjectStore
from .tokens import RefreshTokenStore
from .usage import UsageStore
from .users import UserStore


class Store:
    """All collections of one database, with their indexes.

    Args:
        settings: Where the database is.
    """

    def __init__(self, settings: Settings) -> None:
        self.client: AsyncMongoClient = AsyncMongoClient(
            settings.mongodb_uri, tz_aware=True, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000
        )
        self.db: AsyncDatabase = self.client[settings.db_name]
        self.users = UserStore(self.db)
        self.tokens = RefreshTokenStore(self.db)
        self.projects = ProjectStore(self.db)
        self.agents = AgentStore(self.db)
        self.messages = MessageStore(self.db)
        self.usage = UsageStore(self.db)
        self.events = EventStore(self.db, settings.event_ttl_days)
        self.presence = PresenceStore(self.db)
        self.kv = KvStore(self.db)
        self.audit = AuditStore(self.db)

    async def ensure_indexes(self) -> None:
        """Create every collection's indexes (idempotent; run at start-up)."""
        for part in (
            self.users,
            self.tokens,
            self.projects,
            self.agents,
            self.messages,
            self.usage,
            self.events,
            self.presence,
            self.kv,
            self.audit,
        ):
            await part.ensure_indexes()

    async def ping(self) -> bool:
        """Tell whether the database answers."""
        try:
            await self.client.admin.command("ping")
        except Exception:
            return False
        return True

    async def delete_project_data(self, project_id: str) -> None:
        """Remove every record that belongs to a project, then the project itself."""
        await self.messages.delete_project(project_id)
        await self.agents.delete_project(project_id)
        await self.usage.delete_project(project_id)
        await self.events.delete_project(project_id)
        await self.presence.delete_project(project_id)
        await self.kv.delete_project(project_id)
        await self.audit.delete_project(project_id)
        await self.projects.delete(project_id)

    async def close(self) -> None:
        """Close the connection pool."""
        await self.client.close()
