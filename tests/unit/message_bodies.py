"""Valid request bodies of the contract, for the unit tests that need one."""

from __future__ import annotations

from typing import Any

from nexysync.crypto import KeyRing

PROJECT = "01J0000000000000000000000P"
RECORD = "01J0000000000000000000000M"


def envelope(field: str, text: str = "x") -> str:
    """Return a real envelope of ``text`` for a message field (the contract checks its shape)."""
    return KeyRing([bytes(range(32))]).encrypt(
        text.encode(), project_id=PROJECT, kind="message", record_id=RECORD, field=field
    )


def message_create(**changes: Any) -> dict[str, Any]:
    """Return a valid ``MessageCreate`` body, changed by ``changes`` (``None`` drops a field)."""
    body: dict[str, Any] = {
        "id": RECORD,
        "to": "bob",
        "type": "request",
        "topic": envelope("topic"),
        "payload": envelope("payload"),
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}
