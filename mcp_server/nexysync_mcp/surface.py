"""What the tools declare beyond their input: annotations, output schemas, and structured results.

Each tool's answer is compact JSON text (older clients read that); the same value goes out as
``structuredContent``, which must be an object: a JSON object as it is, a list as ``items``,
a sentence as ``text``. The output schemas say so, and name the keys an AI looks for first.
"""

from __future__ import annotations

import json
from typing import Any

from mcp_types import ToolAnnotations

__all__ = ["ANNOTATIONS", "output_schema", "structured"]

#: Hints per tool. A tool serves several actions, so each hint holds for all of them: a tool
#: with a delete action is destructive, one that sends or writes is not read-only, and every
#: tool but ns_auth reaches the project's other agents through the API (open world).
ANNOTATIONS: dict[str, ToolAnnotations] = {
    "ns_auth": ToolAnnotations(
        title="NexySync: set keys", read_only_hint=False, destructive_hint=False, idempotent_hint=True,
        open_world_hint=False,
    ),
    "ns_meta": ToolAnnotations(
        title="NexySync: identity, agents, presence, quota", read_only_hint=False, destructive_hint=False,
        idempotent_hint=True, open_world_hint=True,
    ),
    "ns_message": ToolAnnotations(
        title="NexySync: messages", read_only_hint=False, destructive_hint=False, idempotent_hint=False,
        open_world_hint=True,
    ),
    "ns_kv": ToolAnnotations(
        title="NexySync: shared key-value store", read_only_hint=False, destructive_hint=True,
        idempotent_hint=False, open_world_hint=True,
    ),
    "ns_ref": ToolAnnotations(
        title="NexySync: code references", read_only_hint=False, destructive_hint=True, idempotent_hint=False,
        open_world_hint=True,
    ),
    "ns_file": ToolAnnotations(
        title="NexySync: files", read_only_hint=False, destructive_hint=True, idempotent_hint=False,
        open_world_hint=True,
    ),
}  # fmt: skip

_KEYS: dict[str, dict[str, str]] = {
    "ns_auth": {"authenticated": "the agent's slug"},
    "ns_meta": {"agent": "this agent (whoami)", "push": "live when new messages are pushed"},
    "ns_message": {
        "id": "the message (send, read)",
        "state": "queued until a recipient fetches it (send)",
        "note": "what became of a send, in words",
        "messages": "previews (check) or the thread",
        "receipts": "per recipient: state and times (status)",
    },
    "ns_kv": {"key": "the entry's key", "version": "its version (pass it to make a write conditional)"},
    "ns_ref": {"id": "the reference"},
    "ns_file": {"id": "the file"},
}


def output_schema(tool: str) -> dict[str, Any]:
    """Return the output schema of a tool: an object, with the keys worth knowing described."""
    properties: dict[str, Any] = {name: {"description": text} for name, text in _KEYS.get(tool, {}).items()}
    # Untyped, so that no answer of any action can fail the schema: it describes, it does not police.
    properties["items"] = {"description": "a list answer"}
    properties["text"] = {"description": "an answer in words"}
    return {"type": "object", "properties": properties}


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
