"""Client-made record ids: ULIDs (48-bit millisecond time, 80 random bits, Crockford base32)."""

from __future__ import annotations

import os
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_ulid(now_ms: int | None = None) -> str:
    """Return a new ULID: 26 Crockford base32 characters, sortable by creation time.

    Args:
        now_ms: Milliseconds since the epoch; the current time when None (for tests).
    """
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    if not 0 <= ms < 1 << 48:
        raise ValueError("a ULID's time must fit in 48 bits")
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))
