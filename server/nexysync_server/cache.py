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

    A read that races a change must not put back what the change removed: take :attr:`epoch`
    before reading the database and pass it to :meth:`put`; a :meth:`drop` or :meth:`clear`
    meanwhile makes that ``put`` a no-op, so this process never serves what it changed.
    """

    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self._ttl_s = ttl_s
        self._max = max_entries
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self.epoch = 0

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

    def put(self, key: K, value: V, epoch: int | None = None) -> None:
        """Remember ``value`` for ``key``, unless something was dropped since ``epoch`` was read."""
        if epoch is not None and epoch != self.epoch:
            return
        if self._ttl_s <= 0:
            return
        self._entries[key] = (time.monotonic() + self._ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def drop(self, key: K) -> None:
        """Forget ``key`` (after this process changed what it maps to)."""
        self.epoch += 1
        self._entries.pop(key, None)

    def clear(self) -> None:
        """Forget everything (after a change whose keys are not known here)."""
        self.epoch += 1
        self._entries.clear()
