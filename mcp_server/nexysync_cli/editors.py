"""MCP configuration for the editors: Claude Code, Cursor and VS Code, merged into existing files.

Each editor launches ``nexysync-mcp`` for the workspace and it reads ``.nexysync/key`` there. The
configs hold no secret (the key stays in the git-ignored key file), so they may be committed.

- Claude Code: ``.mcp.json`` with ``mcpServers`` (or ``claude mcp add nexysync -- nexysync-mcp``).
- Cursor: ``.cursor/mcp.json`` with ``mcpServers``; ``--key-file ${workspaceFolder}/.nexysync/key``.
- VS Code: ``.vscode/mcp.json`` with ``servers``, each with ``"type": "stdio"``; the same key file.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nexysync_cli.errors import CliError

__all__ = [
    "EDITORS",
    "SERVER_NAME",
    "ConfigChange",
    "Editor",
    "Launch",
    "claude_command",
    "installed",
    "merge_config",
    "snippet",
]

#: The name the MCP server is registered under in every editor.
SERVER_NAME = "nexysync"
DEFAULT_COMMAND = "nexysync-mcp"
#: The key file as the editors that expand ``${workspaceFolder}`` name it.
WORKSPACE_KEY_FILE = "${workspaceFolder}/.nexysync/key"

#: How a program is started: the executable, then any leading arguments (``python -m ...``).
Launch = tuple[str, ...]


def _launch(command: str | Sequence[str]) -> Launch:
    return (command,) if isinstance(command, str) else tuple(command)


def installed(script: str, module: str) -> Launch:
    """Return how to start one of this installation's commands from any environment, by absolute path.

    An editor started outside the virtualenv has another PATH, so a bare ``nexysync-mcp`` would
    not start there (and the user sees nothing). The script beside this interpreter comes
    first (the same installation as this CLI), then one on PATH, then this interpreter running
    the module.
    """
    beside = Path(sys.executable).with_name(script)
    if beside.is_file():
        return (str(beside),)
    found = shutil.which(script)
    if found is not None:
        return (str(Path(found).absolute()),)
    return (sys.executable, "-m", module)


@dataclass(frozen=True)
class Editor:
    """Where and how one editor reads its project MCP servers.

    Attributes:
        name: The ``--write-config`` choice.
        title: The editor's name for people.
        relative_path: The config file, relative to the workspace.
        servers_key: The top-level key holding the servers.
    """

    name: str
    title: str
    relative_path: str
    servers_key: str

    def entry(self, command: str | Sequence[str] = DEFAULT_COMMAND) -> dict[str, Any]:
        """Return this editor's server entry for ``nexysync-mcp`` (``command``: a path, or a launch tuple)."""
        program, *lead = _launch(command)
        # Cursor and VS Code do not promise to start servers in the workspace, but both expand
        # ${workspaceFolder}; Claude Code starts them in the project directory, where
        # nexysync-mcp finds .nexysync/key by itself.
        key_file = [*lead, "--key-file", WORKSPACE_KEY_FILE]
        if self.name == "vscode":
            return {"type": "stdio", "command": program, "args": key_file}
        if self.name == "cursor":
            return {"command": program, "args": key_file}
        return {"type": "stdio", "command": program, "args": lead, "env": {}}


EDITORS: dict[str, Editor] = {
    "claude": Editor("claude", "Claude Code", ".mcp.json", "mcpServers"),
    "cursor": Editor("cursor", "Cursor", ".cursor/mcp.json", "mcpServers"),
    "vscode": Editor("vscode", "VS Code", ".vscode/mcp.json", "servers"),
}


@dataclass(frozen=True)
class ConfigChange:
    """What :func:`merge_config` did to one file.

    Attributes:
        editor: The editor's ``--write-config`` name.
        path: The config file.
        action: ``created``, ``added``, ``updated`` or ``unchanged``.
    """

    editor: str
    path: Path
    action: str


def snippet(editor: Editor, command: str | Sequence[str] = DEFAULT_COMMAND) -> str:
    """Return the JSON a user would paste into the editor's config file."""
    return json.dumps({editor.servers_key: {SERVER_NAME: editor.entry(command)}}, indent=2)


def claude_command(command: str | Sequence[str] = DEFAULT_COMMAND) -> str:
    """Return the Claude Code command line that registers the server for this workspace."""
    return f"claude mcp add {SERVER_NAME} -- {shlex.join(_launch(command))}"


def merge_config(workspace: Path, editor: Editor, command: str | Sequence[str] = DEFAULT_COMMAND) -> ConfigChange:
    """Add (or update) the ``nexysync`` server in an editor's config file, keeping everything else.

    Raises:
        CliError: the file exists but is not a JSON object (VS Code allows comments, which this
            does not parse): nothing is written, and the message says what to paste instead.
    """
    path = workspace / editor.relative_path
    entry = editor.entry(command)
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        text = None
    if text is None or not text.strip():
        data: dict[str, Any] = {}
        action = "created"
    else:
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            raise CliError(
                f"cannot merge into {path}: it is not plain JSON ({exc.args[0]}); add this yourself:\n"
                f"{snippet(editor, command)}",
                code="EDITOR_CONFIG_UNREADABLE",
            ) from exc
        if not isinstance(loaded, dict) or not isinstance(loaded.get(editor.servers_key, {}), dict):
            raise CliError(
                f"cannot merge into {path}: expected an object with an object {editor.servers_key!r}",
                code="EDITOR_CONFIG_UNREADABLE",
            )
        data = loaded
        servers = data.get(editor.servers_key, {})
        if servers.get(SERVER_NAME) == entry:
            return ConfigChange(editor.name, path, "unchanged")
        action = "updated" if SERVER_NAME in servers else "added"
    data.setdefault(editor.servers_key, {})[SERVER_NAME] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return ConfigChange(editor.name, path, action)
