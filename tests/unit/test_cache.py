"""The small TTL cache (nexysync_server.cache) behind agent, project and presence look-ups."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from nexysync_server import cache as cache_module
from nexysync_server.cache import TtlCache


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        """Return the current fake time."""
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Make the cache module read time from a fake clock (the real time module stays untouched)."""
    fake = FakeClock()
    monkeypatch.setattr(cache_module, "time", SimpleNamespace(monotonic=fake.monotonic))
    return fake


def test_cache_entry_lives_for_its_ttl_then_expires(clock: FakeClock) -> None:
    cache: TtlCache[str, int] = TtlCache(ttl_s=5.0)
    cache.put("a", 1)

    clock.now += 4.9
    assert cache.get("a") == 1
    clock.now += 0.2
    assert cache.get("a") is None
    clock.now -= 1.0  # the expired entry is gone, not merely hidden
    assert cache.get("a") is None


def test_cache_put_again_restarts_the_ttl(clock: FakeClock) -> None:
    cache: TtlCache[str, str] = TtlCache(ttl_s=5.0)
    cache.put("a", "old")
    clock.now += 4.0
    cache.put("a", "new")
    clock.now += 4.0

    assert cache.get("a") == "new"


def test_cache_keeps_at_most_max_entries_dropping_the_oldest(clock: FakeClock) -> None:
    cache: TtlCache[str, int] = TtlCache(ttl_s=60.0, max_entries=3)
    for number, key in enumerate("abc"):
        cache.put(key, number)
    cache.put("a", 10)  # written again: now the newest
    cache.put("d", 3)

    assert cache.get("b") is None
    assert [cache.get(key) for key in "acd"] == [10, 2, 3]
    cache.put("e", 4)
    assert cache.get("c") is None
    assert [cache.get(key) for key in "ade"] == [10, 3, 4]


def test_cache_drop_forgets_a_key_and_ignores_unknown_ones(clock: FakeClock) -> None:
    cache: TtlCache[tuple[str, str], str] = TtlCache(ttl_s=60.0)
    cache.put(("p", "alice"), "id-1")
    cache.put(("p", "bob"), "id-2")

    cache.drop(("p", "alice"))
    cache.drop(("p", "nobody"))

    assert cache.get(("p", "alice")) is None
    assert cache.get(("p", "bob")) == "id-2"
