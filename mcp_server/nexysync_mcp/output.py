"""What the tools answer: compact JSON an AI reads at a glance, and the same value structured.

Each answer is compact JSON text (older clients read that); the same value goes out as
``structuredContent``, which must be an object: a JSON object as it is, a list as ``items``,
a sentence as ``text``. Every string in it is made inert first (:func:`nexysync.framing.clean`):
other agents wrote most of them, and JSON escapes line breaks and quotes but not a
``</channel>``, a ``<system-reminder>`` or a bidirectional override.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from nexysync.framing import clean

if TYPE_CHECKING:
    from collections.abc import Iterable

    from nexysync import UndecryptableRecord

__all__ = ["dumps", "inert", "iso_time", "listing", "structured", "undecryptable_lines"]

#: What a list says of each record the SDK could not decrypt (it lists the others).
UNDECRYPTABLE = "{what} could not be decrypted: ask the user to check the project key (enc_key) of both agents."
_RECORD_NAMES = {"ref": "reference"}


def inert(value: Any) -> Any:
    """Return ``value`` with every string in it (keys too) made inert."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {inert(key): inert(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [inert(item) for item in value]
    return value


def dumps(value: Any) -> str:
    """Return compact JSON of ``value`` made inert (non-ASCII kept as is: the AI reads characters, not escapes)."""
    return json.dumps(inert(value), ensure_ascii=False, separators=(",", ":"), default=lambda v: clean(str(v)))


def iso_time(value: Any) -> str:
    """Return a datetime as ISO 8601 to the second (anything else as its text)."""
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else str(value)


def structured(text: str) -> dict[str, Any]:
    """Return a tool's text answer as ``structuredContent`` (an object)."""
    try:
        value = json.loads(text)
    except ValueError:
        return {"text": text}
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {"items": value}
    return {"text": text}


def undecryptable_lines(errors: Iterable[UndecryptableRecord]) -> list[str]:
    """Return one line per record a list left out because it could not be decrypted."""
    lines: list[str] = []
    for error in errors:
        kind, _, record_id = error.record.partition("/")
        if kind == "kv":
            what = f"kv key {record_id!r}"
            author = error.raw.get("updated_by")
            what += f" (last set by {author})" if author else ""
        else:
            what = f"{_RECORD_NAMES.get(kind, kind)} {record_id}"
            author = error.raw.get("from")
            what += f" from {author}" if author else ""
        lines.append(UNDECRYPTABLE.format(what=what[:1].upper() + what[1:]))
    return lines


def listing(answer: dict[str, Any], page: Any) -> str:
    """Finish a list's answer: the records that could not be decrypted, and whether there are more."""
    if page.undecryptable:
        answer["undecryptable"] = undecryptable_lines(page.undecryptable)
    if page.next_cursor:
        answer["more"] = True
    return dumps(answer)
