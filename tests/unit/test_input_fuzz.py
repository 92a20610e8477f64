"""Fuzzing of the parsers every request goes through: no input may raise anything but their own errors.

Each strategy reaches the input that made a 500 at 75f16e8: a Range header of thousands of
digits, a timestamp whose offset pushes it out of datetime's range, JSON nested 100,000 deep.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nexysync_server.cdn.ranges import Unsatisfiable, parse_range
from nexysync_server.errors import Problem
from nexysync_server.ids import parse_rfc3339
from nexysync_server.validation import MAX_JSON_DEPTH, read_json

digits = st.text("0123456789", max_size=6000)


@given(start=digits, end=digits, size=st.integers(0, 2**40))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_any_range_header_parses_or_is_unsatisfiable(start: str, end: str, size: int) -> None:
    try:
        wanted = parse_range(f"bytes={start}-{end}", size)
    except Unsatisfiable:
        return
    if wanted is not None:
        first, last = wanted
        assert 0 <= first <= last < size


def test_a_range_of_5000_digits_is_not_an_error() -> None:
    with pytest.raises(Unsatisfiable):
        parse_range("bytes=" + "9" * 5000 + "-", 100)
    assert parse_range("bytes=0-" + "9" * 5000, 100) == (0, 99)


@given(
    moment=st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    offset_minutes=st.integers(-(23 * 60 + 59), 23 * 60 + 59),
    fraction=st.text("0123456789", max_size=30),
)
@settings(max_examples=500)
def test_any_well_formed_timestamp_parses_or_is_a_value_error(
    moment: datetime, offset_minutes: int, fraction: str
) -> None:
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    text = (
        moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + f"{sign}{hours:02d}:{minutes:02d}"
    )
    try:
        parsed = parse_rfc3339(text)
    except ValueError:
        return
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"])
def test_the_timestamps_that_made_500s_are_value_errors(text: str) -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_rfc3339(text)


class _Request:
    """Just what read_json reads of a Falcon request."""

    def __init__(self, raw: bytes) -> None:
        self.content_type = "application/json"
        self.content_length = len(raw)
        self.stream = self
        self._raw = raw

    async def read(self, size: int) -> bytes:
        return self._raw[:size]


def _read(raw: bytes) -> Any:
    return asyncio.run(read_json(_Request(raw), 2_000_000))  # type: ignore[arg-type]


@given(depth=st.integers(1, 200_000), opener=st.sampled_from(["[", '{"a":']))
@settings(max_examples=60, deadline=None)
def test_any_nesting_is_read_or_refused_with_400(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    raw = (opener * depth + "1" + closer * depth).encode()
    try:
        _read(raw)
    except Problem as problem:
        assert problem.status_code == 400
        assert problem.code == "JSON_TOO_DEEP"
        assert depth > MAX_JSON_DEPTH
    else:
        assert depth <= MAX_JSON_DEPTH


def test_json_nested_100000_deep_is_a_400() -> None:
    with pytest.raises(Problem) as caught:
        _read(b"[" * 100_000 + b"]" * 100_000)
    assert caught.value.status_code == 400
