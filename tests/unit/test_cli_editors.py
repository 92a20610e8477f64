"""Unit tests of the editor MCP configs written by ``nexysync init``: formats and merging."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import pytest

from nexysync_cli.editors import EDITORS, claude_command, installed, merge_config
from nexysync_cli.errors import CliError
from nexysync_cli.hooksetup import CLAUDE_SETTINGS, CODEX_HOOKS, merge_codex_config, merge_hooks


def read(path: Path) -> dict:
    """Return the JSON in a config file."""
    return json.loads(path.read_text())


def test_claude_config_uses_mcp_servers(tmp_path: Path) -> None:
    change = merge_config(tmp_path, EDITORS["claude"])
    assert (change.action, change.path) == ("created", tmp_path / ".mcp.json")
    server = read(change.path)["mcpServers"]["nexysync"]
    assert server["command"] == "nexysync-mcp"
    assert server["args"] == []
    assert claude_command() == "claude mcp add nexysync -- nexysync-mcp"


def test_cursor_config_is_in_the_cursor_folder(tmp_path: Path) -> None:
    change = merge_config(tmp_path, EDITORS["cursor"])
    assert change.path == tmp_path / ".cursor" / "mcp.json"
    server = read(change.path)["mcpServers"]["nexysync"]
    assert server == {"command": "nexysync-mcp", "args": ["--key-file", "${workspaceFolder}/.nexysync/key"]}


def test_vscode_config_uses_servers_with_stdio_type(tmp_path: Path) -> None:
    change = merge_config(tmp_path, EDITORS["vscode"])
    assert change.path == tmp_path / ".vscode" / "mcp.json"
    data = read(change.path)
    assert "mcpServers" not in data
    assert data["servers"]["nexysync"]["type"] == "stdio"
    assert data["servers"]["nexysync"]["command"] == "nexysync-mcp"
    assert data["servers"]["nexysync"]["args"] == ["--key-file", "${workspaceFolder}/.nexysync/key"]


@pytest.mark.parametrize("editor", sorted(EDITORS))
def test_merge_keeps_other_servers_and_settings(tmp_path: Path, editor: str) -> None:
    spec = EDITORS[editor]
    path = tmp_path / spec.relative_path
    path.parent.mkdir(parents=True, exist_ok=True)
    other = {"command": "other-mcp", "args": ["--flag"]}
    path.write_text(json.dumps({spec.servers_key: {"other": other}, "inputs": [{"id": "token"}]}))
    change = merge_config(tmp_path, spec)
    assert change.action == "added"
    data = read(path)
    assert data[spec.servers_key]["other"] == other
    assert data["inputs"] == [{"id": "token"}]
    assert data[spec.servers_key]["nexysync"] == spec.entry()
    assert merge_config(tmp_path, spec).action == "unchanged"
    assert read(path) == data


@pytest.mark.parametrize("editor", sorted(EDITORS))
def test_merge_updates_an_outdated_entry(tmp_path: Path, editor: str) -> None:
    spec = EDITORS[editor]
    merge_config(tmp_path, spec)
    change = merge_config(tmp_path, spec, command="/opt/venv/bin/nexysync-mcp")
    assert change.action == "updated"
    assert read(change.path)[spec.servers_key]["nexysync"]["command"] == "/opt/venv/bin/nexysync-mcp"


def test_a_file_that_is_not_json_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / ".vscode" / "mcp.json"
    path.parent.mkdir()
    text = '{\n  // my servers\n  "servers": {}\n}\n'
    path.write_text(text)
    with pytest.raises(CliError) as caught:
        merge_config(tmp_path, EDITORS["vscode"])
    assert '"servers"' in caught.value.message, "the error should show what to paste"
    assert path.read_text() == text


def test_configs_hold_no_secret(tmp_path: Path) -> None:
    for spec in EDITORS.values():
        text = merge_config(tmp_path, spec).path.read_text()
        assert "nsync_" not in text and "enc_key" not in text


def test_installed_commands_are_named_by_absolute_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    beside = installed("nexysync-mcp", "nexysync_mcp")
    assert len(beside) == 1 and Path(beside[0]).is_absolute() and Path(beside[0]).is_file()
    # Nowhere to be found: this interpreter runs the module.
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python3"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert installed("nexysync-mcp", "nexysync_mcp") == (str(tmp_path / "python3"), "-m", "nexysync_mcp")
    entry = EDITORS["vscode"].entry(("/usr/bin/python3", "-m", "nexysync_mcp"))
    assert entry["command"] == "/usr/bin/python3"
    assert entry["args"] == ["-m", "nexysync_mcp", "--key-file", "${workspaceFolder}/.nexysync/key"]
    assert claude_command(("/opt/my env/python", "-m", "nexysync_mcp")) == (
        "claude mcp add nexysync -- '/opt/my env/python' -m nexysync_mcp"
    )


def test_hooks_merge_into_claude_settings_keeping_everything_else(tmp_path: Path) -> None:
    settings = tmp_path / ".claude" / "settings.json"
    settings.parent.mkdir()
    lint = {"type": "command", "command": "./lint.sh"}
    settings.write_text(
        json.dumps(
            {
                "permissions": {"allow": ["Bash(ls)"]},
                "hooks": {"Stop": [{"hooks": [lint]}], "PreToolUse": [{"matcher": "Bash", "hooks": [lint]}]},
            }
        )
    )
    launch = ("/venv/bin/nexysync",)
    assert merge_hooks(tmp_path, CLAUDE_SETTINGS, launch, "claude").action == "updated"
    data = read(settings)
    assert data["permissions"] == {"allow": ["Bash(ls)"]}
    assert data["hooks"]["PreToolUse"] == [{"matcher": "Bash", "hooks": [lint]}]
    assert data["hooks"]["Stop"] == [
        {"hooks": [lint]},
        {"hooks": [{"type": "command", "command": "/venv/bin/nexysync hook stop", "timeout": 10}]},
    ]
    assert data["hooks"]["UserPromptSubmit"][0]["hooks"][0]["command"] == "/venv/bin/nexysync hook user-prompt-submit"
    assert merge_hooks(tmp_path, CLAUDE_SETTINGS, launch, "claude").action == "unchanged"
    # A new installation's path replaces the old hook instead of adding a second one.
    merge_hooks(tmp_path, CLAUDE_SETTINGS, ("/other/nexysync",), "claude")
    stops = [h["command"] for g in read(settings)["hooks"]["Stop"] for h in g["hooks"]]
    assert stops == ["./lint.sh", "/other/nexysync hook stop"]
    settings.write_text("[1, 2]")
    with pytest.raises(CliError, match="expected an object"):
        merge_hooks(tmp_path, CLAUDE_SETTINGS, launch, "claude")


def test_codex_gets_its_mcp_server_hooks_and_feature_flag(tmp_path: Path) -> None:
    config = tmp_path / ".codex" / "config.toml"
    config.parent.mkdir()
    config.write_text('model = "o4"\n\n[mcp_servers.other]\ncommand = "other"\n\n[features]\nweb_search = true\n')
    change = merge_codex_config(tmp_path, ("/venv/bin/nexysync-mcp",), hooks=True)
    assert change.action == "updated"
    data = tomllib.loads(config.read_text())
    assert data["model"] == "o4" and data["mcp_servers"]["other"] == {"command": "other"}
    assert data["mcp_servers"]["nexysync"] == {
        "command": "/venv/bin/nexysync-mcp",
        "args": ["--key-file", str(tmp_path / ".nexysync" / "key")],
    }
    assert data["features"] == {"web_search": True, "codex_hooks": True}
    assert merge_codex_config(tmp_path, ("/venv/bin/nexysync-mcp",), hooks=True).action == "unchanged"
    merge_codex_config(tmp_path, ("/new/nexysync-mcp",), hooks=False)
    data = tomllib.loads(config.read_text())
    assert data["mcp_servers"]["nexysync"]["command"] == "/new/nexysync-mcp" and data["features"]["codex_hooks"]
    assert merge_hooks(tmp_path, CODEX_HOOKS, ("/venv/bin/nexysync",), "codex").action == "created"
    assert read(tmp_path / CODEX_HOOKS)["hooks"]["Stop"][0]["hooks"][0]["command"] == "/venv/bin/nexysync hook stop"
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    assert merge_codex_config(fresh, ("nexysync-mcp",), hooks=True).action == "created"
    assert tomllib.loads((fresh / ".codex" / "config.toml").read_text())["features"] == {"codex_hooks": True}
    config.write_text("[features]\ncodex_hooks = false\n")
    with pytest.raises(CliError, match="codex_hooks = true"):
        merge_codex_config(tmp_path, ("x",), hooks=True)
