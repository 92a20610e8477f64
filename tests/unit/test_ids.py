"""ULIDs and timestamps (nexysync_server.ids): order, format and parsing."""

from __future__ import annotations

import itertools
import re
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from nexysync_server.ids import iso, new_id, parse_rfc3339

CROCKFORD_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def test_new_id_is_a_crockford_ulid_strictly_increasing_in_a_tight_loop() -> None:
    ids = [new_id() for _ in range(10_000)]

    assert all(CROCKFORD_ULID.match(value) for value in ids)
    assert all(earlier < later for earlier, later in itertools.pairwise(ids))


def test_new_id_starts_with_the_current_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    value = new_id()
    after = time.time_ns() // 1_000_000

    millis = 0
    for char in value[:10]:
        millis = millis * 32 + CROCKFORD.index(char)
    # Ids made in the same millisecond may borrow the next one, hence the small allowance.
    assert before <= millis <= after + 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), "2026-01-02T03:04:05.678Z"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05.000Z"),
        (datetime(2026, 1, 2, 5, 4, 5, 1000, tzinfo=timezone(timedelta(hours=2))), "2026-01-02T03:04:05.001Z"),
        (datetime(2026, 1, 2, 3, 4, 5, 999999), "2026-01-02T03:04:05.999Z"),
    ],
    ids=["utc", "whole-second", "offset", "naive-is-utc"],
)
def test_iso_is_utc_with_milliseconds_and_z(value: datetime, expected: str) -> None:
    assert iso(value) == expected


def test_iso_strings_sort_in_time_order() -> None:
    start = datetime(2026, 1, 2, 23, 59, 59, 998000, tzinfo=UTC)
    moments = [start + timedelta(milliseconds=step * 7) for step in range(50)]

    assert sorted(iso(moment) for moment in reversed(moments)) == [iso(moment) for moment in moments]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02t03:04:05z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05.250Z", datetime(2026, 1, 2, 3, 4, 5, 250000, tzinfo=UTC)),
        ("2026-01-02T05:04:05+02:00", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-01T22:04:05.5-05:00", datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)),
        ("2026-01-02T03:04:05+00:00", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ],
)
def test_parse_rfc3339_accepts_z_and_offsets_and_returns_utc(text: str, expected: datetime) -> None:
    parsed = parse_rfc3339(text)

    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-02",
        "2026-01-02T03:04:05",
        "2026-01-02 03:04:05Z",
        "03:04:05Z",
        "garbage",
        "",
        "2026-13-02T03:04:05Z",
        "2026-01-02T03:04:05+0200",
        "1767323045",
    ],
)
def test_parse_rfc3339_rejects_what_is_not_a_date_time(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339(text)
