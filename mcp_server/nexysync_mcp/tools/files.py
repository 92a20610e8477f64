"""``ns_file``: files shared with the project's agents, between the workspace's disk and the CDN.

File content is encrypted by the SDK. Files go only where :mod:`nexysync_mcp.workspace` allows:
uploads from the workspace, downloads into ``.nexysync/downloads/``.
"""

from __future__ import annotations

import io
import mimetypes
import os
import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp_types import ToolAnnotations

from nexysync import APIStatusError, DecryptionError, FileNotReadyError, NotFoundError, PermissionDeniedError
from nexysync.crypto import plaintext_file_size
from nexysync_mcp.errors import KEY_MISMATCH, ToolFailure
from nexysync_mcp.output import dumps, iso_time, listing
from nexysync_mcp.tools.record import Answer, Call, Param, Tool
from nexysync_mcp.workspace import DOWNLOADS, Workspace, exists_message, write_replacing

if TYPE_CHECKING:
    from nexysync import AsyncClient
    from nexysync_generated.models import File

__all__ = ["DOWNLOADS", "INLINE_BYTES", "TOOL", "file_view", "safe_name"]

#: Files one ``list`` shows; past it the answer says there are more.
LIST_LIMIT = 100
#: Files up to this size that are UTF-8 text are answered inline by ``read``.
INLINE_BYTES = 64 * 1024
#: Longest file name written (most file systems allow 255 bytes).
NAME_MAX_CHARS = 120
# Characters that are unsafe or unportable in a file name (separators, Windows' reserved ones).
_UNSAFE_RE = re.compile(r'[\\/:*?"<>|]')


def _plain_size(file: File) -> int:
    try:
        return plaintext_file_size(file.size)
    except ValueError:
        # Still pending, or a size no upload of this SDK makes: the stored size is all there is.
        return file.size


def file_view(file: File) -> dict[str, Any]:
    """Return a file's metadata as the AI sees it (``size`` is the content's, not the ciphertext's)."""
    view: dict[str, Any] = {"id": file.id, "name": file.name, "from": file.from_, "size": _plain_size(file)}
    if file.content_type:
        view["content_type"] = file.content_type
    view["created_at"] = iso_time(file.created_at)
    if file.status.value != "ready":
        view["status"] = file.status.value
    return view


def safe_name(name: str, fallback: str) -> str:
    """Return a remote file name made safe to create in a directory: one plain component, never a path.

    Separators, control characters and characters Windows refuses become ``_``; a name that is
    empty or only dots becomes ``fallback``; a long one is cut, keeping its extension.
    """
    base = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join("_" if unicodedata.category(ch).startswith("C") else ch for ch in base)
    base = _UNSAFE_RE.sub("_", base).strip()
    if not base or set(base) == {"."}:
        base = fallback
    if len(base) > NAME_MAX_CHARS:
        stem, dot, ext = base.rpartition(".")
        ext = f".{ext}" if dot and stem and len(ext) < 16 else ""
        base = base[: NAME_MAX_CHARS - len(ext)] + ext
    return base


def _text(content: bytes) -> str | None:
    """Return content as text if it is UTF-8 without NUL bytes (as binary files have), else None."""
    if b"\0" in content:
        return None
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _workspace(call: Call) -> Workspace:
    """Return the workspace: the one of the key file in use, else the working directory."""
    return Workspace.locate(call.link.source)


@contextmanager
def _on_file(file_id: str) -> Iterator[None]:
    """Say in words when a file cannot be read or deleted."""
    try:
        yield
    except DecryptionError as error:
        raise ToolFailure(KEY_MISMATCH.format(what=f"file {file_id}")) from error
    except FileNotReadyError as error:
        raise ToolFailure(f"File {file_id} is still being uploaded; try again in a moment.") from error
    except NotFoundError as error:
        raise ToolFailure(f"No file {file_id} (wrong id, deleted or expired; ns_file action=list).") from error
    except PermissionDeniedError as error:
        if error.code != "NOT_FILE_UPLOADER":
            raise
        raise ToolFailure(f"Only the agent that uploaded file {file_id} may delete it.") from error


async def upload(call: Call) -> str:
    """Upload a file of the workspace."""
    given = call.args.required_text("path")
    name = call.args.text("name") or Path(given).expanduser().name
    content_type = mimetypes.guess_type(name)[0]
    try:
        with _workspace(call).open_upload(given) as handle:
            file = await call.client.files.upload(handle, name=name, content_type=content_type)
    except OSError as error:
        raise ToolFailure(f"Cannot read {given!r}: {error.strerror or error}.") from error
    except APIStatusError as error:
        if error.status == 413:
            raise ToolFailure(f"File too large (413): {error.detail or error.message}") from error
        raise
    return dumps(file_view(file))


async def list_files(call: Call) -> str:
    """The project's files."""
    page = await call.client.files.list(limit=LIST_LIMIT).first_page()
    return listing({"files": [file_view(f) for f in page.data]}, page)


async def read(call: Call) -> str:
    """A file: small UTF-8 text inline, anything else (or with ``path``) saved under the downloads."""
    file_id = call.args.required_text("id")
    path, overwrite = call.args.text("path"), call.args.flag("overwrite")
    with _on_file(file_id):
        return await _read(call, file_id, path, overwrite=overwrite)


async def delete(call: Call) -> str:
    """Delete a file this agent uploaded."""
    file_id = call.args.required_text("id")
    with _on_file(file_id):
        await call.client.files.delete(file_id)
    return dumps({"deleted": file_id})


async def _read(call: Call, file_id: str, path: str | None, *, overwrite: bool) -> str:
    client = call.client
    meta = await client.files.get(file_id)
    if meta.download_url is None:
        raise FileNotReadyError(f"file {file_id} is still being uploaded")
    view = file_view(meta)
    content: bytes | None = None
    if path is None and view["size"] <= INLINE_BYTES:
        buffer = io.BytesIO()
        await client.files.download(file_id, to=buffer)
        content = buffer.getvalue()
        text = _text(content)
        if text is not None:
            return dumps({**view, "content": text})
    fallback = safe_name(meta.name, f"file-{file_id}")
    target = _workspace(call).save_path(meta.name, file_id, path, safe_name=fallback)
    if os.path.lexists(target) and not overwrite:
        raise ToolFailure(exists_message(target))
    try:
        if content is not None and overwrite:
            write_replacing(target, content)
        elif content is not None:
            with target.open("xb") as handle:  # exclusive: never replaces a file that appeared meanwhile
                handle.write(content)
        elif overwrite:
            # The SDK writes a temp file and renames it over the target: a link is replaced, not followed.
            await client.files.download(file_id, to=target)
        else:
            await _download_new(client, file_id, target)
    except FileExistsError as error:
        raise ToolFailure(exists_message(target)) from error
    except OSError as error:
        raise ToolFailure(f"Cannot save file {file_id} to {target}: {error.strerror or error}.") from error
    return dumps({**view, "saved_to": str(target)})


async def _download_new(client: AsyncClient, file_id: str, target: Path) -> None:
    """Download into a file that must not exist yet; a failed download leaves nothing behind."""
    try:
        handle = target.open("xb")  # exclusive: a file (or link) that appeared meanwhile is never replaced
    except FileExistsError as error:
        raise ToolFailure(exists_message(target)) from error
    try:
        with handle:
            await client.files.download(file_id, to=handle)
    except BaseException:
        target.unlink(missing_ok=True)
        raise


TOOL = Tool(
    name="ns_file",
    description=(
        "Files shared with the project's agents (end-to-end encrypted). upload: path of a file in the "
        "workspace, optional name; list; read: id; small UTF-8 text is answered inline, anything else (or "
        "with path) saved under .nexysync/downloads/ (path: a name there); delete: id (your own)."
    ),
    annotations=ToolAnnotations(
        title="NexySync: files", read_only_hint=False, destructive_hint=True, idempotent_hint=False,
        open_world_hint=True,
    ),
    params=(
        Param("path", "upload: a file in the workspace (relative to it); read: a name under .nexysync/downloads/."),
        Param("name", "Name others see (upload); default: the file's own."),
        Param("id", "File id (read, delete)."),
        Param("overwrite", "Let read replace an existing file at path.", "boolean"),
    ),
    answers={"id": Answer("string", "the file")},
    actions={"upload": upload, "list": list_files, "read": read, "delete": delete},
)  # fmt: skip
