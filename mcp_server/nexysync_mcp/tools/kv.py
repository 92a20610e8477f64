"""``ns_kv``: the project's shared key-value store, plaintext for the AI (the SDK encrypts values)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from mcp_types import ToolAnnotations

from nexysync import NotFoundError, PreconditionFailedError
from nexysync_mcp.errors import ToolFailure
from nexysync_mcp.output import dumps, iso_time, listing
from nexysync_mcp.tools.record import Answer, Call, Param, Tool

if TYPE_CHECKING:
    from nexysync import AsyncClient
    from nexysync_generated.models import KvEntry
    from nexysync_mcp.arguments import Arguments

__all__ = ["TOOL", "entry_view"]

#: Entries one ``list`` shows; past it the answer says there are more.
LIST_LIMIT = 100
#: A ``list`` shows values up to this many characters whole; longer ones as a preview.
VALUE_PREVIEW_CHARS = 120
_KEY_RE = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")


def entry_view(entry: KvEntry, *, whole: bool = True) -> dict[str, Any]:
    """Return a store entry as the AI sees it; with ``whole=False`` a long value becomes a ``preview``."""
    view: dict[str, Any] = {"key": entry.key}
    if whole or len(entry.value) <= VALUE_PREVIEW_CHARS:
        view["value"] = entry.value
    else:
        view["preview"] = entry.value[:VALUE_PREVIEW_CHARS] + "…"
    view.update(version=entry.version, updated_by=entry.updated_by, updated_at=iso_time(entry.updated_at))
    return view


def _key(args: Arguments) -> str:
    key = args.required_text("key")
    if not _KEY_RE.match(key) or set(key) == {"."}:
        raise ToolFailure(f"`key` must be 1 to 200 letters, digits and . _ : - (not only dots); got {key!r}.")
    return key


async def _changed(client: AsyncClient, key: str, version: int | None) -> str:
    """Return the line that tells a conditional write found the entry changed, with its version now."""
    try:
        now = str((await client.kv.get(key)).version)
    except NotFoundError:
        now = "deleted"
    if version == 0:
        return f"kv key {key!r} already exists (version {now}): get it, then set with that version."
    return f"kv key {key!r} changed since version {version} (now {now}): get it again and retry."


@asynccontextmanager
async def _on_key(call: Call, key: str) -> AsyncIterator[None]:
    """Say in words when the key is missing, or changed since the version the call gave."""
    try:
        yield
    except PreconditionFailedError as error:
        raise ToolFailure(await _changed(call.client, key, call.args.integer("version", low=0))) from error
    except NotFoundError as error:
        if error.code != "KV_NOT_FOUND":
            raise
        raise ToolFailure(f"No kv key {key!r} (ns_kv action=list shows the keys).") from error


async def list_entries(call: Call) -> str:
    """The keys (by prefix), with their values or a preview of long ones."""
    page = await call.client.kv.list(prefix=call.args.text("prefix"), limit=LIST_LIMIT).first_page()
    return listing({"entries": [entry_view(e, whole=False) for e in page.data]}, page)


async def get(call: Call) -> str:
    """One entry: its value and version."""
    key = _key(call.args)
    async with _on_key(call, key):
        return dumps(entry_view(await call.client.kv.get(key)))


async def set_value(call: Call) -> str:
    """Write an entry; with ``version``, only if it is still at that version (0: only if new)."""
    key = _key(call.args)
    version = call.args.integer("version", low=0)
    value = call.args.required_text("value")
    async with _on_key(call, key):
        if version == 0:
            entry = await call.client.kv.put(key, value, if_none_match=True)
        else:
            entry = await call.client.kv.put(key, value, if_match=version)
    call.link.stale.add("kv")  # searched at once, before its event arrives
    return dumps({"key": entry.key, "version": entry.version})


async def delete(call: Call) -> str:
    """Delete an entry; with ``version``, only if it is still at that version."""
    key = _key(call.args)
    version = call.args.integer("version", low=0)
    if version == 0:
        raise ToolFailure("`version` must be at least 1 for action=delete.")
    async with _on_key(call, key):
        await call.client.kv.delete(key, if_match=version)
    call.link.stale.add("kv")
    return dumps({"deleted": key})


TOOL = Tool(
    name="ns_kv",
    description=(
        "The project's shared key-value store (values end-to-end encrypted). "
        "set: key, value; get: key (value and version); list: keys (by prefix); delete: key. "
        "Read-modify-write: get, then set with version (fails if changed meanwhile)."
    ),
    annotations=ToolAnnotations(
        title="NexySync: shared key-value store", read_only_hint=False, destructive_hint=True,
        idempotent_hint=False, open_world_hint=True,
    ),
    params=(
        Param("key", "Letters, digits and . _ : - (set, get, delete)."),
        Param("value", "Text to store (set)."),
        Param("version", "Only if the entry is still at this version (set, delete); 0: only if new.", "integer"),
        Param("prefix", "Only keys starting with this (list)."),
    ),
    answers={
        "key": Answer("string", "the entry's key"),
        "version": Answer("integer", "its version (pass it to make a write conditional)"),
    },
    actions={"set": set_value, "get": get, "list": list_entries, "delete": delete},
)  # fmt: skip
