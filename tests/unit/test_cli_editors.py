"""Unit tests of the editor MCP configs written by ``nexysync init``: formats and merging."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nexysync_mcp.cli.editors import EDITORS, claude_command, merge_config
from nexysync_mcp.cli.errors import CliError


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
