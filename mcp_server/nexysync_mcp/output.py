"""What the tools answer: compact JSON an AI reads at a glance."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["dumps", "iso_time"]


def dumps(value: Any) -> str:
    """Return compact JSON (non-ASCII kept as is: the AI reads characters, not escapes)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def iso_time(value: Any) -> str:
    """Return a datetime as ISO 8601 to the second (anything else as its text)."""
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else str(value)
