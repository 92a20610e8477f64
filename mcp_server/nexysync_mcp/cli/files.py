"""The CLI's config directory, and its JSON files (written private, as key files are: :mod:`nexysync.keyfile`)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nexysync.keyfile import ensure_private_dir, write_json, write_private
from nexysync_mcp.cli.errors import CliError

__all__ = ["ENV_CONFIG_DIR", "config_dir", "ensure_private_dir", "read_json", "write_json", "write_private"]

#: Overrides where the CLI keeps sessions and project keys (tests point it at a temp dir).
ENV_CONFIG_DIR = "NEXYSYNC_CONFIG_DIR"


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
