"""The ``nexysync`` CLI as a real subprocess against a real ``nexysync-server dev``.

A user registers, creates a project, sets up two agents in two workspaces, and the agents talk:
``send`` from one, ``tail`` in the other prints the decrypted message, and the key files work
with the SDK.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from cli_support import PASSWORD, CliProcess, CliProject, provision_project, run_cli, run_json

from nexysync import AuthenticationError, Client, load_key_file
from nexysync_server.store.embedded import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def team(dev_server: Any, tmp_path: Path) -> CliProject:
    """An owner, a project and workspaces for alice and bob, all made with the CLI."""
    return provision_project(dev_server.base_url, tmp_path, write_config="all")


def key_file(project: CliProject, slug: str) -> Path:
    """Return an agent's key file."""
    return project.workspaces[slug] / ".nexysync" / "key"


def test_init_writes_private_key_files_sharing_one_project_key(team: CliProject) -> None:
    alice, bob = key_file(team, "alice"), key_file(team, "bob")
    for path in (alice, bob):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert ".nexysync/" in (path.parent.parent / ".gitignore").read_text().splitlines()
        data = json.loads(path.read_text())
        assert data["project_id"] == team.project_id
        assert data["api_url"] == team.api_url
    a, b = load_key_file(alice, env={}), load_key_file(bob, env={})
    assert a.keys == b.keys and len(a.keys) == 1, "both agents must hold the same project key"
    assert (a.agent_name, b.agent_name) == ("Alice", "Bob")
    vscode = json.loads((team.workspaces["bob"] / ".vscode" / "mcp.json").read_text())
    assert vscode["servers"]["nexysync"]["type"] == "stdio"
    claude = json.loads((team.workspaces["bob"] / ".mcp.json").read_text())
    assert "nexysync" in claude["mcpServers"]


def test_send_from_one_workspace_is_tailed_decrypted_in_the_other(team: CliProject) -> None:
    tail = CliProcess(
        ["tail", "--count", "1", "--timeout", "60"], config_dir=team.config_dir, cwd=team.workspaces["bob"]
    )
    try:
        tail.wait_for_stderr("Listening as bob")
        sent = run_json(
            ["send", "--to", "bob", "--topic", "Deploy", "--payload", "Ship it at 5 pm", "--type", "request"],
            config_dir=team.config_dir,
            cwd=team.workspaces["alice"],
        )
        assert sent["from"] == "alice" and sent["payload"] == "Ship it at 5 pm"
        code, out, err = tail.finish()
    finally:
        tail.kill()
    assert code == 0, err
    assert "alice -> bob (request)" in out
    assert "Deploy" in out and "Ship it at 5 pm" in out
    assert sent["id"] in out
    # Watching is not reading: the message is still unread for bob's agent.
    with Client.from_key_file(team.workspaces["bob"] / ".nexysync" / "key") as bob:
        assert sent["id"] in {m.id for m in bob.messages.list(status="unread")}


def test_send_says_who_is_offline_and_status_shows_each_step(team: CliProject) -> None:
    alice, bob_dir = team.workspaces["alice"], team.workspaces["bob"]
    sent = run_cli(["send", "--to", "bob", "--topic", "t", "--payload", "p"], config_dir=team.config_dir, cwd=alice)
    assert sent.returncode == 0, sent.stderr
    assert "Queued" in sent.stdout and "Offline (will get it when they connect): bob." in sent.stdout
    assert "Sent" not in sent.stdout and "deliver" not in sent.stdout.lower()
    message_id = sent.stdout.split()[1]
    status = run_cli(["status", message_id], config_dir=team.config_dir, cwd=alice)
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[1].split()[:2] == ["bob", "queued"]
    with Client.from_key_file(key_file(team, "bob")) as bob:
        bob.messages.get(message_id)
    waited = run_json(
        ["status", message_id, "--wait", "read", "--timeout", "30"], config_dir=team.config_dir, cwd=bob_dir
    )
    (receipt,) = waited["data"]
    assert receipt["agent"] == "bob" and receipt["state"] == "read" and receipt["read_at"]
    late = run_cli(["status", message_id, "--wait", "acked", "--timeout", "0.5"], config_dir=team.config_dir, cwd=alice)
    assert late.returncode == 1 and "not every copy was acked" in late.stderr
    assert "bob" in late.stderr and "read" in late.stderr


def test_tail_resumes_where_it_stopped(team: CliProject) -> None:
    bob = team.workspaces["bob"]
    # The first run only fixes the position: it times out having seen nothing, exit 0.
    first = run_cli(["tail", "--timeout", "1"], config_dir=team.config_dir, cwd=bob)
    assert first.returncode == 0, first.stderr
    for n in (1, 2):
        run_json(
            ["send", "--to", "bob", "--topic", f"note {n}", "--payload", f"while you were away {n}"],
            config_dir=team.config_dir,
            cwd=team.workspaces["alice"],
        )
    second = run_cli(["tail", "--count", "2", "--timeout", "60", "--json"], config_dir=team.config_dir, cwd=bob)
    assert second.returncode == 0, second.stderr
    events = [json.loads(line) for line in second.stdout.splitlines()]
    assert [event["message"]["payload"] for event in events] == ["while you were away 1", "while you were away 2"]
    assert events[0]["seq"] < events[1]["seq"]
    # Nothing is shown twice: a third run has nothing to catch up on.
    third = run_cli(["tail", "--count", "1", "--timeout", "1"], config_dir=team.config_dir, cwd=bob)
    assert third.returncode == 1
    assert "timed out" in third.stderr and "while you were away" not in third.stdout


def test_key_file_written_by_init_works_with_the_sdk(team: CliProject) -> None:
    with Client.from_key_file(key_file(team, "alice")) as alice:
        sent = alice.messages.send(to="bob", topic="from the SDK", payload="key files interoperate")
    with Client.from_key_file(key_file(team, "bob")) as bob:
        assert bob.get_project_id() == team.project_id
        got = bob.messages.get(sent.id)
    assert (got.from_, got.topic, got.payload) == ("alice", "from the SDK", "key files interoperate")


def test_json_output_of_management_commands_parses(team: CliProject) -> None:
    projects = run_json(["projects", "list"], config_dir=team.config_dir)
    mine = [project for project in projects if project["id"] == team.project_id]
    assert mine and mine[0]["key_on_this_machine"] is True
    agents = run_json(["agents", "list", "--project", team.project_id], config_dir=team.config_dir)
    assert sorted(agent["slug"] for agent in agents) == ["alice", "bob"]
    usage = run_json(["projects", "usage", team.project_name], config_dir=team.config_dir)
    assert usage["agents"] == 2
    who = run_json(["whoami"], config_dir=team.config_dir)
    assert who["email"] == team.email and "access_token" not in who


def test_init_again_rotates_the_agent_key_and_keeps_the_project_key(team: CliProject) -> None:
    path = key_file(team, "alice")
    before = json.loads(path.read_text())
    done = run_cli(
        ["--json", "init", "--project", team.project_id, "--agent", "alice", "--dir", str(team.workspaces["alice"])],
        config_dir=team.config_dir,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["agent_existed"] is True
    assert "already existed" in done.stderr
    after = json.loads(path.read_text())
    assert after["api_key"] != before["api_key"]
    assert after["enc_key"] == before["enc_key"]
    with (
        Client(base_url=team.api_url, api_key=before["api_key"], max_retries=0) as stale,
        pytest.raises(AuthenticationError),
    ):
        stale.me.get()
    with Client.from_key_file(path) as fresh:
        assert fresh.me.get().agent.slug == "alice"


def test_key_rotation_reaches_both_workspaces(team: CliProject) -> None:
    with Client.from_key_file(key_file(team, "alice")) as alice:
        old = alice.messages.send(to="bob", topic="before", payload="old key")
    rotated = run_json(["keys", "rotate", "--project", team.project_name], config_dir=team.config_dir)
    assert sorted(rotated["key_files_updated"]) == sorted(str(key_file(team, slug)) for slug in ("alice", "bob"))
    with Client.from_key_file(key_file(team, "alice")) as alice:
        assert alice.key_ring is not None and alice.key_ring.current_id == rotated["key_id"]
        new = alice.messages.send(to="bob", topic="after", payload="new key")
    with Client.from_key_file(key_file(team, "bob")) as bob:
        assert bob.messages.get(old.id).payload == "old key"
        assert bob.messages.get(new.id).payload == "new key"


def test_wrong_password_is_one_clear_line_and_exit_1(team: CliProject) -> None:
    done = run_cli(
        ["login", "--api-url", team.api_url, "--email", team.email, "--password-file", "-"],
        config_dir=team.config_dir,
        stdin="not-the-password\n",
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("nexysync login: authentication failed")
    assert "Traceback" not in done.stderr
    ok = run_cli(["login", "--email", team.email], config_dir=team.config_dir, env={"NEXYSYNC_PASSWORD": PASSWORD})
    assert ok.returncode == 0, ok.stderr


def test_unknown_project_and_missing_server_are_clear_errors(team: CliProject, tmp_path: Path) -> None:
    done = run_cli(
        ["init", "--project", "no-such-project", "--agent", "carol", "--dir", str(tmp_path)], config_dir=team.config_dir
    )
    assert done.returncode == 1
    assert "no project 'no-such-project'" in done.stderr and team.project_name in done.stderr
    assert not (tmp_path / ".nexysync").exists()
    closed = f"http://127.0.0.1:{free_port()}"
    down = run_cli(
        ["--json", "login", "--api-url", closed, "--email", team.email],
        config_dir=team.config_dir,
        env={"NEXYSYNC_PASSWORD": PASSWORD},
    )
    assert down.returncode == 1
    error = json.loads(down.stderr)["error"]
    assert error["code"] == "CONNECTION_ERROR" and closed in error["message"]


def test_logout_revokes_the_session(team: CliProject) -> None:
    assert run_cli(["logout"], config_dir=team.config_dir).returncode == 0
    done = run_cli(["projects", "list"], config_dir=team.config_dir)
    assert done.returncode == 1
    assert "not signed in" in done.stderr


def test_password_change_sign_out_everywhere_and_account_deletion(team: CliProject, tmp_path: Path) -> None:
    desktop = tmp_path / "desktop"
    old, new = {"NEXYSYNC_PASSWORD": PASSWORD}, {"NEXYSYNC_PASSWORD": "cli-new-password"}
    login = ["login", "--api-url", team.api_url, "--email", team.email]
    assert run_cli(login, config_dir=desktop, env=old).returncode == 0

    wrong = run_cli(["password"], config_dir=team.config_dir, env={**new, "NEXYSYNC_NEW_PASSWORD": "x" * 12})
    assert wrong.returncode == 1 and "password is wrong" in wrong.stderr, wrong.stderr
    changed = run_cli(
        ["password"], config_dir=team.config_dir, env={**old, "NEXYSYNC_NEW_PASSWORD": new["NEXYSYNC_PASSWORD"]}
    )
    assert changed.returncode == 0, changed.stderr
    # This machine keeps a new session; the other one's ended with the change.
    assert run_cli(["projects", "list"], config_dir=team.config_dir).returncode == 0
    ended = run_cli(["projects", "list"], config_dir=desktop)
    assert ended.returncode == 1 and "nexysync login" in ended.stderr, ended.stderr

    assert run_cli(login, config_dir=desktop, env=new).returncode == 0
    everywhere = run_cli(["logout", "--all"], config_dir=desktop)
    assert everywhere.returncode == 0, everywhere.stderr
    assert run_cli(["projects", "list"], config_dir=team.config_dir).returncode == 1
    assert run_cli(["projects", "list"], config_dir=desktop).returncode == 1

    assert run_cli(login, config_dir=desktop, env=new).returncode == 0
    refused = run_cli(["delete-account", "--yes"], config_dir=desktop, env=old)
    assert refused.returncode == 1 and "password is wrong" in refused.stderr, refused.stderr
    unconfirmed = run_cli(["delete-account"], config_dir=desktop, env=new)
    assert unconfirmed.returncode == 1 and "--yes" in unconfirmed.stderr
    deleted = run_cli(["delete-account", "--yes"], config_dir=desktop, env=new)
    assert deleted.returncode == 0, deleted.stderr
    assert run_cli(login, config_dir=desktop, env=new).returncode == 1
    with pytest.raises(AuthenticationError), Client.from_key_file(key_file(team, "bob")) as bob:
        bob.me.get()  # the project went with the account, and its agents with it


def test_a_second_machine_needs_the_exported_key(team: CliProject, tmp_path: Path) -> None:
    other = tmp_path / "other-machine"
    password_file = tmp_path / "password.txt"
    password_file.write_text(PASSWORD + "\n")
    login = run_cli(
        ["login", "--api-url", team.api_url, "--email", team.email, "--password-file", str(password_file)],
        config_dir=other,
    )
    assert login.returncode == 0, login.stderr
    carol = tmp_path / "carol"
    carol.mkdir()
    init = ["init", "--project", team.project_id, "--agent", "carol", "--dir", str(carol)]
    refused = run_cli(init, config_dir=other)
    assert refused.returncode == 1
    assert "keys export" in refused.stderr and not (carol / ".nexysync").exists()

    line = run_json(["keys", "export", "--project", team.project_name], config_dir=team.config_dir)["line"]
    imported = run_cli(["keys", "import"], config_dir=other, stdin=line + "\n")
    assert imported.returncode == 0, imported.stderr
    assert run_cli(init, config_dir=other).returncode == 0
    assert load_key_file(carol / ".nexysync" / "key", env={}).keys == load_key_file(key_file(team, "bob"), env={}).keys
    with Client.from_key_file(key_file(team, "bob")) as bob:
        sent = bob.messages.send(to="carol", topic="welcome", payload="you can read this")
    with Client.from_key_file(carol / ".nexysync" / "key") as client:
        assert client.messages.get(sent.id).payload == "you can read this"
