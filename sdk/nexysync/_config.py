"""Client configuration from the agent key file ``.nexysync/key`` and ``NEXYSYNC_*`` env vars."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nexysync._errors import KeyFileError
from nexysync.crypto import KeyRing, decode_key

__all__ = ["KeyFile", "check_key_file_private", "find_key_file", "load_key_file"]

KEY_FILE_PARTS = (".nexysync", "key")
ENV_API_URL = "NEXYSYNC_API_URL"
ENV_API_KEY = "NEXYSYNC_API_KEY"
ENV_ENC_KEY = "NEXYSYNC_ENC_KEY"


@dataclass(frozen=True)
class KeyFile:
    """What a key file (or the environment) says about an agent.

    Attributes:
        api_key: The agent's API key.
        api_url: The API's base URL.
        keys: The decoded project keys, oldest first; the last one encrypts.
        project_id: The project id, when the file names it.
        agent_name: The agent's name, when the file names it.
        custom_enc_key: Whether the user supplied their own encryption key.
        path: The file it came from, or None for the environment alone.
    """

    api_key: str
    api_url: str
    keys: tuple[bytes, ...]
    project_id: str | None = None
    agent_name: str | None = None
    custom_enc_key: bool = False
    path: Path | None = field(default=None, compare=False)

    def key_ring(self) -> KeyRing:
        """Return the key ring built from the file's keys."""
        return KeyRing(self.keys)


def find_key_file(start: Path | None = None) -> Path | None:
    """Return the nearest ``.nexysync/key`` from ``start`` (default: the cwd) upward, or None."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory.joinpath(*KEY_FILE_PARTS)
        if candidate.is_file():
            return candidate
    return None


def check_key_file_private(path: Path, info: os.stat_result) -> None:
    """Refuse a key file that another user owns, or that users other than its owner may read or change.

    A key file names the API the agent trusts and holds its secrets, so one that came from
    someone else (a repository that committed ``.nexysync/``: git checks files out 0644) would
    point this agent at a stranger's server, and one others may read gives its keys away.

    Windows has no POSIX owner or mode bits (``st_mode`` there says nothing of other users' access,
    which ACLs decide), so the check is skipped where ``os.getuid`` does not exist.

    Args:
        path: The key file, named in the error.
        info: Its ``stat`` (taken from the open file, so it describes what is read).

    Raises:
        KeyFileError: owned by another user, or with any group or other permission bit set.
    """
    getuid = getattr(os, "getuid", None)
    if getuid is None:
        return
    uid = getuid()
    if info.st_uid != uid:
        raise KeyFileError(
            f"key file {path} belongs to another user (uid {info.st_uid}, you are {uid}), so it may point this "
            f"agent at someone else's server: if it is yours, run `chown $(id -u) {path}`; otherwise delete it "
            "and run `nexysync init`"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise KeyFileError(
            f"key file {path} has mode {mode:04o}, so other users may read or change it: if it is yours, run "
            f"`chmod 600 {path}`; if it came with a cloned repository, delete it and run `nexysync init`"
        )


def _read_key_file(path: Path) -> str:
    """Return a key file's text after checking, on the open file, that it is the user's own and private."""
    try:
        with path.open("r", encoding="utf-8") as handle:
            check_key_file_private(path, os.fstat(handle.fileno()))
            return handle.read()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise KeyFileError(f"key file {path} is not valid JSON: {exc}") from exc


def _decode_key(text: Any, where: str) -> bytes:
    if not isinstance(text, str):
        raise KeyFileError(f"{where} must be a base64 string")
    try:
        return decode_key(text)
    except ValueError as exc:
        raise KeyFileError(f"{where}: {exc}") from exc


def load_key_file(path: str | os.PathLike[str] | None = None, *, env: dict[str, str] | None = None) -> KeyFile:
    """Load the agent configuration from a key file, with ``NEXYSYNC_*`` env vars taking precedence.

    Args:
        path: The key file; when None, ``.nexysync/key`` is searched upward from the cwd. The
            file may be absent when the env vars give the API URL, API key and encryption key.
        env: The environment to read (``os.environ`` when None).

    Raises:
        KeyFileError: no file and no env vars, a file of another user or that others may read
            (see :func:`check_key_file_private`), unreadable JSON, a missing field, or a key that
            is not standard base64 of 32 bytes.
    """
    environ = dict(os.environ if env is None else env)
    data: dict[str, Any] = {}
    found: Path | None
    if path is not None:
        found = Path(path)
        if not found.is_file():
            raise KeyFileError(f"key file {found} does not exist")
    else:
        found = find_key_file()
    if found is not None:
        text = _read_key_file(found)
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            raise KeyFileError(f"key file {found} is not valid JSON: {exc}") from exc
        if not isinstance(loaded, dict):
            raise KeyFileError(f"key file {found} must hold a JSON object")
        data = loaded
    elif not any(name in environ for name in (ENV_API_KEY, ENV_ENC_KEY, ENV_API_URL)):
        raise KeyFileError(
            f"no {'/'.join(KEY_FILE_PARTS)} found from {Path.cwd()} upward, and "
            f"{ENV_API_URL}, {ENV_API_KEY}, {ENV_ENC_KEY} are not set"
        )
    where = f"key file {found}" if found else "the environment"
    api_key = environ.get(ENV_API_KEY) or data.get("api_key")
    api_url = environ.get(ENV_API_URL) or data.get("api_url")
    enc_key = environ.get(ENV_ENC_KEY) or data.get("enc_key")
    missing = [
        name
        for name, value, env_name in (
            ("api_key", api_key, ENV_API_KEY),
            ("enc_key", enc_key, ENV_ENC_KEY),
            ("api_url", api_url, ENV_API_URL),
        )
        if not value
    ]
    if missing:
        raise KeyFileError(f"{where} lacks {', '.join(missing)} (or set the matching NEXYSYNC_* env var)")
    if not isinstance(api_key, str) or not isinstance(api_url, str):
        raise KeyFileError(f"{where}: api_key and api_url must be strings")
    current = _decode_key(enc_key, f"enc_key in {where}")
    ring_field = data.get("keyring") or []
    if not isinstance(ring_field, list):
        raise KeyFileError(f"keyring in {where} must be a list of base64 keys")
    keys = [_decode_key(text, f"keyring[{i}] in {where}") for i, text in enumerate(ring_field)]
    # The current key always encrypts, so it goes last; older ring keys stay for decryption.
    keys = [key for key in keys if key != current] + [current]
    project_id = data.get("project_id")
    agent_name = data.get("agent_name")
    return KeyFile(
        api_key=api_key,
        api_url=api_url,
        keys=tuple(keys),
        project_id=project_id if isinstance(project_id, str) and project_id else None,
        agent_name=agent_name if isinstance(agent_name, str) else None,
        custom_enc_key=bool(data.get("custom_enc_key", False)),
        path=found,
    )
