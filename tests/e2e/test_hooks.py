"""``nexysync hook`` as Claude Code runs it: the command ``init --hooks`` wrote, fed Claude Code's JSON on stdin."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cli_support import CliProject, cli_env, provision_project, run_cli

from hostile_text import CORPUS, FORBIDDEN_CHARACTERS, FORBIDDEN_TAGS
from nexysync import Client

pytestmark = pytest.mark.e2e


@pytest.fixture
def team(dev_server: Any, tmp_path: Path) -> CliProject:
    """alice and bob, set up with ``nexysync init --write-config claude --hooks``."""
    return provision_project(dev_server.base_url, tmp_path, write_config="claude", hooks=True)


def hook_command(workspace: Path, event: str) -> str:
    """Return the shell command ``init`` wrote for ``event`` in the workspace's ``.claude/settings.json``."""
    settings = json.loads((workspace / ".claude" / "settings.json").read_text())
    ((handler,),) = [group["hooks"] for group in settings["hooks"][event]]
    assert handler["type"] == "command" and handler["timeout"] > 0
    return handler["command"]


def run_hook(team: CliProject, slug: str, event: str, **fields: Any) -> tuple[dict[str, Any] | None, float]:
    """Run the hook as Claude Code does (a shell, its JSON on stdin); return its JSON output and seconds taken."""
    workspace = team.workspaces[slug]
    payload = {
        "session_id": "3f1c2d4e-0000-4000-8000-000000000000",
        "transcript_path": str(workspace / "transcript.jsonl"),
        "cwd": str(workspace),
        "permission_mode": "default",
        "hook_event_name": event,
        **fields,
    }
    started = time.perf_counter()
    done = subprocess.run(
        hook_command(workspace, event),
        shell=True,
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        # Not the workspace: the hook finds the key file from the JSON's cwd.
        cwd=team.config_dir.parent,
        env=cli_env(team.config_dir),
        timeout=60,
        check=False,
    )
    took = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    return (json.loads(done.stdout) if done.stdout.strip() else None), took


def test_init_writes_hooks_beside_other_settings_and_names_the_installed_commands(team: CliProject) -> None:
    workspace = team.workspaces["bob"]
    assert hook_command(workspace, "UserPromptSubmit").endswith("hook user-prompt-submit")
    assert hook_command(workspace, "Stop").endswith("hook stop")
    assert Path(hook_command(workspace, "Stop").split()[0]).is_absolute()
    server = json.loads((workspace / ".mcp.json").read_text())["mcpServers"]["nexysync"]
    assert Path(server["command"]).is_absolute() and Path(server["command"]).exists()


def test_the_prompt_hook_adds_new_messages_once_and_marks_them_delivered(team: CliProject) -> None:
    quiet, took = run_hook(team, "bob", "UserPromptSubmit", prompt="hello")
    print(f"user-prompt-submit with nothing new: {1000 * took:.0f} ms (process start included)")
    assert quiet is None
    with Client.from_key_file(team.workspaces["alice"] / ".nexysync" / "key") as alice:
        first = alice.messages.send("bob", topic="Schema", payload="Add users.email, unique.", type="request")
        second = alice.messages.send(topic="Standup", payload="In 5 minutes.", broadcast=True)
        told, _ = run_hook(team, "bob", "UserPromptSubmit", prompt="what next?")
        assert told is not None
        output = told["hookSpecificOutput"]
        assert output["hookEventName"] == "UserPromptSubmit"
        context = output["additionalContext"]
        assert f"- message {first.id} from alice to bob (request, normal priority)" in context
        assert "Topic: Schema" in context and "Add users.email, unique." in context
        assert f"- message {second.id} from alice to everyone" in context and "In 5 minutes." in context
        # Fetched by the hook: delivered, not read.
        assert [str(r.state) for r in alice.messages.receipts(first.id).data] == ["delivered"]
        again, _ = run_hook(team, "bob", "UserPromptSubmit", prompt="and now?")
        assert again is None
        third = alice.messages.send("bob", topic="Later", payload="x" * 5000)
        later, _ = run_hook(team, "bob", "UserPromptSubmit", prompt="more?")
    assert later is not None
    context = later["hookSpecificOutput"]["additionalContext"]
    assert f"- message {third.id}" in context and first.id not in context
    assert f"(the rest: ns_message action=read id={third.id})" in context and len(context) < 3000


def test_the_stop_hook_blocks_while_an_urgent_message_is_unread(team: CliProject) -> None:
    assert run_hook(team, "bob", "Stop", stop_hook_active=False)[0] is None
    with (
        Client.from_key_file(team.workspaces["alice"] / ".nexysync" / "key") as alice,
        Client.from_key_file(team.workspaces["bob"] / ".nexysync" / "key") as bob,
    ):
        alice.messages.send("bob", topic="FYI", payload="no rush")
        assert run_hook(team, "bob", "Stop", stop_hook_active=False)[0] is None
        urgent = alice.messages.send("bob", topic="Prod is down", payload="look now", priority="urgent")
        decision, _ = run_hook(team, "bob", "Stop", stop_hook_active=False)
        assert decision is not None and decision["decision"] == "block"
        assert urgent.id in decision["reason"] and "Prod is down" in decision["reason"]
        assert "ns_message action=read" in decision["reason"]
        # Claude Code went on because of the hook and the AI still left it unread: no loop.
        assert run_hook(team, "bob", "Stop", stop_hook_active=True)[0] is None
        blocking = alice.messages.send("bob", topic="Need a decision", payload="?", priority="blocking")
        decision, _ = run_hook(team, "bob", "Stop", stop_hook_active=True)
        assert decision is not None and blocking.id in decision["reason"]
        bob.messages.get(urgent.id)
        bob.messages.ack([blocking.id])
        assert run_hook(team, "bob", "Stop", stop_hook_active=False)[0] is None


def test_a_hook_outside_any_workspace_steps_aside(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("nexysync")), "hook", "user-prompt-submit"],
        input=json.dumps({"hook_event_name": "UserPromptSubmit", "cwd": str(tmp_path), "prompt": "hi"}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and done.stdout == ""
    assert "no .nexysync/key" in done.stderr


def test_init_tells_how_to_start_claude_code_with_the_channel(team: CliProject) -> None:
    workspace = team.config_dir.parent / "carol"
    workspace.mkdir()
    done = run_cli(
        [
            "init",
            "--project",
            team.project_name,
            "--agent",
            "carol",
            "--dir",
            str(workspace),
            "--write-config",
            "claude",
        ],
        config_dir=team.config_dir,
    )
    assert done.returncode == 0, done.stderr
    assert "claude --dangerously-load-development-channels server:nexysync" in done.stderr
    assert "Without the flag" in done.stderr and "ns_message check" in done.stderr
    again = ["init", "--project", team.project_name, "--agent", "carol", "--dir", str(workspace), "--hooks"]
    printed = run_cli(again, config_dir=team.config_dir)
    assert "UserPromptSubmit: " in printed.stderr and "hook user-prompt-submit" in printed.stderr
    result = json.loads(run_cli([*again, "--json"], config_dir=team.config_dir).stdout)
    assert result["claude_channel_flag"] == "--dangerously-load-development-channels server:nexysync"
    assert Path(result["mcp_command"][0]).is_absolute()


def _assert_framed(text: str, sender: str = "alice") -> None:
    """No agent's words got out of their frame: every line of the frame is the hook's own."""
    assert not FORBIDDEN_CHARACTERS & set(text)
    for tag in FORBIDDEN_TAGS:
        assert tag not in text, tag
    frame_line = re.compile(rf"^- (message|urgent|blocking) .*[0-9A-HJKMNP-TV-Z]{{26}}.* {sender}\b")
    for line in text.splitlines():
        if line.startswith("- "):
            assert frame_line.match(line) and line.count("\n") == 0, line


def test_hostile_messages_can_neither_forge_nor_flood_the_hooks(team: CliProject) -> None:
    with Client.from_key_file(team.workspaces["alice"] / ".nexysync" / "key") as alice:
        hostile = [alice.messages.send("bob", topic=text, payload=text, priority="urgent").id for text in CORPUS]
        # As the attack went: topics of 280,000 characters, then a long one before a real message.
        floods = [
            alice.messages.send("bob", topic="T" * 280_000, payload="P" * 100_000, priority="urgent").id
            for _ in range(3)
        ]
        long_topic = alice.messages.send("bob", topic="x" * 12_000, payload="see topic").id
        real = alice.messages.send("bob", topic="Deploy freeze", payload="Stop deploys until 5pm.", priority="urgent")
        told, _ = run_hook(team, "bob", "UserPromptSubmit", prompt="what next?")
        decision, _ = run_hook(team, "bob", "Stop", stop_hook_active=False)

    assert told is not None
    context = told["hookSpecificOutput"]["additionalContext"]
    print(f"hook context for {len(hostile) + 5} hostile or huge messages: {len(context.encode()):,} bytes")
    assert len(context.encode()) <= 16 * 1024
    _assert_framed(context)
    # None is hidden by the ones before it: each has its frame line, the real one its words.
    for message_id in [*hostile, *floods, long_topic, real.id]:
        assert sum(line.startswith(f"- message {message_id} ") for line in context.splitlines()) == 1
    assert "Topic: Deploy freeze" in context and "│ Stop deploys until 5pm." in context
    # Everything was told (shown or summarised): the next prompt has nothing new.
    assert run_hook(team, "bob", "UserPromptSubmit", prompt="and now?")[0] is None

    assert decision is not None
    reason = decision["reason"]
    assert len(reason.encode()) <= 8 * 1024
    _assert_framed(reason)
    assert hostile[0] in reason and "(and 3 more: " in reason
