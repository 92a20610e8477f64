"""MongoDB access, one module per collection family; each document's shape is a TypedDict in :mod:`.documents`.

Only portable MongoDB is used, and only the subset that the embedded nx-27017 gets right:
timestamps are stored as ISO 8601 strings (``$set`` of a datetime is stored as a string there),
TTL fields are datetimes written once at insert, arrays that later take ``$addToSet`` are
created empty at insert, arrays of documents are rewritten whole with ``$set`` (``$push`` of a
document turns the array into JSON strings there), "not in array" is ``$nin`` (``$ne`` on an
array matches every document there), ``_id`` is never part of a compound index,
and ``$setOnInsert`` / ``replace_one(upsert=True)`` are not used. Times a query compares with
"now" where early would be wrong (leases, claims) are epoch milliseconds (``find`` and ``update``
there compare date-like strings only to the second, ``count_documents`` does not), and no ``$or``
sits beside other terms. nx-27017 also ignores the database name: every database of one server
shares its collections, so tests on one shared server tell their documents apart by id.
"""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from ..settings import Settings
from .agents import AgentStore
from .audit import AuditStore
from .blobs import Blobs
from .devices import DeviceStore
from .events import EventStore
from .expiry import Expiry
from .files import FileStore
from .kv import KvStore
from .leases import LeaseStore
from .limits import RequestCounters, WindowCounters
from .messages import MessageStore
from .pairing import PairingStore
from .presence import PresenceStore
from .projects import ProjectStore
from .receipts import ReceiptStore
from .refs import RefStore
from .streams import OwnerStreamLeases
from .tasks import TaskStore
from .tokens import RefreshTokenStore
from .usage import UsageStore
from .users import UserStore


class Store:
    """All collections of one database, with their indexes.

    Args:
        settings: Where the database is.
    """

    def __init__(self, settings: Settings) -> None:
        # Short timeouts: while the database is down a request fails within about a second
        # (503 DATABASE_UNAVAILABLE, see errors.py) instead of hanging for pymongo's default 30 s.
        # The socket timeout only bounds a database that accepts but never answers; it stays
        # above the watcher's change-stream wait.
        self.client: AsyncMongoClient[Any] = AsyncMongoClient(
            settings.mongodb_uri,
            tz_aware=True,
            serverSelectionTimeoutMS=settings.mongodb_select_timeout_ms,
            connectTimeoutMS=settings.mongodb_connect_timeout_ms,
            socketTimeoutMS=settings.mongodb_socket_timeout_ms,
        )
        self.db: AsyncDatabase[Any] = self.client[settings.db_name]
        # Ended documents: TTL indexes, or a sweep on the embedded database (see expiry.py).
        self.expiry = Expiry()
        self.users = UserStore(self.db)
        self.tokens = RefreshTokenStore(self.db, self.expiry)
        self.projects = ProjectStore(self.db, settings.cache_ttl_s)
        self.agents = AgentStore(self.db, settings.cache_ttl_s)
        self.events = EventStore(self.db, settings.event_ttl_days, self.expiry)
        self.messages = MessageStore(self.db, self.events, self.expiry, settings.event_content_max_bytes)
        self.receipts = ReceiptStore(self.db, self.expiry)
        self.usage = UsageStore(self.db)
        self.presence = PresenceStore(self.db, settings.cache_ttl_s, self.expiry)
        self.owner_streams = OwnerStreamLeases(self.db, self.expiry)
        self.kv = KvStore(self.db)
        self.path_leases = LeaseStore(self.db)
        self.refs = RefStore(self.db)
        self.tasks = TaskStore(self.db)
        self.pairing_slots = PairingStore(self.db, self.expiry)
        self.devices = DeviceStore(self.db)
        self.audit = AuditStore(self.db, self.expiry)
        self.request_counts = RequestCounters(self.db, self.expiry)
        self.auth_counts = WindowCounters(self.db, self.expiry)
        self.files = FileStore(self.db, settings.file_retention_days, settings.file_pending_ttl_s)
        # File content, when this process has the CDN's volume (always in dev). Without it the
        # CDN's sweep removes the content of deleted files and projects within one interval.
        self.blobs = Blobs(settings.files_dir) if settings.files_dir else None

    async def ensure_indexes(self) -> None:
        """Create every collection's indexes (idempotent; run at start-up)."""
        for part in (
            self.users,
            self.tokens,
            self.projects,
            self.agents,
            self.messages,
            self.receipts,
            self.usage,
            self.events,
            self.presence,
            self.owner_streams,
            self.kv,
            self.path_leases,
            self.refs,
            self.tasks,
            self.pairing_slots,
            self.devices,
            self.audit,
            self.files,
            self.request_counts,
            self.auth_counts,
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
        await self.receipts.delete_project(project_id)
        await self.agents.delete_project(project_id)
        await self.usage.delete_project(project_id)
        await self.events.delete_project(project_id)
        await self.presence.delete_project(project_id)
        await self.kv.delete_project(project_id)
        await self.path_leases.delete_project(project_id)
        await self.refs.delete_project(project_id)
        await self.tasks.delete_project(project_id)
        await self.pairing_slots.delete_project(project_id)
        await self.devices.delete_project(project_id)
        await self.audit.delete_project(project_id)
        await self.files.delete_project(project_id)
        if self.blobs is not None:
            self.blobs.delete_project(project_id)
        await self.projects.delete(project_id)

    async def close(self) -> None:
        """Close the connection pool."""
        await self.client.close()
