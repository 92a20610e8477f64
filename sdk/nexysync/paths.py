"""Workspace paths as the lease server sees them: keyed hashes of the path and of each directory above it.

A path is normalised relative to the workspace's root (POSIX separators, no ``.`` or ``..``, a
directory ends with ``/``), then each of it and its ancestor directories is an HMAC-SHA256 under
a key derived from the project key (:meth:`nexysync.crypto.KeyRing.derive`), bound to the
project. Two agents of one project get the same keys for the same path; the server learns
neither the path nor which paths share a name.
"""

from __future__ import annotations

import hashlib
import hmac
import posixpath
from pathlib import Path, PurePosixPath

from nexysync.crypto import KeyRing

__all__ = ["PathKeys", "normalise"]


def normalise(path: str | Path, root: str | Path | None = None) -> str:
    """Return ``path`` relative to ``root`` (the working directory by default), as the keys are made of.

    A directory (an existing one, or a path given with a trailing ``/``) ends with ``/``.

    Raises:
        ValueError: the path is outside the root, or is the root itself.
    """
    base = Path(root or Path.cwd()).resolve()
    raw = str(path)
    as_dir = raw.endswith(("/", "\\"))
    full = (base / Path(raw)).resolve()
    try:
        relative = PurePosixPath(full.relative_to(base).as_posix())
    except ValueError:
        raise ValueError(f"{raw!r} is outside the workspace {base}") from None
    text = posixpath.normpath(relative.as_posix())
    if text in ("", "."):
        raise ValueError("a lease names a path inside the workspace, not the workspace itself")
    return text + "/" if as_dir or full.is_dir() else text


class PathKeys:
    """Make the lease keys of normalised paths for one project.

    Args:
        key_ring: The project's keys.
        project_id: The project (the keys are bound to it).
    """

    def __init__(self, key_ring: KeyRing, project_id: str) -> None:
        self._secret = key_ring.derive(b"lease-paths/" + project_id.encode())

    def key(self, normalised: str) -> str:
        """Return the key of one normalised path (hex)."""
        return hmac.new(self._secret, normalised.encode(), hashlib.sha256).hexdigest()

    def named(self, normalised: str) -> set[str]:
        """Return the keys a lease on this name may have: of the path as given, and of the directory of that name.

        ``src/auth`` normalises as a file when no such directory is on disk, yet names the lease on
        ``src/auth/`` as well.
        """
        return {self.key(normalised), self.key(normalised.rstrip("/") + "/")}

    def of(self, normalised: str) -> tuple[str, list[str]]:
        """Return a path's key and the keys of the directories above it, from the root down."""
        parts = normalised.rstrip("/").split("/")
        return self.key(normalised), [self.key("/".join(parts[:depth]) + "/") for depth in range(1, len(parts))]
