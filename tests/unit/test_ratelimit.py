"""The rate limiter's flush: counts are never lost to a failed write, and old windows age once per window."""

from __future__ import annotations

from typing import Any

import pytest

from nexysync_server import ratelimit
from nexysync_server.ratelimit import RateLimiter

# A fixed clock, so no minute boundary falls inside a test.
NOW = 1_800_000_030.0


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit.time, "time", lambda: NOW)


class FakeCounters:
    """The few collection calls the limiter makes, counted in memory; can fail its next write."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.fail_next_write = False
        self.deletes = 0

    async def find_one(self, query: dict[str, Any]) -> dict[str, Any] | None:
        count = self.counts.get(query["_id"])
        return None if count is None else {"count": count}

    async def find_one_and_update(self, query: dict[str, Any], update: dict[str, Any], **_: Any) -> dict[str, Any]:
        if self.fail_next_write:
            self.fail_next_write = False
            raise ConnectionError("database gone")
        self.counts[query["_id"]] = self.counts.get(query["_id"], 0) + update["$inc"]["count"]
        return {"count": self.counts[query["_id"]]}

    async def delete_many(self, query: dict[str, Any]) -> None:
        self.deletes += 1


async def test_counts_of_a_failed_flush_are_written_by_the_next() -> None:
    counters = FakeCounters()
    limiter = RateLimiter({"rate_limits": counters}, per_minute=100)  # type: ignore[arg-type]
    for _ in range(3):
        await limiter.hit("agent-a", NOW)
    counters.fail_next_write = True
    with pytest.raises(ConnectionError):
        await limiter.flush()
    await limiter.hit("agent-a", NOW)
    await limiter.flush()

    window = int(NOW // 60)
    assert counters.counts == {f"agent-a:{window}": 4}


async def test_old_windows_are_deleted_once_per_window_not_per_flush() -> None:
    counters = FakeCounters()
    limiter = RateLimiter({"rate_limits": counters}, per_minute=100)  # type: ignore[arg-type]
    for _ in range(5):
        await limiter.flush()
    assert counters.deletes == 1
