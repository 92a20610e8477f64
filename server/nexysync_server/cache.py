"""A small in-process cache whose entries expire, for data that changes rarely and may lag a little."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Remember values for ``ttl_s`` seconds, keeping at most ``max_entries`` (oldest dropped first).

    Each worker has its own cache, so a change made through another worker shows here only once
    the entry expires: use it only where that lag is harmless, and say so where it is used.
    """

    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self._ttl_s = ttl_s
        self._max = max_entries
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        """Return the live value for ``key``, or ``None``."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires < time.monotonic():
            del self._entries[key]
            return None
        return value

    def put(self, key: K, value: V) -> None:
        """Remember ``value`` for ``key``."""
        self._entries[key] = (time.monotonic() + self._ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def drop(self, key: K) -> None:
        """Forget ``key`` (after this process changed what it maps to)."""
        self._entries.pop(key, None)
