"""The tools ``ns_kv``, ``ns_ref`` and ``ns_file``: the project's shared state, plaintext for the AI.

Keys of the store, reference content and file content are encrypted by the SDK; the AI reads and
writes plain text, and files go between the workspace's disk and the CDN, only where
:mod:`nexysync_mcp.workspace` allows (uploads from the workspace, downloads into
``.nexysync/downloads/``).
"""

from __future__ import annotations

import io
import mimetypes
import os
import re
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nexysync import (
    APIStatusError,
    DecryptionError,
    FileNotReadyError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
)
from nexysync.crypto import plaintext_file_size
from nexysync_mcp.arguments import Arguments, Param, ToolSpec, required_action
from nexysync_mcp.errors import KEY_MISMATCH, ToolFailure
from nexysync_mcp.output import dumps, iso_time
from nexysync_mcp.workspace import DOWNLOADS, Workspace, exists_message, write_replacing

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from nexysync import AsyncClient, UndecryptableRecord
    from nexysync_generated.models import File, KvEntry, Ref
    from nexysync_mcp.agent import AgentLink

__all__ = ["DOWNLOADS", "SPECS", "Sharing", "file_view", "ref_view", "safe_name", "undecryptable_lines"]

KV_ACTIONS = ("set", "get", "list", "delete")
REF_ACTIONS = ("share", "list", "read", "delete")
FILE_ACTIONS = ("upload", "list", "read", "delete")
#: Entries, references or files one ``list`` shows; past it the answer says there are more.
LIST_LIMIT = 100
#: A ``kv list`` shows values up to this many characters whole; longer ones as a preview.
VALUE_PREVIEW_CHARS = 120
#: Files up to this size that are UTF-8 text are answered inline by ``ns_file read``.
INLINE_BYTES = 64 * 1024
#: Longest file name written (most file systems allow 255 bytes).
NAME_MAX_CHARS = 120

#: What a list says of each record the SDK could not decrypt (it lists the others).
UNDECRYPTABLE = "{what} could not be decrypted: ask the user to check the project key (enc_key) of both agents."
_RECORD_NAMES = {"ref": "reference"}

_KEY_RE = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")
# Characters that are unsafe or unportable in a file name (separators, Windows' reserved ones).
_UNSAFE_RE = re.compile(r'[\\/:*?"<>|]')

SPECS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="ns_kv",
        description=(
            "The project's shared key-value store (values end-to-end encrypted). "
            "set: key, value; get: key (value and version); list: keys (by prefix); delete: key. "
            "Read-modify-write: get, then set with version; it fails if someone changed it meanwhile."
        ),
        params=(
            Param("action", "What to do.", enum=KV_ACTIONS),
            Param("key", "Letters, digits and . _ : - (set, get, delete)."),
            Param("value", "Text to store (set)."),
            Param("version", "Only if the entry is still at this version (set, delete); 0: only if new.", "integer"),
            Param("prefix", "Only keys starting with this (list)."),
        ),
    ),
    ToolSpec(
        name="ns_ref",
        description=(
            "Code references shared with one agent or all (end-to-end encrypted). "
            "share: title, content (code), optional source_file, language, to; "
            "list: without content (filter by from, language); read: id, in full; delete: id (your own)."
        ),
        params=(
            Param("action", "What to do.", enum=REF_ACTIONS),
            Param("title", "What it is (share)."),
            Param("content", "The code or text (share)."),
            Param("source_file", "Where it comes from, e.g. src/app.py:10-42 (share)."),
            Param("language", "Lowercase, e.g. python (share, list)."),
            Param("to", "Recipient agent slug (share); default: every agent."),
            Param("from", "Only references shared by this agent (list)."),
            Param("id", "Reference id (read, delete)."),
        ),
    ),
    ToolSpec(
        name="ns_file",
        description=(
            "Files shared with the project's agents (end-to-end encrypted). upload: path of a file in the "
            "workspace, optional name; list; read: id; small UTF-8 text is answered inline, anything else (or "
            "with path) saved under .nexysync/downloads/ (path: a name there); delete: id (your own)."
        ),
        params=(
            Param("action", "What to do.", enum=FILE_ACTIONS),
            Param("path", "upload: a file in the workspace (relative to it); read: a name under .nexysync/downloads/."),
            Param("name", "Name others see (upload); default: the file's own."),
            Param("id", "File id (read, delete)."),
            Param("overwrite", "Let read replace an existing file at path.", "boolean"),
        ),
    ),
)


def _key(args: Arguments) -> str:
    key = args.required_text("key")
    if not _KEY_RE.match(key) or set(key) == {"."}:
        raise ToolFailure(f"`key` must be 1 to 200 letters, digits and . _ : - (not only dots); got {key!r}.")
    return key


def entry_view(entry: KvEntry, *, whole: bool = True) -> dict[str, Any]:
    """Return a store entry as the AI sees it; with ``whole=False`` a long value becomes a ``preview``."""
    view: dict[str, Any] = {"key": entry.key}
    if whole or len(entry.value) <= VALUE_PREVIEW_CHARS:
        view["value"] = entry.value
    else:
        view["preview"] = entry.value[:VALUE_PREVIEW_CHARS] + "…"
    view.update(version=entry.version, updated_by=entry.updated_by, updated_at=iso_time(entry.updated_at))
    return view


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


def _listing(answer: dict[str, Any], page: Any) -> str:
    """Finish a list's answer: the records that could not be decrypted, and whether there are more."""
    if page.undecryptable:
        answer["undecryptable"] = undecryptable_lines(page.undecryptable)
    if page.next_cursor:
        answer["more"] = True
    return dumps(answer)


def _text(content: bytes) -> str | None:
    """Return content as text if it is UTF-8 without NUL bytes (as binary files have), else None."""
    if b"\0" in content:
        return None
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return None


class Sharing:
    """Serve ``ns_kv``, ``ns_ref`` and ``ns_file``.

    Args:
        link: The agent's client.
    """

    def __init__(self, link: AgentLink) -> None:
        self._link = link

    def _workspace(self) -> Workspace:
        """Return the workspace: the one of the key file in use, else the working directory."""
        return Workspace.locate(self._link.source)

    # -- ns_kv ---------------------------------------------------------------------------------

    async def kv(self, values: Mapping[str, Any]) -> str:
        """Serve one ``ns_kv`` call."""
        action = required_action("ns_kv", values, KV_ACTIONS)
        args = Arguments(action, values)
        client = self._link.require()
        if action == "list":
            page = await client.kv.list(prefix=args.text("prefix"), limit=LIST_LIMIT).first_page()
            return _listing({"entries": [entry_view(e, whole=False) for e in page.data]}, page)
        key = _key(args)
        try:
            if action == "get":
                return dumps(entry_view(await client.kv.get(key)))
            version = args.integer("version", low=0)
            if action == "set":
                value = args.required_text("value")
                if version == 0:
                    entry = await client.kv.put(key, value, if_none_match=True)
                else:
                    entry = await client.kv.put(key, value, if_match=version)
                return dumps({"key": entry.key, "version": entry.version})
            if version == 0:
                raise ToolFailure("`version` must be at least 1 for action=delete.")
            await client.kv.delete(key, if_match=version)
            return dumps({"deleted": key})
        except PreconditionFailedError as error:
            raise ToolFailure(await _kv_changed(client, key, args.integer("version", low=0))) from error
        except NotFoundError as error:
            if error.code != "KV_NOT_FOUND":
                raise
            raise ToolFailure(f"No kv key {key!r} (ns_kv action=list shows the keys).") from error

    # -- ns_ref --------------------------------------------------------------------------------

    async def ref(self, values: Mapping[str, Any]) -> str:
        """Serve one ``ns_ref`` call."""
        action = required_action("ns_ref", values, REF_ACTIONS)
        args = Arguments(action, values)
        client = self._link.require()
        if action == "share":
            try:
                ref = await client.refs.share(
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
            return dumps({"id": ref.id, **({"to": ref.to} if ref.to else {"broadcast": True})})
        if action == "list":
            page = await client.refs.list(
                from_=args.text("from"), language=args.text("language"), limit=LIST_LIMIT
            ).first_page()
            return _listing({"refs": [ref_view(r, content=False) for r in page.data]}, page)
        ref_id = args.required_text("id")
        try:
            if action == "read":
                return dumps(ref_view(await client.refs.get(ref_id), content=True))
            await client.refs.delete(ref_id)
            return dumps({"deleted": ref_id})
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

    # -- ns_file -------------------------------------------------------------------------------

    async def file(self, values: Mapping[str, Any]) -> str:
        """Serve one ``ns_file`` call."""
        action = required_action("ns_file", values, FILE_ACTIONS)
        args = Arguments(action, values)
        client = self._link.require()
        if action == "upload":
            return await self._upload(client, args)
        if action == "list":
            page = await client.files.list(limit=LIST_LIMIT).first_page()
            return _listing({"files": [file_view(f) for f in page.data]}, page)
        file_id = args.required_text("id")
        try:
            if action == "read":
                return await self._read(client, file_id, args.text("path"), overwrite=args.flag("overwrite"))
            await client.files.delete(file_id)
            return dumps({"deleted": file_id})
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

    async def _upload(self, client: AsyncClient, args: Arguments) -> str:
        given = args.required_text("path")
        name = args.text("name") or Path(given).expanduser().name
        content_type = mimetypes.guess_type(name)[0]
        try:
            with self._workspace().open_upload(given) as handle:
                file = await client.files.upload(handle, name=name, content_type=content_type)
        except OSError as error:
            raise ToolFailure(f"Cannot read {given!r}: {error.strerror or error}.") from error
        except APIStatusError as error:
            if error.status == 413:
                raise ToolFailure(f"File too large (413): {error.detail or error.message}") from error
            raise
        return dumps(file_view(file))

    async def _read(self, client: AsyncClient, file_id: str, path: str | None, *, overwrite: bool) -> str:
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
        target = self._workspace().save_path(meta.name, file_id, path, safe_name=fallback)
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


async def _kv_changed(client: AsyncClient, key: str, version: int | None) -> str:
    """Return the line that tells a conditional write found the entry changed, with its version now."""
    try:
        now = str((await client.kv.get(key)).version)
    except NotFoundError:
        now = "deleted"
    if version == 0:
        return f"kv key {key!r} already exists (version {now}): get it, then set with that version."
    return f"kv key {key!r} changed since version {version} (now {now}): get it again and retry."


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
