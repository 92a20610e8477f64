"""The agent key file ``.nexysync/key``: find it, check it is private, read it, write it, rewrite its key ring.

The one module that knows the format, used by the SDK, the MCP server, the CLI and the hooks. It
imports only the standard library (and the SDK's error types), so a hook that runs on every
prompt can read a key file without paying for the SDK's start-up (``import nexysync.keyfile``
loads neither httpx nor cryptography).

The file is a JSON object: ``api_key``, ``enc_key`` (standard base64 of the 32-byte project key
that encrypts), ``api_url``, and optionally ``project_id``, ``agent_name``, ``custom_enc_key``
``keyring`` (every key, oldest first, the newest included) and ``device`` (the machine's paired
device, see :mod:`nexysync.devices`). A file with only ``api_key``,
``enc_key`` and ``api_url`` works. It is written mode 0600 in a 0700 directory, atomically, and
read only when it belongs to the user and nobody else may read or change it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from nexysync._errors import KeyFileError

# ``typing`` is imported only by type checkers (they treat TYPE_CHECKING as true): at run time it
# would cost every hook run 3 ms, and its names are used in annotations alone.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterator
    from typing import Any

    from nexysync.crypto import KeyRing

__all__ = [
    "ENV_API_KEY",
    "ENV_API_URL",
    "ENV_CONFIG_DIR",
    "ENV_ENC_KEY",
    "GITIGNORE_ENTRY",
    "KEY_DIR",
    "KEY_FILE",
    "KeyFile",
    "KeyFileError",
    "add_to_gitignore",
    "check_key_file_private",
    "config_dir",
    "encode_key",
    "ensure_private_dir",
    "find_key_file",
    "immediate_transaction",
    "key_file_fields",
    "load_key_file",
    "private_sqlite",
    "read_key_file",
    "rewrite_key_ring",
    "write_json",
    "write_key_file",
    "write_private",
]

KEY_DIR = ".nexysync"
KEY_FILE = "key"
KEY_FILE_PARTS = (KEY_DIR, KEY_FILE)
GITIGNORE_ENTRY = ".nexysync/"
ENV_API_URL = "NEXYSYNC_API_URL"
ENV_API_KEY = "NEXYSYNC_API_KEY"
ENV_ENC_KEY = "NEXYSYNC_ENC_KEY"
#: Overrides where this machine keeps project keys and CLI sessions (tests point it at a temp dir).
ENV_CONFIG_DIR = "NEXYSYNC_CONFIG_DIR"
_FILE_MODE = 0o600
_DIR_MODE = 0o700
_IGNORED_FORMS = frozenset({".nexysync", ".nexysync/", "/.nexysync", "/.nexysync/", ".nexysync/*", "/.nexysync/*"})


def encode_key(key: bytes) -> str:
    """Return a project key as standard base64, as key files hold it."""
    return base64.b64encode(key).decode("ascii")


class KeyFile:
    """What a key file (or the environment) says about an agent; immutable.

    Written out rather than as a dataclass: ``dataclasses`` imports ``inspect``, which would add
    about 8 ms to every hook run, and hooks run on every prompt.

    Attributes:
        api_key: The agent's API key.
        api_url: The API's base URL.
        keys: The decoded project keys, oldest first; the last one encrypts.
        project_id: The project id, when the file names it.
        agent_name: The agent's name, when the file names it.
        custom_enc_key: Whether the user supplied their own encryption key.
        path: The file it came from, or None for the environment alone (not compared).
    """

    __slots__ = ("agent_name", "api_key", "api_url", "custom_enc_key", "keys", "path", "project_id")
    _COMPARED = ("api_key", "api_url", "keys", "project_id", "agent_name", "custom_enc_key")

    api_key: str
    api_url: str
    keys: tuple[bytes, ...]
    project_id: str | None
    agent_name: str | None
    custom_enc_key: bool
    path: Path | None

    def __init__(
        self,
        api_key: str,
        api_url: str,
        keys: tuple[bytes, ...],
        project_id: str | None = None,
        agent_name: str | None = None,
        custom_enc_key: bool = False,
        path: Path | None = None,
    ) -> None:
        for name, value in (
            ("api_key", api_key),
            ("api_url", api_url),
            ("keys", tuple(keys)),
            ("project_id", project_id),
            ("agent_name", agent_name),
            ("custom_enc_key", custom_enc_key),
            ("path", path),
        ):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"KeyFile is immutable: use replace() to change {name}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"KeyFile is immutable: {name} cannot be deleted")

    def _compared(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._COMPARED)

    def __eq__(self, other: object) -> bool:
        return other._compared() == self._compared() if isinstance(other, KeyFile) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._compared())

    def __repr__(self) -> str:
        # Never the secrets: a key file printed in a log must not leak the API key or the keys.
        return (
            f"KeyFile(api_url={self.api_url!r}, project_id={self.project_id!r}, agent_name={self.agent_name!r}, "
            f"keys={len(self.keys)}, path={self.path!r})"
        )

    def replace(self, **changes: Any) -> KeyFile:
        """Return a copy with ``changes`` (field names as in the constructor)."""
        fields = {name: getattr(self, name) for name in (*self._COMPARED, "path")}
        fields.update(changes)
        return KeyFile(**fields)

    def key_ring(self) -> KeyRing:
        """Return the key ring built from the file's keys."""
        from nexysync.crypto import KeyRing  # the crypto stack only when something is to be decrypted

        return KeyRing(self.keys)


def find_key_file(start: Path | None = None) -> Path | None:
    """Return the nearest ``.nexysync/key`` from ``start`` (default: the cwd) upward, or None."""
    here = (start or Path.cwd()).expanduser().resolve()
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


def read_key_file(path: Path) -> dict[str, Any]:
    """Return a key file's JSON object, after checking on the open file that it is the user's own and private.

    Raises:
        KeyFileError: unreadable, not private (see :func:`check_key_file_private`), or not a JSON object.
    """
    try:
        with path.open("r", encoding="utf-8") as handle:
            check_key_file_private(path, os.fstat(handle.fileno()))
            text = handle.read()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise KeyFileError(f"key file {path} is not valid JSON: {exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise KeyFileError(f"key file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise KeyFileError(f"key file {path} must hold a JSON object")
    return data


def _decoded(text: Any, where: str) -> bytes:
    from nexysync.crypto import decode_key  # loading keys is for clients, which have the crypto loaded

    if not isinstance(text, str):
        raise KeyFileError(f"{where} must be a base64 string")
    try:
        return decode_key(text)
    except ValueError as exc:
        raise KeyFileError(f"{where}: {exc}") from exc


def key_ring_from(enc_key: Any, keyring: Any, where: str) -> list[bytes]:
    """Return a key file's keys, oldest first, from its ``enc_key`` and ``keyring`` fields.

    The current key always encrypts, so it goes last; older ring keys stay for decryption.

    Raises:
        KeyFileError: a key that is not standard base64 of 32 bytes, or a keyring that is not a list.
    """
    current = _decoded(enc_key, f"enc_key in {where}")
    ring_field = keyring or []
    if not isinstance(ring_field, list):
        raise KeyFileError(f"keyring in {where} must be a list of base64 keys")
    keys = [_decoded(text, f"keyring[{i}] in {where}") for i, text in enumerate(ring_field)]
    return [key for key in keys if key != current] + [current]


def load_key_file(path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None) -> KeyFile:
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
        data = read_key_file(found)
    elif not any(name in environ for name in (ENV_API_KEY, ENV_ENC_KEY, ENV_API_URL)):
        raise KeyFileError(
            f"no {'/'.join(KEY_FILE_PARTS)} found from {Path.cwd()} upward, and "
            f"{ENV_API_URL}, {ENV_API_KEY}, {ENV_ENC_KEY} are not set"
        )
    where = f"key file {found}" if found else "the environment"
    api_key = environ.get(ENV_API_KEY) or data.get("api_key")
    api_url = environ.get(ENV_API_URL) or data.get("api_url")
    enc_key = environ.get(ENV_ENC_KEY) or data.get("enc_key")
    missing = [name for name, value in (("api_key", api_key), ("enc_key", enc_key), ("api_url", api_url)) if not value]
    if missing:
        raise KeyFileError(f"{where} lacks {', '.join(missing)} (or set the matching NEXYSYNC_* env var)")
    if not isinstance(api_key, str) or not isinstance(api_url, str):
        raise KeyFileError(f"{where}: api_key and api_url must be strings")
    keys = key_ring_from(enc_key, data.get("keyring"), where)
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


def key_file_fields(
    *,
    api_key: str | None,
    api_url: str,
    project_id: str,
    keys: Sequence[bytes],
    agent_name: str | None,
    custom_enc_key: bool = False,
) -> dict[str, Any]:
    """Return the JSON fields of an agent's key file (``keys`` oldest first; the last one encrypts).

    With no ``api_key`` (a machine paired without an agent) the file holds the keys only, and
    ``nexysync init`` or ``NEXYSYNC_API_KEY`` supplies the agent later.
    """
    fields = {
        "api_key": api_key,
        "enc_key": encode_key(keys[-1]),
        "agent_name": agent_name,
        "custom_enc_key": custom_enc_key,
        "api_url": api_url,
        "project_id": project_id,
        "keyring": [encode_key(key) for key in keys],
    }
    return {name: value for name, value in fields.items() if value is not None}


def write_key_file(workspace: Path, fields: Mapping[str, Any]) -> Path:
    """Write ``<workspace>/.nexysync/key`` (file 0600, directory 0700) and return its path."""
    path = ensure_private_dir(workspace / KEY_DIR) / KEY_FILE
    write_json(path, fields)
    return path


def rewrite_key_ring(
    path: Path, project_id: str, keys: Sequence[bytes], *, device: Mapping[str, str] | None = None
) -> bool:
    """Put a project's ring (oldest first) into an existing key file, keeping its other fields.

    Args:
        device: The machine's paired device (``{"id", "token", "private_key"}``), written too when given.

    Returns:
        False when the file is gone, unreadable, or now belongs to another project (it is then
        left alone).
    """
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict) or data.get("project_id") != project_id:
        return False
    data["enc_key"] = encode_key(keys[-1])
    data["keyring"] = [encode_key(key) for key in keys]
    if device is not None:
        data["device"] = dict(device)
    write_json(path, data)
    return True


def add_to_gitignore(workspace: Path) -> bool:
    """Make ``<workspace>/.gitignore`` ignore ``.nexysync/``; return whether the file changed.

    Creates the file when absent and appends the entry once: an entry already there in any of its
    usual spellings counts.
    """
    path = workspace / ".gitignore"
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        text = ""
    if any(line.strip() in _IGNORED_FORMS for line in text.splitlines()):
        return False
    separator = "" if not text or text.endswith("\n") else "\n"
    with path.open("a", encoding="utf-8") as handle:
        handle.write(f"{separator}# NexySync agent key (secret)\n{GITIGNORE_ENTRY}\n")
    return True


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return where this machine keeps its project key rings and CLI sessions (not created).

    ``$NEXYSYNC_CONFIG_DIR`` when set, else ``$XDG_CONFIG_HOME/nexysync``, else
    ``~/.config/nexysync``. The MCP server refuses to upload anything from there.
    """
    env = os.environ if environ is None else environ
    if env.get(ENV_CONFIG_DIR):
        return Path(env[ENV_CONFIG_DIR]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "nexysync"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make it ``0700``; return it."""
    path.mkdir(parents=True, exist_ok=True, mode=_DIR_MODE)
    # mkdir's mode is filtered by the umask and ignored for a directory that already exists.
    os.chmod(path, _DIR_MODE)
    return path


def private_sqlite(path: Path) -> sqlite3.Connection:
    """Open (creating it ``0600`` in a ``0700`` folder) an SQLite file of the agent's, in WAL mode.

    The file is created private before SQLite opens it, and SQLite gives its ``-wal`` and ``-shm``
    files the same mode. WAL lets one process read while another writes (a CLI command beside the
    MCP server). Autocommit: callers open their own transactions.
    """
    import sqlite3  # here: a hook that imports this module on every run does not pay for it

    ensure_private_dir(path.parent)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, _FILE_MODE))
    os.chmod(path, _FILE_MODE)
    db = sqlite3.connect(path, timeout=10, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    return db


@contextlib.contextmanager
def immediate_transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run the block in one write transaction of an autocommit connection (:func:`private_sqlite`'s).

    ``BEGIN IMMEDIATE`` takes the write lock at once, so a second writer waits (up to the
    connection's timeout) instead of failing halfway; any exception rolls it all back.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically with mode ``0600`` (the directory must exist).

    The file is created ``0600`` from the start and renamed over the old one, so no reader ever
    sees a half-written key file and the secret is never readable by others, not even briefly.
    """
    # os.urandom, as secrets would: secrets (through hashlib) costs a hook run 3 ms to import.
    temporary = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, _FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as indented JSON to ``path`` with mode ``0600``, creating a ``0700`` parent."""
    ensure_private_dir(path.parent)
    write_private(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
