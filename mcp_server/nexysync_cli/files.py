"""The CLI's JSON files, in its config directory and written private as key files are (:mod:`nexysync.keyfile`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nexysync.keyfile import ENV_CONFIG_DIR, config_dir, ensure_private_dir, write_json, write_private
from nexysync_cli.errors import CliError

__all__ = ["ENV_CONFIG_DIR", "config_dir", "ensure_private_dir", "read_json", "write_json", "write_private"]


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
