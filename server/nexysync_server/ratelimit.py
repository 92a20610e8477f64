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
from collections.abc import Awaitable, Callable
from typing import Any

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
    """Fixed one-minute windows per caller.

    Args:
        db: Where the shared counters live (collection ``rate_limits``).
        per_minute: Requests a caller may make per minute.
        caller: What a caller is, for the refusal's text ("agent", "user").
        name: The background flusher's name.
    """

    def __init__(
        self, db: AsyncDatabase[Any], per_minute: int, caller: str = "agent", name: str = "rate-limit"
    ) -> None:
        self.col = db["rate_limits"]
        self._limit = per_minute
        self._caller = caller
        self._pending: Counter[tuple[str, int]] = Counter()
        self._shared: dict[tuple[str, int], int] = {}
        self._flusher = Periodic(f"{name}-flusher", self.flush, _FLUSH_S)
        #: The window whose old counters were last deleted: they age only when the window moves.
        self._swept_window: int | None = None
        #: Callers refused in a window already (by this process): their refusal is on record.
        self._refused: set[tuple[str, int]] = set()

    async def ensure_indexes(self) -> None:
        """Create the window index used to delete old counters."""
        await self.col.create_index("window")

    async def hit(
        self,
        agent_id: str,
        now: float | None = None,
        on_first_refusal: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Count one request of ``agent_id`` (any caller id), or refuse it with 429 when over the limit.

        Args:
            agent_id: The caller.
            now: The time (for tests).
            on_first_refusal: Called on the caller's first refusal of a window in this process
                (to put it on record once, not once per try).
        """
        moment = time.time() if now is None else now
        window = int(moment // _WINDOW_S)
        key = (agent_id, window)
        if key not in self._shared:
            doc = await self.col.find_one({"_id": f"{agent_id}:{window}"})
            self._shared[key] = int(doc["count"]) if doc else 0
        used = self._shared[key] + self._pending[key]
        reset_s = max(1, int((window + 1) * _WINDOW_S - moment + 0.999))
        if used >= self._limit:
            if on_first_refusal is not None and key not in self._refused:
                self._refused.add(key)
                await on_first_refusal()
            raise Problem(
                429,
                "RATE_LIMITED",
                f"This {self._caller} made {self._limit} requests this minute; retry in {reset_s} s.",
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
        self._refused = {key for key in self._refused if key[1] >= current - 1}
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
