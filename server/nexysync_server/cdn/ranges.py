"""HTTP ``Range`` requests (RFC 9110 section 14) for one byte range, as downloads need."""

from __future__ import annotations

import re

_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
# More digits than any file size has: read as "beyond every file" without converting them
# (int() of thousands of digits is slow, and refused past 4,300).
_MAX_DIGITS = 18
_BEYOND = 10**_MAX_DIGITS


def _position(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return _BEYOND if len(digits) > _MAX_DIGITS else int(digits)


class Unsatisfiable(Exception):
    """The range lies wholly outside the content (answer 416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Return the inclusive ``(first, last)`` byte positions a ``Range`` header asks for.

    ``None`` means "send everything": no header, a malformed one, or several ranges (which a
    server may answer in full). ``bytes=-N`` is the last N bytes.

    Raises:
        Unsatisfiable: a well-formed range that selects no byte of the content.
    """
    if header is None:
        return None
    match = _RANGE_RE.match(header.strip())
    if match is None:
        return None
    start_text, end_text = match.groups()
    if not start_text:
        if not end_text:
            return None
        length = _position(end_text)
        if length == 0 or size == 0:
            raise Unsatisfiable(header)
        return max(0, size - length), size - 1
    start = _position(start_text)
    end = _position(end_text) if end_text else size - 1
    if end_text and end < start:
        return None  # invalid: ignored, as RFC 9110 says
    if start >= size:
        raise Unsatisfiable(header)
    return start, min(end, size - 1)
