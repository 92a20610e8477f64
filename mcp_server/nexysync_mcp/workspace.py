"""Where ``ns_file`` may touch the local disk: it reads inside the workspace and writes only to its downloads.

The AI names the paths, and the AI reads other agents' messages, so a prompt-injected teammate
can ask it for anything: "upload ~/.config/nexysync/credentials.json", "save this file over
~/.bashrc". So:

- ``upload`` reads only regular files inside the workspace (the directory that holds
  ``.nexysync/``) or inside a directory the user listed in ``NEXYSYNC_UPLOAD_ROOTS`` (the MCP
  server's environment, separated by ``os.pathsep``), judged on the path with every link
  resolved, and re-checked on the file actually opened. NexySync's own secrets are refused even
  there: any file in a ``.nexysync/`` directory but its ``downloads/``, and the CLI's config
  directory (sessions and project keys).
- ``read`` saves only under ``<workspace>/.nexysync/downloads/``; ``path`` names a file or
  folder there. No ``..``, no absolute path elsewhere, no link on the way (the downloads folder
  included), and a replaced file is replaced by a rename, never written through a link.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from nexysync.keyfile import KEY_DIR, config_dir
from nexysync_mcp.errors import ToolFailure

__all__ = ["DOWNLOADS", "ENV_UPLOAD_ROOTS", "Workspace", "exists_message", "write_replacing"]

#: Lists directories beyond the workspace that ``ns_file upload`` may read (``os.pathsep``-separated).
ENV_UPLOAD_ROOTS = "NEXYSYNC_UPLOAD_ROOTS"
#: Where ``ns_file read`` saves files, under the workspace.
DOWNLOADS = Path(KEY_DIR) / "downloads"
# O_NOFOLLOW refuses a link as the last component; O_NONBLOCK keeps a FIFO from blocking open().
# Neither exists on Windows, where the resolved-path checks alone apply.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


def exists_message(target: Path) -> str:
    """Return what the AI is told when a download would replace a file without ``overwrite``."""
    return f"{target} exists; give another path, or overwrite=true to replace it."


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _secret_reason(real: Path, config: Path) -> str | None:
    """Return why a resolved path is one of NexySync's secrets, or None."""
    parts = real.parts
    for index, part in enumerate(parts[:-1]):
        if part == KEY_DIR and parts[index + 1] != DOWNLOADS.name:
            return "it is in a .nexysync folder (agent key files: the agent's API key and the project key)"
    if _inside(real, config):
        return "it is in the nexysync CLI's config folder (the owner's sessions and the project keys)"
    return None


def _opened_path(fd: int, fallback: Path) -> Path:
    """Return the real path of an open file: from ``/proc`` where it exists (no race), else re-resolved."""
    with contextlib.suppress(OSError):
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    return _real(fallback)


@dataclass(frozen=True)
class Workspace:
    """The agent's workspace on this machine and what ``ns_file`` may do in it.

    Attributes:
        root: The directory that holds ``.nexysync/`` (links resolved).
        upload_roots: Further directories uploads may read, as the user configured them.
        config: The CLI's config directory (links resolved), never read.
    """

    root: Path
    upload_roots: tuple[Path, ...] = ()
    config: Path = Path("/nonexistent")

    @classmethod
    def locate(cls, key_file: str | None, environ: Mapping[str, str] | None = None) -> Workspace:
        """Return the workspace of a key file in ``<workspace>/.nexysync/``, else of the working directory.

        Args:
            key_file: Where the agent's keys came from (a path, or a word such as "environment").
            environ: Where ``NEXYSYNC_UPLOAD_ROOTS`` (and the CLI's config dir) is read; ``os.environ`` by default.
        """
        env = os.environ if environ is None else environ
        path = Path(key_file) if key_file else None
        root = path.parent.parent if path is not None and path.parent.name == KEY_DIR else Path.cwd()
        root = _real(root.absolute())
        extra = tuple(
            _real(root / Path(entry).expanduser()) for entry in env.get(ENV_UPLOAD_ROOTS, "").split(os.pathsep) if entry
        )
        return cls(root=root, upload_roots=extra, config=_real(config_dir(env)))

    @property
    def downloads(self) -> Path:
        """Where downloads go."""
        return self.root / DOWNLOADS

    def _check_readable(self, given: str, real: Path) -> None:
        roots: Sequence[Path] = (self.root, *self.upload_roots)
        if not any(_inside(real, root) for root in roots):
            raise ToolFailure(
                f"Refusing to upload {given!r}: it resolves to {real}, outside the workspace {self.root}. ns_file "
                f"uploads only files in the workspace; the user (not the AI) may allow more folders in "
                f"{ENV_UPLOAD_ROOTS}."
            )
        reason = _secret_reason(real, self.config)
        if reason is not None:
            raise ToolFailure(f"Refusing to upload {given!r}: {reason}; NexySync secrets never leave this machine.")

    @contextlib.contextmanager
    def open_upload(self, given: str) -> Iterator[BinaryIO]:
        """Open a file the AI asked to upload, after checking it may be read.

        Args:
            given: The path as the AI gave it; a relative one is taken from the workspace.

        Raises:
            ToolFailure: no such file, not a regular file, outside the allowed folders, or a
                NexySync secret.
        """
        candidate = self.root / Path(given).expanduser()
        real = _real(candidate)
        if not real.is_file():
            raise ToolFailure(f"No file at {given!r} ({candidate}).")
        self._check_readable(given, real)
        try:
            fd = os.open(real, _OPEN_FLAGS)
        except OSError as error:
            raise ToolFailure(f"Cannot read {given!r}: {error.strerror or error}.") from error
        with os.fdopen(fd, "rb") as handle:
            # What was opened is checked again: a link swapped in after the check is caught here.
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ToolFailure(f"Refusing to upload {given!r}: not a regular file.")
            self._check_readable(given, _opened_path(fd, real))
            yield handle

    def _downloads_dir(self) -> Path:
        """Return the downloads folder, created if needed, refusing it (or ``.nexysync``) as a link."""
        _folder(self.root / KEY_DIR)
        return _folder(self.downloads)

    def _relative(self, path: str) -> tuple[str, ...]:
        """Return the components under the downloads folder that ``path`` names, or refuse it."""
        raw = Path(path).expanduser()
        refused = ToolFailure(
            f"Refusing to save to {path!r}: ns_file read saves only under {self.downloads}; give a file or folder "
            "name there (no '..')."
        )
        if raw.is_absolute():
            try:
                raw = raw.relative_to(self.downloads)
            except ValueError:
                raise refused from None
        parts = tuple(part for part in raw.parts if part != ".")
        if parts[:2] == DOWNLOADS.parts:
            parts = parts[2:]
        if ".." in parts:
            raise refused
        return parts

    def save_path(self, name: str, file_id: str, path: str | None, *, safe_name: str) -> Path:
        """Return where ``ns_file read`` saves a file, creating the folders on the way.

        Args:
            name: The file's remote name (for messages).
            file_id: The file's id (for messages).
            path: What the AI gave: a file or folder under the downloads folder, or None.
            safe_name: The remote name made one safe component, used when ``path`` is a folder or None.

        Raises:
            ToolFailure: ``path`` leaves the downloads folder, or a link or a non-folder is on the way.
        """
        directory = self._downloads_dir()
        parts = self._relative(path) if path else ()
        as_folder = not parts or (path or "").endswith(("/", os.sep)) or (directory.joinpath(*parts)).is_dir()
        folders, leaf = (parts, safe_name) if as_folder else (parts[:-1], parts[-1])
        for part in folders:
            directory = _folder(directory / part)
        target = directory / leaf
        if target.parent != directory or target.name in ("", ".", ".."):
            raise ToolFailure(f"Refusing to save file {file_id} under the unsafe name {name!r}.")
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISLNK(os.lstat(target).st_mode):
                raise ToolFailure(f"Refusing to save file {file_id} to {target}: it is a link, never written through.")
        return target


def _folder(directory: Path) -> Path:
    """Return ``directory``, made (0700) if missing; refuse it if it is a link or not a folder.

    Checked without following links, one component at a time, so no link on the way can lead a
    download out of the downloads folder.
    """
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        directory.mkdir(mode=0o700)
        return directory
    if not stat.S_ISDIR(info.st_mode):
        kind = "a link" if stat.S_ISLNK(info.st_mode) else "not a folder"
        raise ToolFailure(
            f"Refusing to save under {directory}: it is {kind}; downloads go only into the workspace's own "
            f"{DOWNLOADS.as_posix()} folder, never through a link."
        )
    return directory


def write_replacing(target: Path, content: bytes) -> None:
    """Write ``content`` to a temp file beside ``target`` and rename it over: a link there is replaced, not followed."""
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    with temporary.open("xb") as handle:
        handle.write(content)
    try:
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
