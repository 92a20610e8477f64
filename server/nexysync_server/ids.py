"""Identifiers and timestamps: ULIDs and ISO 8601 UTC strings."""

from __future__ import annotations

import functools
import os
import re
import threading
import time
from datetime import UTC, datetime

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


class _MonotonicUlid:
    """Make ULIDs that sort in the order they were made within this process.

    Plain ULIDs made in the same millisecond sort at random; a list ordered by id would then
    not be the order of storage. Within one millisecond the random part is incremented instead.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_rand = 0

    def __call__(self) -> str:
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms <= self._last_ms:
                ms = self._last_ms
                self._last_rand += 1
                if self._last_rand >= 1 << 80:
                    # Random part exhausted within one millisecond: borrow the next one.
                    ms += 1
                    self._last_rand = int.from_bytes(os.urandom(10), "big") >> 1
            else:
                self._last_rand = int.from_bytes(os.urandom(10), "big") >> 1
            self._last_ms = ms
            value = (ms << 80) | self._last_rand
        return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


new_id = _MonotonicUlid()


def ulid_time(value: str) -> datetime:
    """Return the moment a ULID was made (its 48-bit millisecond timestamp), in UTC."""
    ms = 0
    for char in value[:10]:
        ms = ms * 32 + _CROCKFORD.index(char)
    return datetime.fromtimestamp(ms / 1000, UTC)


def ulid_floor(moment: datetime) -> str:
    """Return the smallest ULID of ``moment``'s millisecond: every ULID made then or later sorts at or after it."""
    ms = int(moment.timestamp() * 1000)
    return "".join(_CROCKFORD[(ms >> shift) & 31] for shift in range(45, -1, -5)) + "0" * 16


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC, to the millisecond."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def epoch_ms() -> int:
    """Return the current time in milliseconds since the epoch.

    Leases and deadlines the store compares are kept in this form, not as :func:`iso` strings:
    the embedded database's ``find`` and ``update`` compare date-like strings only to the second
    (its ``count_documents`` does not), so a string deadline in the current second would pass
    for "now" (see ``tests/e2e/test_store_time_queries.py``).
    """
    return time.time_ns() // 1_000_000


@functools.lru_cache(maxsize=4096)
def stored_at(created_at: str) -> float:
    """Return an :func:`iso` time as seconds since the epoch (an event's, for the lag metrics).

    Cached: a broadcast asks once per stream for the same event's time.
    """
    return datetime.fromisoformat(created_at).timestamp()


def iso(value: datetime) -> str:
    """Format a datetime as ISO 8601 UTC with milliseconds and a ``Z``, e.g. ``2026-01-02T03:04:05.678Z``.

    These strings sort in time order, so they are also what the store compares. A naive datetime
    (as the embedded database returns) is taken to be UTC.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def iso_ms(epoch_millis: int) -> str:
    """Format epoch milliseconds (see :func:`epoch_ms`) as :func:`iso` does."""
    return iso(datetime.fromtimestamp(epoch_millis / 1000, UTC))


# What ULID timestamps (and so ``since`` filters) can express: from the epoch on.
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
_RFC3339_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$",
)


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 date-time into an aware datetime, clamped to 1970 .. 9999 in UTC.

    Every RFC 3339 date-time is valid input (the contract says ``format: date-time``), but the
    store's sort keys start at 1970 and a datetime ends at 9999: a bound before or after those
    means "from the start" or "nothing yet", so it is clamped rather than refused.

    Raises:
        ValueError: the text is not an RFC 3339 date-time.
    """
    if not _RFC3339_RE.match(text):
        raise ValueError("not an RFC 3339 date-time")
    value = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    try:
        moment = value.astimezone(UTC)
    except OverflowError:
        # 9999-12-31T23:59:59-23:59 and 0001-01-01T00:00:00+23:59 are well-formed, but past what
        # a datetime holds in UTC.
        return _LATEST if value.year == 9999 else _EARLIEST
    return min(max(moment, _EARLIEST), _LATEST)
