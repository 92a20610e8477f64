"""Project keys on this machine, the key files the CLI writes for them, and the key export line.

The project key never leaves the machine through the API. The CLI makes it on the first
``nexysync init`` for a project and keeps the project's key ring, oldest key first, in
``<config dir>/projects/<project id>.json`` (mode 0600) together with the paths of every key file
it wrote for that project, so ``nexysync keys rotate`` can update them all.

The key file's format (``enc_key``, the newest key, and ``keyring``, every key oldest first) is
the SDK's :mod:`nexysync.keyfile`: this module writes key files through it and only adds what
the CLI keeps around them (the project key store, the export line, ``tail``'s position).

The export line carries a ring to another machine: ``nsk1:<project id>:<payload>`` where the
payload is unpadded base64url of the JSON object ``{"keys": [<standard base64 key>, ...]}``,
oldest key first.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nexysync import KeyFileError, crypto, keyfile
from nexysync.crypto import key_id, new_key
from nexysync.devices import Device, merge_rings, read_device
from nexysync.keyfile import (
    GITIGNORE_ENTRY,
    KEY_DIR,
    KEY_FILE,
    add_to_gitignore,
    encode_key,
    ensure_private_dir,
    write_key_file,
)
from nexysync_cli.errors import CliError
from nexysync_cli.files import read_json, write_json

__all__ = [
    "EXPORT_PREFIX",
    "GITIGNORE_ENTRY",
    "KEY_DIR",
    "KEY_FILE",
    "ProjectKeyStore",
    "ProjectKeys",
    "add_to_gitignore",
    "agent_key_file",
    "decode_key",
    "encode_key",
    "export_line",
    "is_private",
    "key_file_fields",
    "merge_rings",
    "parse_export_line",
    "read_tail_position",
    "rewrite_key_ring",
    "write_key_file",
    "write_tail_position",
]

TAIL_FILE = "tail.json"
EXPORT_PREFIX = "nsk1"


def decode_key(text: str, where: str) -> bytes:
    """Return the 32 key bytes of a standard-base64 string; ``where`` names it in the error.

    Raises:
        CliError: not base64, or not 32 bytes.
    """
    try:
        return crypto.decode_key(text)
    except ValueError as exc:
        raise CliError(f"{where}: {exc}", code="BAD_KEY") from exc


@dataclass
class ProjectKeys:
    """What this machine knows of one project.

    Attributes:
        project_id: The project.
        keys: Its keys, oldest first; the last one encrypts.
        name: The project's name when last seen (to find it by name without asking the server).
        api_url: The API the project lives on.
        key_files: Paths of the key files written for it, as strings.
        device: This machine's device in the project, once paired (it receives rotations).
    """

    project_id: str
    keys: list[bytes]
    name: str | None = None
    api_url: str | None = None
    key_files: list[str] = field(default_factory=list)
    device: Device | None = None

    @property
    def current(self) -> bytes:
        """The key that encrypts."""
        return self.keys[-1]

    def key_ids(self) -> list[str]:
        """The ids of the keys, oldest first (safe to show: a hash prefix, not the key)."""
        return [key_id(key) for key in self.keys]

    def to_json(self) -> dict[str, Any]:
        """Return the form saved in the config directory."""
        return {
            "project_id": self.project_id,
            "name": self.name,
            "api_url": self.api_url,
            "keys": [encode_key(key) for key in self.keys],
            "key_files": self.key_files,
            **({"device": self.device.to_json()} if self.device else {}),
        }


class ProjectKeyStore:
    """The project keys kept in ``<config dir>/projects/``.

    Args:
        directory: The CLI's config directory.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory / "projects"

    def path(self, project_id: str) -> Path:
        """Return the file of one project."""
        if not project_id or not project_id.isalnum():
            raise CliError(f"{project_id!r} is not a project id", code="BAD_PROJECT_ID")
        return self.directory / f"{project_id}.json"

    def load(self, project_id: str) -> ProjectKeys | None:
        """Return what this machine holds for a project, or None."""
        path = self.path(project_id)
        data = read_json(path)
        if data is None:
            return None
        raw_keys = data.get("keys")
        if not isinstance(raw_keys, list) or not raw_keys:
            raise CliError(f"{path} holds no keys; fix or remove it", code="BAD_FILE")
        keys = [decode_key(str(text), f"key {i} in {path}") for i, text in enumerate(raw_keys)]
        files = data.get("key_files") if isinstance(data.get("key_files"), list) else []
        return ProjectKeys(
            project_id=project_id,
            keys=keys,
            name=data.get("name") if isinstance(data.get("name"), str) else None,
            api_url=data.get("api_url") if isinstance(data.get("api_url"), str) else None,
            key_files=[str(item) for item in files or []],
            device=_device(data, path),
        )

    def save(self, project: ProjectKeys) -> Path:
        """Save a project's keys (mode 0600, directory 0700) and return the file."""
        ensure_private_dir(self.directory.parent)
        path = self.path(project.project_id)
        write_json(path, project.to_json())
        return path

    def create(self, project_id: str, *, name: str | None, api_url: str | None) -> ProjectKeys:
        """Make a new random key for a project that has none here, and save it."""
        project = ProjectKeys(project_id=project_id, keys=[new_key()], name=name, api_url=api_url)
        self.save(project)
        return project

    def all(self) -> list[ProjectKeys]:
        """Return every project this machine holds keys for."""
        if not self.directory.is_dir():
            return []
        found = (self.load(path.stem) for path in sorted(self.directory.glob("*.json")))
        return [project for project in found if project is not None]

    def find(self, reference: str) -> ProjectKeys | None:
        """Return the local project whose id is ``reference``, or whose saved name is, if exactly one."""
        if reference.isalnum() and (project := self.load(reference)) is not None:
            return project
        named = [project for project in self.all() if project.name == reference]
        return named[0] if len(named) == 1 else None


def _device(data: dict[str, Any], path: Path) -> Device | None:
    try:
        return read_device(data, str(path))
    except KeyFileError as exc:
        raise CliError(str(exc), code="BAD_FILE") from exc


def key_file_fields(
    *,
    api_key: str | None,
    api_url: str,
    project: ProjectKeys,
    agent_name: str | None,
    custom_enc_key: bool = False,
) -> dict[str, Any]:
    """Return the JSON fields of the key file of an agent of ``project`` (with this machine's device, if paired)."""
    fields = keyfile.key_file_fields(
        api_key=api_key,
        api_url=api_url,
        project_id=project.project_id,
        keys=project.keys,
        agent_name=agent_name,
        custom_enc_key=custom_enc_key,
    )
    if project.device is not None:
        fields["device"] = project.device.to_json()
    return fields


def rewrite_key_ring(path: Path, project: ProjectKeys) -> bool:
    """Put the project's current ring (and device) into an existing key file, keeping its other fields.

    Returns:
        False when the file is gone or now belongs to another project (so it is left alone).
    """
    device = project.device.to_json() if project.device else None
    return keyfile.rewrite_key_ring(path, project.project_id, project.keys, device=device)


def export_line(project: ProjectKeys) -> str:
    """Return the one line that carries a project's key ring to another machine."""
    payload = json.dumps({"keys": [encode_key(key) for key in project.keys]}, separators=(",", ":"))
    encoded = base64.urlsafe_b64encode(payload.encode()).decode("ascii").rstrip("=")
    return f"{EXPORT_PREFIX}:{project.project_id}:{encoded}"


def parse_export_line(line: str) -> tuple[str, list[bytes]]:
    """Return the project id and keys (oldest first) of an export line.

    Raises:
        CliError: not a line made by ``nexysync keys export``, or damaged.
    """
    parts = line.strip().split(":")
    if len(parts) != 3 or parts[0] != EXPORT_PREFIX or not parts[1].isalnum():
        raise CliError(
            f"not a key export line: expected {EXPORT_PREFIX}:<project id>:<keys> from `nexysync keys export`",
            code="BAD_EXPORT_LINE",
        )
    _, project_id, encoded = parts
    try:
        payload = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise CliError("the key export line is damaged (was it copied whole?)", code="BAD_EXPORT_LINE") from exc
    keys = payload.get("keys") if isinstance(payload, dict) else None
    if not isinstance(keys, list) or not keys:
        raise CliError("the key export line holds no keys", code="BAD_EXPORT_LINE")
    return project_id, [decode_key(str(text), f"key {i} of the export line") for i, text in enumerate(keys)]


def read_tail_position(key_file: Path) -> int | None:
    """Return the last event id ``nexysync tail`` handled for the agent of ``key_file``, if saved."""
    data = read_json(key_file.parent / TAIL_FILE)
    value = data.get("last_event_id") if data else None
    return value if isinstance(value, int) else None


def write_tail_position(key_file: Path, last_event_id: int) -> None:
    """Save where ``nexysync tail`` stopped, beside the key file, so the next run resumes there."""
    write_json(key_file.parent / TAIL_FILE, {"last_event_id": last_event_id})


def is_private(path: Path) -> bool:
    """Tell whether only the owner may read ``path`` (no group or other permission bits)."""
    return (os.stat(path).st_mode & 0o077) == 0


def agent_key_file(given: str | None, directory: str) -> Path:
    """Return the agent's key file: ``given``, else the nearest ``.nexysync/key`` from ``directory`` upward.

    Raises:
        CliError: no key file (``NO_KEY_FILE``).
    """
    if given:
        return Path(given).expanduser()
    start = Path(directory).expanduser()
    found = keyfile.find_key_file(start)
    if found is None:
        raise CliError(
            f"no .nexysync/key from {start.resolve()} upward: run `nexysync init` in the workspace first",
            code="NO_KEY_FILE",
        )
    return found
