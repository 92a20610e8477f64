"""Unit tests of the ``nexysync`` CLI's key handling: key files, .gitignore, export/import, rotation."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
from pathlib import Path

import pytest

from nexysync import load_key_file
from nexysync.crypto import KeyRing, key_id
from nexysync_cli.errors import CliError
from nexysync_cli.keyfiles import (
    ProjectKeys,
    ProjectKeyStore,
    add_to_gitignore,
    export_line,
    key_file_fields,
    merge_rings,
    parse_export_line,
    write_key_file,
)
from nexysync_cli.main import main

PROJECT = "01KQ7P" + "0" * 20
OLD = bytes(range(32))
NEWER = bytes(range(1, 33))


# Every test runs against a config dir of its own (the ``isolated`` fixture of conftest.py).
pytestmark = pytest.mark.usefixtures("isolated")


def mode(path: Path) -> int:
    """Return the permission bits of a file or directory."""
    return stat.S_IMODE(path.stat().st_mode)


def provisioned(config: Path, workspace: Path, keys: list[bytes]) -> tuple[ProjectKeys, Path]:
    """Save a project's keys as ``init`` does and write one registered key file for it."""
    project = ProjectKeys(PROJECT, list(keys), name="demo", api_url="http://api.test")
    fields = key_file_fields(
        api_key="nsync_alice_" + "a" * 40, api_url="http://api.test", project=project, agent_name="Alice"
    )
    path = write_key_file(workspace, fields)
    project.key_files.append(str(path))
    ProjectKeyStore(config).save(project)
    return project, path


def test_key_file_is_private_and_the_sdk_reads_it(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (workspace / ".nexysync").mkdir(parents=True, mode=0o755)
    os.chmod(workspace / ".nexysync", 0o755)
    project = ProjectKeys(PROJECT, [OLD])
    old_umask = os.umask(0)
    try:
        path = write_key_file(
            workspace,
            key_file_fields(
                api_key="nsync_bob_" + "b" * 40, api_url="http://api.test", project=project, agent_name="Bob"
            ),
        )
    finally:
        os.umask(old_umask)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    data = json.loads(path.read_text())
    assert set(data) == {"api_key", "enc_key", "agent_name", "custom_enc_key", "api_url", "project_id", "keyring"}
    loaded = load_key_file(path, env={})
    assert loaded.keys == (OLD,)
    assert (loaded.project_id, loaded.agent_name, loaded.api_url) == (PROJECT, "Bob", "http://api.test")
    assert not list(path.parent.glob(".*.tmp")), "the atomic write left its temporary file behind"


def test_project_keys_file_is_private(isolated: Path) -> None:
    store = ProjectKeyStore(isolated)
    made = store.create(PROJECT, name="demo", api_url="http://api.test")
    path = store.path(PROJECT)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert mode(isolated) == 0o700
    assert store.load(PROJECT) == made
    assert len(made.current) == 32
    assert store.find("demo") == made


def test_gitignore_is_created_then_left_alone(tmp_path: Path) -> None:
    assert add_to_gitignore(tmp_path) is True
    first = (tmp_path / ".gitignore").read_text()
    assert ".nexysync/" in first.splitlines()
    assert add_to_gitignore(tmp_path) is False
    assert (tmp_path / ".gitignore").read_text() == first


def test_gitignore_entry_is_appended_once_on_its_own_line(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("node_modules/\n*.pyc")
    assert add_to_gitignore(tmp_path) is True
    assert add_to_gitignore(tmp_path) is False
    lines = (tmp_path / ".gitignore").read_text().splitlines()
    assert lines[:2] == ["node_modules/", "*.pyc"]
    assert lines.count(".nexysync/") == 1


@pytest.mark.parametrize("spelling", [".nexysync", "/.nexysync/", ".nexysync/"])
def test_gitignore_with_an_existing_entry_is_unchanged(tmp_path: Path, spelling: str) -> None:
    (tmp_path / ".gitignore").write_text(f"build/\n{spelling}\n")
    assert add_to_gitignore(tmp_path) is False
    assert (tmp_path / ".gitignore").read_text() == f"build/\n{spelling}\n"


def test_export_line_round_trip() -> None:
    line = export_line(ProjectKeys(PROJECT, [OLD, NEWER]))
    assert line.startswith(f"nsk1:{PROJECT}:")
    assert "\n" not in line and "=" not in line
    assert parse_export_line(f"  {line}\n") == (PROJECT, [OLD, NEWER])


@pytest.mark.parametrize(
    "line",
    ["", "hello", f"nsk2:{PROJECT}:e30", f"nsk1:{PROJECT}:!!!", f"nsk1:{PROJECT}:e30", "nsk1:a/b:e30"],
)
def test_bad_export_lines_are_refused(line: str) -> None:
    with pytest.raises(CliError):
        parse_export_line(line)


def test_merged_ring_keeps_local_keys_as_older() -> None:
    local_only = bytes(range(2, 34))
    assert merge_rings([local_only, OLD], [OLD, NEWER]) == [local_only, OLD, NEWER]
    assert merge_rings([OLD, NEWER], [OLD, NEWER]) == [OLD, NEWER]


def test_keys_export_import_round_trip_through_the_cli(
    isolated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    provisioned(isolated, tmp_path / "ws", [OLD, NEWER])
    assert main(["keys", "export", "--project", "demo"]) == 0
    line = capsys.readouterr().out.strip()
    # The other machine: a config dir of its own, which knows nothing of the project yet.
    other = tmp_path / "other-machine"
    monkeypatch.setenv("NEXYSYNC_CONFIG_DIR", str(other))
    monkeypatch.setattr("sys.stdin", io.StringIO(line + "\n"))
    assert main(["keys", "import", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["project_id"] == PROJECT
    assert result["key_ids"] == [key_id(OLD), key_id(NEWER)]
    imported = ProjectKeyStore(other).load(PROJECT)
    assert imported is not None and imported.keys == [OLD, NEWER]
    assert mode(ProjectKeyStore(other).path(PROJECT)) == 0o600


def test_keys_import_reads_the_line_from_stdin(
    isolated: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(export_line(ProjectKeys(PROJECT, [OLD])) + "\n"))
    assert main(["keys", "import", "-"]) == 0
    assert ProjectKeyStore(isolated).load(PROJECT) == ProjectKeys(PROJECT, [OLD])


def test_rotate_adds_a_newest_key_that_the_sdk_encrypts_with(
    isolated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = provisioned(isolated, tmp_path / "ws", [OLD])
    before = KeyRing(load_key_file(path, env={}).keys)
    sealed_before = before.encrypt(b"old secret", project_id=PROJECT, kind="message", record_id="m1", field="payload")

    assert main(["keys", "rotate", "--project", PROJECT, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["key_files_updated"] == [str(path)]

    loaded = load_key_file(path, env={})
    assert len(loaded.keys) == 2
    assert loaded.keys[0] == OLD, "the old key must stay in the ring, oldest first"
    new = loaded.keys[-1]
    assert new != OLD and result["key_id"] == key_id(new)
    ring = loaded.key_ring()
    assert ring.current_id == key_id(new)
    sealed_after = ring.encrypt(b"new secret", project_id=PROJECT, kind="message", record_id="m2", field="payload")
    assert sealed_after.split(".")[1] == key_id(new)
    # The rotated ring still reads what the old key wrote, and the new envelope reads back.
    assert (
        ring.decrypt(sealed_before, project_id=PROJECT, kind="message", record_id="m1", field="payload")
        == b"old secret"
    )
    assert (
        ring.decrypt(sealed_after, project_id=PROJECT, kind="message", record_id="m2", field="payload") == b"new secret"
    )
    data = json.loads(path.read_text())
    assert data["enc_key"] == base64.b64encode(new).decode()
    assert data["api_key"].startswith("nsync_alice_"), "rotation must keep the key file's other fields"
    assert mode(path) == 0o600
    stored = ProjectKeyStore(isolated).load(PROJECT)
    assert stored is not None and stored.keys == [OLD, new]


def test_rotate_drops_key_files_that_are_gone(
    isolated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = provisioned(isolated, tmp_path / "ws", [OLD])
    path.unlink()
    assert main(["keys", "rotate", "--project", PROJECT]) == 0
    captured = capsys.readouterr()
    assert "no longer tracked" in captured.err
    stored = ProjectKeyStore(isolated).load(PROJECT)
    assert stored is not None and stored.key_files == []


def test_import_updates_the_key_files_of_a_known_project(
    isolated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = provisioned(isolated, tmp_path / "ws", [OLD])
    line_file = tmp_path / "line.txt"
    line_file.write_text(export_line(ProjectKeys(PROJECT, [OLD, NEWER])) + "\n")
    assert main(["keys", "import", "--file", str(line_file)]) == 0
    capsys.readouterr()
    assert load_key_file(path, env={}).keys == (OLD, NEWER)


def test_export_of_an_unknown_project_without_session_is_one_line_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["keys", "export", "--project", "nowhere"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("nexysync keys export: not signed in")
