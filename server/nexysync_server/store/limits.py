"""The counters behind the limits: requests per caller per minute, and the unauthenticated ways in.

Both are fixed windows keyed by caller (or subject) and window, so every worker and server sees
the same counts. What a count means (the limit, the refusal) is the limiting services' business
(:mod:`nexysync_server.services.limits`); this module only counts.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ..ids import utcnow
from .expiry import Expiry
from .failures import DatabaseDidNotWrite


class RequestCounters:
    """The ``rate_limits`` collection: one shared count per caller and one-minute window.

    Args:
        db: The database.
    """

    def __init__(self, db: AsyncDatabase[Any], expiry: Expiry | None = None) -> None:
        self._expiry = expiry or Expiry()
        self.col = db["rate_limits"]

    async def ensure_indexes(self) -> None:
        """Create the window index used to delete old counters."""
        await self.col.create_index("window")

    async def count(self, caller: str, window: int) -> int:
        """Return the shared count of ``caller`` in ``window`` (0 if nobody counted it yet)."""
        doc = await self.col.find_one({"_id": f"{caller}:{window}"})
        return int(doc["count"]) if doc else 0

    async def add(self, caller: str, window: int, count: int) -> int:
        """Add ``count`` to the shared count of ``caller`` in ``window``; return the new total."""
        doc = await self.col.find_one_and_update(
            {"_id": f"{caller}:{window}", "window": window},
            {"$inc": {"count": count}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise DatabaseDidNotWrite("a rate-limit counter's upsert")
        return int(doc["count"])

    async def forget_before(self, window: int) -> None:
        """Delete the counters of windows before ``window``."""
        await self.col.delete_many({"window": {"$lt": window}})


class WindowCounters:
    """The ``auth_limits`` collection: counts per key (``<kind>:<subject>:<window>``) that expire.

    Args:
        db: The database.
    """

    def __init__(self, db: AsyncDatabase[Any], expiry: Expiry | None = None) -> None:
        self._expiry = expiry or Expiry()
        self.col = db["auth_limits"]

    async def ensure_indexes(self) -> None:
        """Create the TTL index that drops finished windows."""
        await self._expiry.index(self.col, "expires_at")

    async def refused(self, key: str) -> int:
        """Count one refusal under ``key``; return how many there were (1: the first of its window)."""
        doc = await self.col.find_one_and_update(
            {"_id": key}, {"$inc": {"refused": 1}}, return_document=ReturnDocument.AFTER
        )
        return int(doc.get("refused", 0)) if doc is not None else 0

    async def decrement(self, key: str) -> None:
        """Take one back from the count under ``key`` (a slot taken and given back); nothing if it expired."""
        await self.col.update_one({"_id": key, "count": {"$gt": 0}}, {"$inc": {"count": -1}})

    async def increment(self, key: str, keep_s: float) -> int:
        """Add one to the count under ``key``, kept ``keep_s`` seconds from its first count; return the new count."""
        update = {"$inc": {"count": 1}}
        try:
            doc = await self.col.find_one_and_update(
                {"_id": key}, update, upsert=True, return_document=ReturnDocument.AFTER
            )
        except DuplicateKeyError:
            # Two first hits raced to create the counter: it exists now, so increment it.
            doc = await self.col.find_one_and_update({"_id": key}, update, return_document=ReturnDocument.AFTER)
        if doc is not None and "expires_at" not in doc:
            await self.col.update_one({"_id": key}, {"$set": {"expires_at": utcnow() + timedelta(seconds=keep_s)}})
        return int(doc["count"]) if doc else 1
