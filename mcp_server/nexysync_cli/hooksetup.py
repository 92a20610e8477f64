"""Hooks and Codex: ``nexysync hook ...`` merged into Claude Code's and Codex's project settings.

- Claude Code: ``.claude/settings.json``, ``hooks.UserPromptSubmit`` and ``hooks.Stop``, each a
  matcher group holding one ``{"type": "command", "command": ..., "timeout": ...}``.
- Codex: the same shape in ``.codex/hooks.json``; hooks need ``[features] codex_hooks = true``
  and the MCP server is ``[mcp_servers.nexysync]``, both in ``.codex/config.toml``.

Everything else in those files is kept; a nexysync hook already there is replaced, not doubled.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

from nexysync_cli.editors import SERVER_NAME, ConfigChange, Launch
from nexysync_cli.errors import CliError

__all__ = ["CLAUDE_SETTINGS", "CODEX_CONFIG", "CODEX_HOOKS", "hook_entries", "merge_codex_config", "merge_hooks"]

CLAUDE_SETTINGS = ".claude/settings.json"
CODEX_HOOKS = ".codex/hooks.json"
CODEX_CONFIG = ".codex/config.toml"
#: Seconds the AI tool gives a hook; the quiet path takes one HTTP call.
HOOK_TIMEOUT_S = 10
EVENTS = {"UserPromptSubmit": "user-prompt-submit", "Stop": "stop"}


def hook_entries(launch: Launch) -> dict[str, str]:
    """Return the shell command of each hook event, starting ``nexysync`` as ``launch`` does."""
    return {event: shlex.join([*launch, "hook", name]) for event, name in EVENTS.items()}


def _ours(handler: Any, name: str) -> bool:
    """Tell whether a hook handler is a nexysync hook for ``name`` (written by any earlier init)."""
    command = handler.get("command", "") if isinstance(handler, dict) else ""
    return isinstance(command, str) and "nexysync" in command and command.endswith(f"hook {name}")


def _read_object(path: Path, what: str) -> dict[str, Any] | None:
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return None
    if not text.strip():
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CliError(
            f"cannot merge into {path}: it is not plain JSON ({exc.args[0]})", code="EDITOR_CONFIG_UNREADABLE"
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("hooks", {}), dict):
        raise CliError(
            f"cannot merge into {path}: expected an object with an object {what!r}", code="EDITOR_CONFIG_UNREADABLE"
        )
    return data


def merge_hooks(workspace: Path, relative_path: str, launch: Launch, tool: str) -> ConfigChange:
    """Add (or update) the nexysync prompt and stop hooks in a hooks file, keeping everything else.

    Raises:
        CliError: the file exists but is not a JSON object with an object ``hooks``.
    """
    path = workspace / relative_path
    loaded = _read_object(path, "hooks")
    data: dict[str, Any] = loaded if loaded is not None else {}
    before = json.dumps(data, sort_keys=True)
    hooks = data.setdefault("hooks", {})
    for event, command in hook_entries(launch).items():
        groups = hooks.get(event)
        groups = [g for g in groups if isinstance(g, dict)] if isinstance(groups, list) else []
        kept = []
        for group in groups:
            handlers = group.get("hooks")
            if isinstance(handlers, list):
                group = {**group, "hooks": [h for h in handlers if not _ours(h, EVENTS[event])]}
                if not group["hooks"]:
                    continue
            kept.append(group)
        kept.append({"hooks": [{"type": "command", "command": command, "timeout": HOOK_TIMEOUT_S}]})
        hooks[event] = kept
    if loaded is not None and json.dumps(data, sort_keys=True) == before:
        return ConfigChange(tool, path, "unchanged")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return ConfigChange(tool, path, "created" if loaded is None else "updated")


def _toml_value(value: str | list[str]) -> str:
    # A JSON string is a valid TOML basic string (same escapes), and so is a list of them.
    return json.dumps(value)


def _replace_table(text: str, header: str, body: str) -> str:
    """Return ``text`` with the TOML table ``[header]`` set to ``body`` (appended when absent)."""
    pattern = re.compile(rf"^\[{re.escape(header)}\][ \t]*\n(?:(?!\[).*\n?)*", re.MULTILINE)
    block = f"[{header}]\n{body}"
    if pattern.search(text):
        return pattern.sub(lambda _: block + "\n", text, count=1)
    return (text.rstrip("\n") + "\n\n" if text.strip() else "") + block


def merge_codex_config(workspace: Path, mcp_launch: Launch, *, hooks: bool) -> ConfigChange:
    """Set ``[mcp_servers.nexysync]`` (and with ``hooks`` the ``codex_hooks`` feature) in ``.codex/config.toml``.

    Raises:
        CliError: the file is not valid TOML, or ``[features]`` holds ``codex_hooks = false``.
    """
    path = workspace / CODEX_CONFIG
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        text = ""
    try:
        current = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CliError(
            f"cannot merge into {path}: it is not valid TOML ({exc})", code="EDITOR_CONFIG_UNREADABLE"
        ) from exc
    program, *lead = mcp_launch
    # Codex does not say which directory it starts servers in: the key file is named in full.
    args = [*lead, "--key-file", str(workspace / ".nexysync" / "key")]
    wanted = {"command": program, "args": args}
    updated = text
    if current.get("mcp_servers", {}).get(SERVER_NAME) != wanted:
        body = f"command = {_toml_value(program)}\nargs = {_toml_value(args)}\n"
        updated = _replace_table(updated, f"mcp_servers.{SERVER_NAME}", body)
    features = current.get("features", {})
    if hooks and features.get("codex_hooks") is not True:
        if "codex_hooks" in features or ("features" in current and not re.search(r"^\[features\]", text, re.MULTILINE)):
            raise CliError(
                f"set codex_hooks = true under [features] in {path} yourself", code="EDITOR_CONFIG_UNREADABLE"
            )
        if "features" in current:
            updated = re.sub(r"^\[features\][ \t]*\n", "[features]\ncodex_hooks = true\n", updated, count=1, flags=re.M)
        else:
            updated = _replace_table(updated, "features", "codex_hooks = true\n")
    if updated == text:
        return ConfigChange("codex", path, "unchanged")
    tomllib.loads(updated)  # never leave a file Codex cannot read
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(updated if updated.endswith("\n") else updated + "\n", encoding="utf-8")
    return ConfigChange("codex", path, "created" if not text else "updated")
