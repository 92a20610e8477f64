"""The rate limiter's flush: counts are never lost to a failed write, and old windows age once per window."""

from __future__ import annotations

import pytest

from nexysync_server.services import limits
from nexysync_server.services.errors import LimitReached
from nexysync_server.services.limits import RateLimiter

# A fixed clock, so no minute boundary falls inside a test.
NOW = 1_800_000_030.0


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits.time, "time", lambda: NOW)


class FakeCounters:
    """The shared request counters, in memory; can fail its next write."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.fail_next_write = False
        self.deletes = 0

    async def count(self, caller: str, window: int) -> int:
        return self.counts.get(f"{caller}:{window}", 0)

    async def add(self, caller: str, window: int, count: int) -> int:
        if self.fail_next_write:
            self.fail_next_write = False
            raise ConnectionError("database gone")
        key = f"{caller}:{window}"
        self.counts[key] = self.counts.get(key, 0) + count
        return self.counts[key]

    async def forget_before(self, window: int) -> None:
        self.deletes += 1


async def test_counts_of_a_failed_flush_are_written_by_the_next() -> None:
    counters = FakeCounters()
    limiter = RateLimiter(counters, per_minute=100)  # type: ignore[arg-type]
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
    limiter = RateLimiter(counters, per_minute=100)  # type: ignore[arg-type]
    for _ in range(5):
        await limiter.flush()
    assert counters.deletes == 1


async def test_a_caller_past_its_limit_is_refused_until_the_minute_ends_and_recorded_once() -> None:
    counters = FakeCounters()
    limiter = RateLimiter(counters, per_minute=2, caller="agent")  # type: ignore[arg-type]
    recorded: list[str] = []

    async def record() -> None:
        recorded.append("refused")

    await limiter.hit("agent-a", NOW, record)
    await limiter.hit("agent-a", NOW, record)
    for _ in range(2):
        with pytest.raises(LimitReached) as refused:
            await limiter.hit("agent-a", NOW, record)
    assert (refused.value.code, refused.value.limit, refused.value.reset_s) == ("RATE_LIMITED", 2, 30)
    assert "made 2 requests this minute; retry in 30 s" in refused.value.detail
    assert recorded == ["refused"]
    await limiter.hit("agent-b", NOW, record)  # another caller has its own count


def test_a_process_settles_once_its_unsent_count_would_pass_a_sixteenth_of_what_is_left() -> None:
    assert not limits.must_settle(limit=160, shared=0, unsent=9, adding=1)  # 10 of what 160 leaves
    assert limits.must_settle(limit=160, shared=0, unsent=10, adding=1)
    assert limits.must_settle(limit=160, shared=150, unsent=0, adding=1)  # 10 left: every request
    assert not limits.must_settle(limit=1_000, shared=0, unsent=0, adding=1)


async def test_near_the_limit_requests_are_written_at_once_without_waiting_for_a_flush() -> None:
    counters = FakeCounters()
    limiter = RateLimiter(counters, per_minute=40)  # type: ignore[arg-type]
    for _ in range(40):
        await limiter.hit("agent-a", NOW)
    assert counters.counts[f"agent-a:{int(NOW // 60)}"] == 40  # no flush ran
    with pytest.raises(LimitReached):
        await limiter.hit("agent-a", NOW)


async def test_four_processes_sharing_a_limit_overshoot_it_by_at_most_three_sixteenths() -> None:
    # At 23a9449 every process could spend what it saw left until its next flush: with four, a
    # burst between two flushes could get four times the limit.
    counters = FakeCounters()
    processes = [RateLimiter(counters, per_minute=100) for _ in range(4)]  # type: ignore[arg-type]
    passed = 0
    for turn in range(400):
        try:
            await processes[turn % 4].hit("agent-a", NOW)
            passed += 1
        except LimitReached:
            pass
    assert 100 <= passed <= 100 + 3 * 100 / 16


async def test_a_failed_settle_keeps_what_was_served_for_the_next_flush() -> None:
    counters = FakeCounters()
    limiter = RateLimiter(counters, per_minute=32)  # type: ignore[arg-type]
    for _ in range(2):
        await limiter.hit("agent-a", NOW)  # within its share (2 of 32): counted in memory
    counters.fail_next_write = True
    with pytest.raises(ConnectionError):
        await limiter.hit("agent-a", NOW)  # must settle; the write fails, the request with it
    assert counters.counts == {}
    await limiter.flush()
    assert counters.counts == {f"agent-a:{int(NOW // 60)}": 2}
