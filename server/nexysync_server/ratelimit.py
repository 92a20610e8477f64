"""Requests per agent per minute, counted in MongoDB so the limit holds across workers and servers.

Each process counts its requests in memory and adds them to the shared per-minute counter once
a second, reading back the total; a check compares the shared total plus this process's unsent
count against the limit. The first request of an agent in a minute reads the shared count, so a
new worker does not start from zero. Across processes the limit can be overshot by what the
others served in the last second: the price of not writing on every request.
"""

from __future__ import annotations

import time
from collections import Counter

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from .background import Periodic
from .errors import Problem
from .store.failures import DatabaseDidNotWrite

_WINDOW_S = 60
_FLUSH_S = 1.0
# Counter documents of windows this old are deleted at the next flush.
_KEEP_WINDOWS = 5


class RateLimiter:
    """Fixed one-minute windows per agent.

    Args:
        db: Where the shared counters live (collection ``rate_limits``).
        per_minute: Requests an agent may make per minute.
    """

    def __init__(self, db: AsyncDatabase, per_minute: int) -> None:
        self.col = db["rate_limits"]
        self._limit = per_minute
        self._pending: Counter[tuple[str, int]] = Counter()
        self._shared: dict[tuple[str, int], int] = {}
        self._flusher = Periodic("rate-limit-flusher", self.flush, _FLUSH_S)
        #: The window whose old counters were last deleted: they age only when the window moves.
        self._swept_window: int | None = None

    async def ensure_indexes(self) -> None:
        """Create the window index used to delete old counters."""
        await self.col.create_index("window")

    async def hit(self, agent_id: str, now: float | None = None) -> None:
        """Count one request of ``agent_id``, or refuse it with 429 when over the limit."""
        moment = time.time() if now is None else now
        window = int(moment // _WINDOW_S)
        key = (agent_id, window)
        if key not in self._shared:
            doc = await self.col.find_one({"_id": f"{agent_id}:{window}"})
            self._shared[key] = int(doc["count"]) if doc else 0
        used = self._shared[key] + self._pending[key]
        reset_s = max(1, int((window + 1) * _WINDOW_S - moment + 0.999))
        if used >= self._limit:
            raise Problem(
                429,
                "RATE_LIMITED",
                f"This agent made {self._limit} requests this minute; retry in {reset_s} s.",
                headers={
                    "Retry-After": str(reset_s),
                    "RateLimit-Limit": str(self._limit),
                    "RateLimit-Remaining": "0",
                    "RateLimit-Reset": str(reset_s),
                },
            )
        self._pending[key] += 1

    async def flush(self) -> None:
        """Add this process's counts to the shared counters and read back the totals."""
        pending, self._pending = self._pending, Counter()
        items = list(pending.items())
        for index, ((agent_id, window), count) in enumerate(items):
            try:
                doc = await self.col.find_one_and_update(
                    {"_id": f"{agent_id}:{window}", "window": window},
                    {"$inc": {"count": count}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
                if doc is None:
                    raise DatabaseDidNotWrite("a rate-limit counter's upsert")
            except Exception:
                # Keep what was not written, to add on the next flush (as the usage counters do).
                for key, left in items[index:]:
                    self._pending[key] += left
                raise
            self._shared[(agent_id, window)] = int(doc["count"])
        current = int(time.time() // _WINDOW_S)
        for key in [key for key in self._shared if key[1] < current - 1]:
            del self._shared[key]
        if current != self._swept_window:
            await self.col.delete_many({"window": {"$lt": current - _KEEP_WINDOWS}})
            self._swept_window = current

    def start(self) -> None:
        """Flush every second in the background."""
        self._flusher.start()

    async def stop(self) -> None:
        """Stop flushing; write what is left."""
        await self._flusher.stop()
        await self.flush()
