"""Leases of open owner streams, so that a user's streams can be counted across workers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from ..ids import epoch_ms, new_id, utcnow
from .documents import OwnerLeaseDoc
from .expiry import Expiry

# Leases are also dropped by a TTL index a day after they were made, whatever happened.
_GARBAGE_AFTER = timedelta(days=1)


class OwnerStreamLeases:
    """The ``owner_stream_leases`` collection: one lease per open owner stream, renewed by its worker.

    A worker that dies stops renewing, and its leases stop counting once they run out.
    """

    def __init__(self, db: AsyncDatabase[Any], expiry: Expiry | None = None) -> None:
        self._expiry = expiry or Expiry()
        self.col: AsyncCollection[OwnerLeaseDoc] = db["owner_stream_leases"]

    async def ensure_indexes(self) -> None:
        """Create the per-user index and the garbage TTL index."""
        await self.col.create_index("user_id")
        await self._expiry.index(self.col, "gc_at")

    async def hold(self, user_id: str, lease_s: float) -> str:
        """Take a lease for one stream of ``user_id``; return its id."""
        lease_id = new_id()
        expires_ms = epoch_ms() + int(lease_s * 1000)
        await self.col.insert_one(
            {"_id": lease_id, "user_id": user_id, "expires_ms": expires_ms, "gc_at": utcnow() + _GARBAGE_AFTER}
        )
        return lease_id

    async def renew(self, lease_ids: list[str], lease_s: float) -> None:
        """Push the expiry of leases held by this process."""
        if lease_ids:
            expires_ms = epoch_ms() + int(lease_s * 1000)
            await self.col.update_many({"_id": {"$in": lease_ids}}, {"$set": {"expires_ms": expires_ms}})

    async def release(self, lease_id: str) -> None:
        """Drop a lease."""
        await self.col.delete_one({"_id": lease_id})

    async def live(self, user_id: str) -> int:
        """Count a user's unexpired leases, on any worker."""
        return await self.col.count_documents({"user_id": user_id, "expires_ms": {"$gt": epoch_ms()}})
