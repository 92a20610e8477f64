"""``ns_ref``: code references shared with one agent or all, plaintext for the AI (the SDK encrypts)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mcp_types import ToolAnnotations

from nexysync import APIStatusError, DecryptionError, NotFoundError, PermissionDeniedError
from nexysync_mcp.errors import KEY_MISMATCH, ToolFailure
from nexysync_mcp.output import dumps, iso_time, listing
from nexysync_mcp.tools.record import Answer, Call, Param, Tool

if TYPE_CHECKING:
    from nexysync_generated.models import Ref

__all__ = ["TOOL", "ref_view"]

#: References one ``list`` shows; past it the answer says there are more.
LIST_LIMIT = 100


def ref_view(ref: Ref, *, content: bool) -> dict[str, Any]:
    """Return a reference as the AI sees it: what is set, and its content only when asked."""
    view: dict[str, Any] = {"id": ref.id, "from": ref.from_}
    view.update({"to": ref.to} if ref.to else {"broadcast": True})
    view["title"] = ref.title
    if ref.language:
        view["language"] = ref.language
    if ref.source_file:
        view["source_file"] = ref.source_file
    view.update(size=len(ref.content.encode()), created_at=iso_time(ref.created_at))
    if content:
        view["content"] = ref.content
    return view


@contextmanager
def _on_ref(ref_id: str) -> Iterator[None]:
    """Say in words when a reference cannot be read or deleted."""
    try:
        yield
    except DecryptionError as error:
        raise ToolFailure(KEY_MISMATCH.format(what=f"reference {ref_id}")) from error
    except NotFoundError as error:
        raise ToolFailure(
            f"No reference {ref_id} (wrong id, deleted, or not shared with this agent; ns_ref action=list)."
        ) from error
    except PermissionDeniedError as error:
        if error.code != "NOT_REF_AUTHOR":
            raise
        raise ToolFailure(f"Only the agent that shared reference {ref_id} may delete it.") from error


async def share(call: Call) -> str:
    """Share a piece of code with one agent, or all."""
    args = call.args
    try:
        ref = await call.client.refs.share(
            args.required_text("title"),
            args.required_text("content"),
            source_file=args.text("source_file"),
            language=args.text("language"),
            to=args.text("to"),
        )
    except APIStatusError as error:
        if error.status == 413:
            raise ToolFailure(
                f"Reference too large (413): {error.detail or error.message} Share it as a file "
                "(ns_file action=upload) instead."
            ) from error
        raise
    call.link.stale.add("ref")  # searched at once, before its event arrives
    return dumps({"id": ref.id, **({"to": ref.to} if ref.to else {"broadcast": True})})


async def list_refs(call: Call) -> str:
    """The references this agent can see, without their content."""
    args = call.args
    pages = call.client.refs.list(from_=args.text("from"), language=args.text("language"), limit=LIST_LIMIT)
    page = await pages.first_page()
    return listing({"refs": [ref_view(r, content=False) for r in page.data]}, page)


async def read(call: Call) -> str:
    """A reference in full."""
    ref_id = call.args.required_text("id")
    with _on_ref(ref_id):
        return dumps(ref_view(await call.client.refs.get(ref_id), content=True))


async def delete(call: Call) -> str:
    """Delete a reference this agent shared."""
    ref_id = call.args.required_text("id")
    with _on_ref(ref_id):
        await call.client.refs.delete(ref_id)
    # No event tells of a deletion: the search index refreshes its references before its next answer.
    call.link.stale.add("ref")
    return dumps({"deleted": ref_id})


TOOL = Tool(
    name="ns_ref",
    description=(
        "Code references shared with one agent or all (end-to-end encrypted). "
        "share: title, content (code), optional source_file, language, to; "
        "list: without content (filter by from, language); read: id, in full; delete: id (your own)."
    ),
    annotations=ToolAnnotations(
        title="NexySync: code references", read_only_hint=False, destructive_hint=True, idempotent_hint=False,
        open_world_hint=True,
    ),
    params=(
        Param("title", "What it is (share)."),
        Param("content", "The code or text (share)."),
        Param("source_file", "Where it comes from, e.g. src/app.py:10-42 (share)."),
        Param("language", "Lowercase, e.g. python (share, list)."),
        Param("to", "Recipient agent slug (share); default: every agent."),
        Param("from", "Only references shared by this agent (list)."),
        Param("id", "Reference id (read, delete)."),
    ),
    answers={"id": Answer("string", "the reference")},
    actions={"share": share, "list": list_refs, "read": read, "delete": delete},
)  # fmt: skip
