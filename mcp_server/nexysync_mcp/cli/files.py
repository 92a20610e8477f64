"""Private files: the CLI's config directory and atomic writes readable only by their owner."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nexysync_mcp.cli.errors import CliError

__all__ = ["ENV_CONFIG_DIR", "config_dir", "ensure_private_dir", "read_json", "write_json", "write_private"]

#: Overrides where the CLI keeps sessions and project keys (tests point it at a temp dir).
ENV_CONFIG_DIR = "NEXYSYNC_CONFIG_DIR"
FILE_MODE = 0o600
DIR_MODE = 0o700


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return the CLI's config directory (not created).

    ``$NEXYSYNC_CONFIG_DIR`` when set, else ``$XDG_CONFIG_HOME/nexysync``, else
    ``~/.config/nexysync``.
    """
    env = os.environ if environ is None else environ
    if env.get(ENV_CONFIG_DIR):
        return Path(env[ENV_CONFIG_DIR]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "nexysync"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make it ``0700``; return it."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    # mkdir's mode is filtered by the umask and ignored for a directory that already exists.
    os.chmod(path, DIR_MODE)
    return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically with mode ``0600`` (the directory must exist).

    The file is created ``0600`` from the start and renamed over the old one, so no reader ever
    sees a half-written key file and the secret is never readable by others, not even briefly.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    """Return the JSON object in ``path``, or None when the file does not exist.

    Raises:
        CliError: the file is not a JSON object.
    """
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CliError(f"{path} is not valid JSON ({exc}); fix or remove it", code="BAD_FILE") from exc
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold a JSON object; fix or remove it", code="BAD_FILE")
    return data


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as indented JSON to ``path`` with mode ``0600``, creating a ``0700`` parent."""
    ensure_private_dir(path.parent)
    write_private(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
