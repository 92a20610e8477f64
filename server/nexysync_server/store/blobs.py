"""File content on a directory volume: ``<root>/<project_id>/<file_id>``, written through temp files.

An upload is written to a temp file beside its final place and linked there only when it is
complete, so a reader never sees a partial blob and a crashed upload leaves only a temp file
(swept later). ``os.link`` rather than ``rename``: it refuses to replace a blob that exists.

A full volume (no space, a quota, a file-size limit) is told apart from other I/O errors by
:func:`volume_full`: it is a condition of the machine the client can wait out, not a fault.
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ..ids import ULID_RE

_TEMP_PREFIX = ".upload-"
# No space left, a disk quota, and a file-size limit (RLIMIT_FSIZE): each means "no room here".
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def volume_full(exc: BaseException) -> bool:
    """Tell whether ``exc`` says the volume has no room (rather than some other failure)."""
    return isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class Blobs:
    """A directory of file content, one subdirectory per project.

    Args:
        root: The volume's directory (made if missing).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)

    def path(self, project_id: str, file_id: str) -> Path:
        """Return where a file's content is (ids are ULIDs, so they cannot leave the root)."""
        if not (ULID_RE.match(project_id) and ULID_RE.match(file_id)):
            raise ValueError("project and file ids are ULIDs")
        return self.root / project_id / file_id

    def open_temp(self, project_id: str, file_id: str) -> tuple[BinaryIO, Path]:
        """Open a new temp file for an upload of a file; return it and its path."""
        final = self.path(project_id, file_id)
        final.parent.mkdir(mode=0o700, exist_ok=True)
        temp = final.with_name(f"{_TEMP_PREFIX}{file_id}-{os.urandom(6).hex()}")
        return temp.open("xb"), temp

    def commit(self, temp: Path, project_id: str, file_id: str) -> None:
        """Put a complete upload of a pending file in its final place, atomically and durably; remove the temp name.

        The content is flushed to disk before it gets its name, and the directory after, so once
        this returns the blob survives a crash of the machine. Content already in place of the
        same size is a whole upload of this file that got there first (its server may have died
        before marking the file ready): it is kept, never replaced. Content of another size cannot
        be one (the signed URL fixes the size): it was left by a deleted file of the same id, and
        is replaced. (It blocks: run it in a thread.)
        """
        final = self.path(project_id, file_id)
        try:
            with temp.open("rb") as handle:
                os.fsync(handle.fileno())
            try:
                os.link(temp, final)
            except FileExistsError:
                if final.stat().st_size != temp.stat().st_size:
                    os.replace(temp, final)
        finally:
            temp.unlink(missing_ok=True)
        _fsync_directory(final.parent)

    def delete(self, project_id: str, file_id: str) -> None:
        """Remove a file's content, if any."""
        self.path(project_id, file_id).unlink(missing_ok=True)

    def delete_project(self, project_id: str) -> None:
        """Remove every file of a project, if any."""
        if not ULID_RE.match(project_id):
            raise ValueError("project ids are ULIDs")
        directory = self.root / project_id
        if directory.exists():
            shutil.rmtree(directory)

    def project_ids(self) -> list[str]:
        """Return the projects that have a directory here."""
        return [entry.name for entry in self.root.iterdir() if entry.is_dir() and ULID_RE.match(entry.name)]

    def file_ids(self, project_id: str) -> Iterator[str]:
        """Yield the ids of a project's stored files."""
        directory = self.root / project_id
        if directory.is_dir():
            for entry in directory.iterdir():
                if ULID_RE.match(entry.name):
                    yield entry.name

    def remove_stale_temps(self, older_than_s: float) -> int:
        """Remove temp files of uploads untouched for ``older_than_s``; return how many."""
        cutoff = time.time() - older_than_s
        removed = 0
        for temp in self.root.glob(f"*/{_TEMP_PREFIX}*"):
            try:
                if temp.stat().st_mtime < cutoff:
                    temp.unlink()
                    removed += 1
            except FileNotFoundError:
                continue  # its upload finished or failed meanwhile
        return removed
