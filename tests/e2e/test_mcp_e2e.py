"""The ``nexysync-mcp`` stdio server end to end: two agents' MCP servers talking through a real API."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cli_support import provision_project
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError
from mcp_types import InitializeResult, LoggingMessageNotificationParams, ResourceUpdatedNotification

from nexysync import Client, KeyRing
from nexysync.crypto import new_key
from nexysync_mcp.notify import INBOX_URI

pytestmark = pytest.mark.e2e

MCP_COMMAND = str(Path(sys.executable).with_name("nexysync-mcp"))
DEADLINE_S = 30.0


@dataclass
class Workspaces:
    """A project with one workspace per agent, each holding that agent's ``.nexysync/key``.

    Attributes:
        api_url: The API root the key files name.
        project_id: The project.
        enc_key: The project key (standard base64) every agent of the project shares.
        api_keys: Each agent's API key, by slug.
        dirs: Each agent's workspace directory, by slug.
    """

    api_url: str
    project_id: str
    enc_key: str
    api_keys: dict[str, str]
    dirs: dict[str, Path]


def write_key_file(workspace: Path, fields: dict[str, Any]) -> Path:
    """Write ``workspace/.nexysync/key`` (mode 0600) as the ``nexysync`` CLI would."""
    path = workspace / ".nexysync" / "key"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fields))
    os.chmod(path, 0o600)
    return path


def provision_workspaces(api_url: str, root: Path, slugs: tuple[str, ...] = ("alice", "bob")) -> Workspaces:
    """Register an owner, make a project and its agents, and write each agent's key file.

    This is what ``nexysync init`` does for a user; once that CLI exists it can replace this.
    """
    enc_key = base64.b64encode(new_key()).decode()
    with Client(base_url=api_url) as owner:
        owner.auth.register(email=f"mcp-{secrets.token_hex(5)}@example.test", name="MCP owner", password="mcp-password")
        project_id = owner.projects.create(name="mcp e2e").id
        api_keys = {
            slug: owner.project_agents.create(project_id, slug=slug, name=slug.title()).api_key for slug in slugs
        }
    dirs: dict[str, Path] = {}
    for slug in slugs:
        dirs[slug] = root / slug
        write_key_file(
            dirs[slug],
            {
                "api_key": api_keys[slug],
                "enc_key": enc_key,
                "api_url": api_url,
                "project_id": project_id,
                "agent_name": slug.title(),
            },
        )
    return Workspaces(api_url, project_id, enc_key, api_keys, dirs)


@dataclass
class McpAgent:
    """One ``nexysync-mcp`` process, driven through a real MCP client session over stdio."""

    session: ClientSession
    initialized: InitializeResult
    logs: list[str] = field(default_factory=list)
    inbox_updates: int = 0

    async def call(self, tool: str, **arguments: Any) -> tuple[str, bool]:
        """Call a tool; return its text and whether it is an error."""
        result = await self.session.call_tool(tool, arguments)
        text = "".join(getattr(block, "text", "") for block in result.content)
        return text, bool(result.is_error)

    async def ok(self, tool: str, **arguments: Any) -> Any:
        """Call a tool that must succeed; return its JSON answer."""
        text, is_error = await self.call(tool, **arguments)
        assert not is_error, text
        return json.loads(text)

    async def until(self, condition: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
        """Return once ``condition()`` holds (checked as notifications arrive), or fail at the deadline."""
        deadline = time.monotonic() + deadline_s
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}; logs: {self.logs}")
            await asyncio.sleep(0.02)


@asynccontextmanager
async def mcp_agent(
    workspace: Path, *args: str, env: dict[str, str] | None = None, command: tuple[str, ...] = (MCP_COMMAND,)
) -> AsyncIterator[McpAgent]:
    """Start ``nexysync-mcp`` in ``workspace`` (NEXYSYNC_* env vars not inherited) and connect to it."""
    workspace.mkdir(parents=True, exist_ok=True)
    params = StdioServerParameters(command=command[0], args=[*command[1:], *args], cwd=workspace, env=env)
    agent: McpAgent | None = None

    async def on_log(params: LoggingMessageNotificationParams) -> None:
        assert agent is not None
        agent.logs.append(str(params.data))

    async def on_message(message: Any) -> None:
        if agent is not None and isinstance(message, ResourceUpdatedNotification):
            agent.inbox_updates += 1

    async with AsyncExitStack() as stack:
        errlog = stack.enter_context((workspace / "mcp.err").open("w"))
        read, write = await stack.enter_async_context(stdio_client(params, errlog=errlog))
        session = await stack.enter_async_context(
            ClientSession(read, write, logging_callback=on_log, message_handler=on_message)
        )
        agent = McpAgent(session, await session.initialize())
        yield agent


async def live(agent: McpAgent) -> None:
    """Return once the agent's MCP server follows its event stream (its push cache is live)."""
    deadline = time.monotonic() + DEADLINE_S
    while (await agent.ok("ns_meta", action="whoami"))["push"] != "live":
        if time.monotonic() > deadline:
            pytest.fail("the MCP server's event stream never became live")
        await asyncio.sleep(0.05)


@pytest.fixture
def workspaces(dev_server: Any, tmp_path: Path) -> Workspaces:
    """A fresh project on the session's server with workspaces for alice and bob."""
    return provision_workspaces(dev_server.base_url, tmp_path)


@pytest.fixture
def cli_workspaces(dev_server: Any, tmp_path: Path) -> Workspaces:
    """Workspaces for alice and bob made as a user makes them: ``nexysync register``, ``projects create``, ``init``."""
    project = provision_project(dev_server.base_url, tmp_path, write_config="claude")
    keys = {slug: json.loads((d / ".nexysync" / "key").read_text()) for slug, d in project.workspaces.items()}
    return Workspaces(
        dev_server.base_url,
        project.project_id,
        keys["alice"]["enc_key"],
        {slug: key["api_key"] for slug, key in keys.items()},
        dict(project.workspaces),
    )


def configured_command(workspace: Path) -> tuple[str, ...]:
    """Return the MCP server command that ``nexysync init --write-config claude`` wrote to ``.mcp.json``."""
    entry = json.loads((workspace / ".mcp.json").read_text())["mcpServers"]["nexysync"]
    command = entry["command"]
    if not Path(command).is_absolute() and shutil.which(command) is None:
        # Run outside an activated venv (not under tox): the script sits beside this interpreter.
        command = str(Path(sys.executable).with_name(command))
    return (command, *entry.get("args", []))


async def test_a_request_and_its_reply_travel_between_two_mcp_servers(cli_workspaces: Workspaces) -> None:
    workspaces = cli_workspaces
    alice_command = configured_command(workspaces.dirs["alice"])
    async with (
        mcp_agent(workspaces.dirs["alice"], command=alice_command) as alice,
        mcp_agent(workspaces.dirs["bob"], command=configured_command(workspaces.dirs["bob"])) as bob,
    ):
        assert (await alice.ok("ns_meta", action="whoami"))["agent"] == "alice"
        await live(bob)
        # Only a client that subscribed to the inbox hears of its updates (bob; alice did not).
        await bob.session.subscribe_resource(INBOX_URI)
        waiting = asyncio.create_task(bob.call("ns_message", action="wait", **{"from": "alice"}, timeout=DEADLINE_S))
        sent = await alice.ok(
            "ns_message",
            action="send",
            to="bob",
            topic="Review PR #4",
            payload='Please review {"pr": 4} before noon.',
            type="request",
            priority="urgent",
        )
        text, is_error = await waiting
        assert not is_error, text
        got = json.loads(text)
        assert (got["id"], got["from"], got["type"], got["priority"]) == (sent["id"], "alice", "request", "urgent")
        assert (got["topic"], got["payload"]) == ("Review PR #4", 'Please review {"pr": 4} before noon.')

        # The push reached bob's MCP client as notifications too (it declares that it logs).
        assert bob.initialized.capabilities.logging is not None
        await bob.until(lambda: any(sent["id"] in line for line in bob.logs), "the new-message log notification")
        await bob.until(lambda: bob.inbox_updates >= 1, "the inbox resource update")

        read = await bob.ok("ns_message", action="read", id=sent["id"])
        assert read["payload"] == 'Please review {"pr": 4} before noon.' and read["status"] == "read"
        assert (await bob.ok("ns_message", action="check"))["unread"] == 0

        reply_wait = asyncio.create_task(
            alice.call("ns_message", action="wait", reply_to=sent["id"], timeout=DEADLINE_S)
        )
        reply = await bob.ok(
            "ns_message", action="send", to="alice", topic="Re: PR #4", payload="Approved", reply_to=sent["id"]
        )
        text, is_error = await reply_wait
        assert not is_error, text
        answer = json.loads(text)
        assert (answer["id"], answer["payload"], answer["type"], answer["reply_to"]) == (
            reply["id"],
            "Approved",
            "response",
            sent["id"],
        )
        await alice.until(lambda: any(reply["id"] in line for line in alice.logs), "alice's log of bob's reply")
        assert alice.inbox_updates == 0
        with pytest.raises(MCPError, match="Unknown resource"):
            await alice.session.subscribe_resource("nexysync://nothing")
        thread = await alice.ok("ns_message", action="thread", id=reply["id"])
        assert [m["payload"] for m in thread["messages"]] == ['Please review {"pr": 4} before noon.', "Approved"]


async def test_check_lists_unread_messages_with_previews_and_ack_clears_them(workspaces: Workspaces) -> None:
    async with mcp_agent(workspaces.dirs["alice"]) as alice, mcp_agent(workspaces.dirs["bob"]) as bob:
        await live(bob)
        first = await alice.ok("ns_message", action="send", to="bob", topic="one", payload="x" * 500)
        second = await alice.ok("ns_message", action="broadcast", topic="all hands", payload="standup now")
        await bob.until(lambda: sum(second["id"] in line or first["id"] in line for line in bob.logs) == 2, "2 logs")
        inbox = await bob.ok("ns_message", action="check")
        assert inbox["unread"] == 2
        assert [(m["id"], m["from"], m["topic"]) for m in inbox["messages"]] == [
            (first["id"], "alice", "one"),
            (second["id"], "alice", "all hands"),
        ]
        assert len(inbox["messages"][0]["preview"]) < 200 and inbox["messages"][1]["preview"] == "standup now"
        assert "broadcast" not in inbox["messages"][0] and inbox["messages"][1]["broadcast"] is True
        # Pushed, cached and previewed, but not read: both are still unread on the server.
        ring = KeyRing([base64.b64decode(workspaces.enc_key)])
        with Client(base_url=workspaces.api_url, api_key=workspaces.api_keys["bob"], key_ring=ring) as sdk:
            assert {first["id"], second["id"]} <= {m.id for m in sdk.messages.list(status="unread")}
        assert (await bob.ok("ns_message", action="ack", ids=[first["id"], second["id"]]))["acked"] == [
            first["id"],
            second["id"],
        ]
        assert (await bob.ok("ns_message", action="check"))["unread"] == 0
        # Alice's own broadcast is not in her inbox.
        assert (await alice.ok("ns_message", action="check"))["unread"] == 0


async def test_the_tool_list_stays_small(workspaces: Workspaces) -> None:
    async with mcp_agent(workspaces.dirs["alice"]) as alice:
        listed = await alice.session.list_tools()
    size = len(listed.model_dump_json(by_alias=True, exclude_none=True))
    print(f"tools/list answer: {size} characters for {len(listed.tools)} tools")
    assert {tool.name for tool in listed.tools} == {
        "ns_auth",
        "ns_meta",
        "ns_message",
        "ns_kv",
        "ns_ref",
        "ns_file",
        "ns_lease",
        "ns_task",
    }
    assert all(tool.input_schema["type"] == "object" for tool in listed.tools)
    assert size < 12_000


async def test_the_kv_store_is_shared_and_a_stale_write_is_refused(workspaces: Workspaces) -> None:
    async with mcp_agent(workspaces.dirs["alice"]) as alice, mcp_agent(workspaces.dirs["bob"]) as bob:
        await live(bob)
        assert await alice.ok("ns_kv", action="set", key="plan:api", value="v1 {draft}") == {
            "key": "plan:api",
            "version": 1,
        }
        await bob.until(lambda: any("“plan:api” set to version 1 by alice" in line for line in bob.logs), "kv log")
        got = await bob.ok("ns_kv", action="get", key="plan:api")
        assert (got["value"], got["version"], got["updated_by"]) == ("v1 {draft}", 1, "alice")
        # Bob read version 1; alice writes meanwhile; bob's conditional write must not clobber hers.
        await alice.ok("ns_kv", action="set", key="plan:api", value="v2")
        text, is_error = await bob.call("ns_kv", action="set", key="plan:api", value="bob's", version=1)
        assert is_error and text == "kv key 'plan:api' changed since version 1 (now 2): get it again and retry."
        assert (await bob.ok("ns_kv", action="set", key="plan:api", value="bob's", version=2))["version"] == 3
        text, is_error = await bob.call("ns_kv", action="set", key="plan:api", value="x", version=0)
        assert is_error and text.startswith("kv key 'plan:api' already exists (version 3)")
        await alice.ok("ns_kv", action="set", key="other", value="y" * 500)
        listed = (await alice.ok("ns_kv", action="list"))["entries"]
        assert [(e["key"], e["version"]) for e in listed] == [("other", 1), ("plan:api", 3)]
        assert listed[1]["value"] == "bob's" and "value" not in listed[0] and len(listed[0]["preview"]) < 200
        assert [e["key"] for e in (await alice.ok("ns_kv", action="list", prefix="plan"))["entries"]] == ["plan:api"]
        text, is_error = await alice.call("ns_kv", action="delete", key="plan:api", version=2)
        assert is_error and "changed since version 2 (now 3)" in text
        assert await alice.ok("ns_kv", action="delete", key="plan:api", version=3) == {"deleted": "plan:api"}
        text, is_error = await bob.call("ns_kv", action="get", key="plan:api")
        assert (text, is_error) == ("No kv key 'plan:api' (ns_kv action=list shows the keys).", True)


async def test_a_shared_code_reference_is_listed_and_read_by_its_recipient(workspaces: Workspaces) -> None:
    async with mcp_agent(workspaces.dirs["alice"]) as alice, mcp_agent(workspaces.dirs["bob"]) as bob:
        await live(bob)
        code = 'def handler(event):\n    return {"ok": True}\n'
        shared = await alice.ok(
            "ns_ref",
            action="share",
            title="The webhook handler",
            content=code,
            source_file="src/hooks.py:10-12",
            language="python",
            to="bob",
        )
        assert shared["to"] == "bob"
        await bob.until(lambda: any(shared["id"] in line for line in bob.logs), "the new_ref log notification")
        (listed,) = (await bob.ok("ns_ref", action="list", language="python"))["refs"]
        assert listed["id"] == shared["id"] and "content" not in listed
        assert (listed["from"], listed["title"], listed["source_file"], listed["size"]) == (
            "alice",
            "The webhook handler",
            "src/hooks.py:10-12",
            len(code),
        )
        assert (await bob.ok("ns_ref", action="read", id=shared["id"]))["content"] == code
        text, is_error = await bob.call("ns_ref", action="delete", id=shared["id"])
        assert (text, is_error) == (f"Only the agent that shared reference {shared['id']} may delete it.", True)
        assert await alice.ok("ns_ref", action="delete", id=shared["id"]) == {"deleted": shared["id"]}
        text, is_error = await bob.call("ns_ref", action="read", id=shared["id"])
        assert is_error and text.startswith(f"No reference {shared['id']}")


async def test_leases_and_tasks_are_shared_between_two_mcp_servers(workspaces: Workspaces) -> None:
    async with mcp_agent(workspaces.dirs["alice"]) as alice, mcp_agent(workspaces.dirs["bob"]) as bob:
        leased = await alice.ok("ns_lease", action="claim", paths=["src/auth/"], reason="login rework")
        ((lease,),) = [leased["leased"]]
        assert (lease["path"], lease["agent"], lease["reason"]) == ("src/auth/", "alice", "login rework")
        text, is_error = await bob.call("ns_lease", action="claim", paths=["src/auth/login.py", "docs/"])
        assert is_error and "Not granted" in text and '"agent":"alice"' in text and '"path":"src/auth/"' in text
        listed = await bob.ok("ns_lease", action="list")
        assert [(item["path"], item["agent"]) for item in listed["leases"]] == [("src/auth/", "alice")]
        text, is_error = await bob.call("ns_lease", action="release", paths=["src/auth/"])
        assert is_error and "no live lease" in text
        outside, is_error = await bob.call("ns_lease", action="claim", paths=["../elsewhere.py"])
        assert is_error and "outside the workspace" in outside
        assert (await alice.ok("ns_lease", action="renew", paths=["src/auth"]))["renewed"][0]["path"] == "src/auth/"
        assert (await alice.ok("ns_lease", action="release", paths=["src/auth/"]))["released"] == ["src/auth/"]
        assert (await bob.ok("ns_lease", action="claim", paths=["src/auth/login.py"]))["leased"][0]["agent"] == "bob"

        first = await alice.ok("ns_task", action="add", title="Write the schema", body="users table")
        then = await alice.ok("ns_task", action="add", title="Migrate", blocked_by=[first["id"]])
        assert then["blocked_by"] == [first["id"]] and then["state"] == "open"
        text, is_error = await bob.call("ns_task", action="claim", id=then["id"])
        assert is_error and text.startswith("TASK_BLOCKED")
        assert (await bob.ok("ns_task", action="claim", id=first["id"]))["assignee"] == "bob"
        text, is_error = await alice.call("ns_task", action="claim", id=first["id"])
        assert is_error and "claimed by bob" in text
        assert (await bob.ok("ns_task", action="done", id=first["id"], result="see 0042.sql"))["state"] == "done"
        full = await alice.ok("ns_task", action="get", id=first["id"])
        assert (full["title"], full["body"], full["result"]) == ("Write the schema", "users table", "see 0042.sql")
        board = await alice.ok("ns_task", action="list", state="open")
        assert [task["title"] for task in board["tasks"]] == ["Migrate"]


async def test_files_travel_inline_when_small_text_and_to_disk_otherwise(workspaces: Workspaces) -> None:
    alice_dir, bob_dir = workspaces.dirs["alice"], workspaces.dirs["bob"]
    (alice_dir / "notes.txt").write_text("# Notes\nUnicode: héllo ✓\n", encoding="utf-8")
    blob = secrets.token_bytes(200_000)
    (alice_dir / "build").mkdir()
    (alice_dir / "build" / "app.bin").write_bytes(blob)
    async with mcp_agent(alice_dir) as alice, mcp_agent(bob_dir) as bob:
        text_file = await alice.ok("ns_file", action="upload", path="notes.txt")
        assert (text_file["name"], text_file["size"], text_file["content_type"]) == (
            "notes.txt",
            len("# Notes\nUnicode: héllo ✓\n".encode()),
            "text/plain",
        )
        binary = await alice.ok("ns_file", action="upload", path="build/app.bin", name="../../release.bin")
        listed = (await bob.ok("ns_file", action="list"))["files"]
        assert {(f["id"], f["from"]) for f in listed} == {(text_file["id"], "alice"), (binary["id"], "alice")}

        inline = await bob.ok("ns_file", action="read", id=text_file["id"])
        assert inline["content"] == "# Notes\nUnicode: héllo ✓\n" and "saved_to" not in inline
        saved = await bob.ok("ns_file", action="read", id=binary["id"])
        # The remote name tried to climb out of the downloads folder: only its last part is used.
        target = bob_dir / ".nexysync" / "downloads" / "release.bin"
        assert Path(saved["saved_to"]) == target and "content" not in saved
        assert target.read_bytes() == blob
        text, is_error = await bob.call("ns_file", action="read", id=binary["id"])
        assert is_error and text == f"{target} exists; give another path, or overwrite=true to replace it."
        # What a prompt-injected teammate might ask for: another workspace's key, a save outside the downloads.
        text, is_error = await alice.call("ns_file", action="upload", path="../bob/.nexysync/key")
        assert (
            is_error
            and text.startswith("Refusing to upload '../bob/.nexysync/key'")
            and "outside the workspace" in text
        )
        text, is_error = await bob.call("ns_file", action="read", id=binary["id"], path="../escape.bin", overwrite=True)
        assert is_error and text.startswith("Refusing to save to '../escape.bin'")
        assert not (bob_dir.parent / "escape.bin").exists()

        text, is_error = await bob.call("ns_file", action="delete", id=binary["id"])
        assert (text, is_error) == (f"Only the agent that uploaded file {binary['id']} may delete it.", True)
        assert await alice.ok("ns_file", action="delete", id=binary["id"]) == {"deleted": binary["id"]}
        text, is_error = await bob.call("ns_file", action="read", id=binary["id"], path="again.bin")
        assert is_error and text.startswith(f"No file {binary['id']}") and not (bob_dir / "again.bin").exists()


async def test_sending_to_an_unknown_agent_says_so(workspaces: Workspaces) -> None:
    async with mcp_agent(workspaces.dirs["alice"]) as alice:
        text, is_error = await alice.call("ns_message", action="send", to="nobody", topic="t", payload="p")
        assert is_error and "Unknown agent 'nobody'" in text and "\n" not in text
        text, is_error = await alice.call("ns_message", action="send", topic="t", payload="p")
        assert is_error and text == "`to` is required for action=send."
        text, is_error = await alice.call("ns_message", action="shout")
        assert is_error and text.startswith("`action` must be one of send, broadcast")


async def test_a_different_project_key_is_reported_clearly(workspaces: Workspaces) -> None:
    wrong = base64.b64encode(new_key()).decode()
    fields = json.loads((workspaces.dirs["bob"] / ".nexysync" / "key").read_text())
    write_key_file(workspaces.dirs["bob"], {**fields, "enc_key": wrong})
    async with mcp_agent(workspaces.dirs["alice"]) as alice, mcp_agent(workspaces.dirs["bob"]) as bob:
        await live(bob)
        sent = await alice.ok("ns_message", action="send", to="bob", topic="secret", payload="for bob only")
        await bob.until(lambda: any(sent["id"] in line for line in bob.logs), "the new-message log notification")
        for arguments in ({"action": "wait", "from": "alice", "timeout": 5}, {"action": "read", "id": sent["id"]}):
            text, is_error = await bob.call("ns_message", **arguments)
            assert is_error, text
            assert "ask the user to check the project key" in text and "\n" not in text
        # Reported once to wait: it does not come back on every later wait.
        text, is_error = await bob.call("ns_message", action="wait", timeout=0.2)
        assert (text, is_error) == ("No matching message arrived within 0.2 s.", False)
    # One message bob cannot decrypt hides none of the others: check lists them side by side.
    with (
        Client(base_url=workspaces.api_url, api_key=workspaces.api_keys["alice"], key_ring=KeyRing([new_key()])) as w,
        Client(
            base_url=workspaces.api_url,
            api_key=workspaces.api_keys["alice"],
            key_ring=KeyRing([base64.b64decode(wrong)]),  # the key bob was given
        ) as same_as_bob,
    ):
        readable = same_as_bob.messages.send("bob", topic="same key", payload="bob reads this").id
        unreadable = w.messages.send("bob", topic="other key", payload="bob cannot read this").id
        later = same_as_bob.messages.send("bob", topic="again", payload="and this").id
    async with mcp_agent(workspaces.dirs["bob"]) as bob:
        for attempt in ("from the API", "from the push cache"):
            check = await bob.ok("ns_message", action="check")
            # The first message bob could not read is still unread on the server (read failed).
            assert check["unread"] == 4, attempt
            assert [m["id"] for m in check["messages"]] == [sent["id"], readable, unreadable, later], attempt
            _, good, bad, _ = check["messages"]
            assert (good["topic"], good["preview"]) == ("same key", "bob reads this"), attempt
            assert "topic" not in bad and bad["from"] == "alice", attempt
            assert bad["error"].startswith(f"Cannot decrypt message {unreadable} from alice"), attempt
            assert "ask the user to check the project key" in bad["error"], attempt
            await live(bob)
        text, is_error = await bob.call("ns_message", action="read", id=unreadable)
        assert is_error and "ask the user to check the project key" in text
        assert (await bob.ok("ns_message", action="read", id=later))["payload"] == "and this"


async def test_keys_come_from_a_key_file_option_or_from_env_vars(workspaces: Workspaces, tmp_path: Path) -> None:
    key_file = workspaces.dirs["alice"] / ".nexysync" / "key"
    async with mcp_agent(tmp_path / "elsewhere", "--key-file", str(key_file)) as alice:
        whoami = await alice.ok("ns_meta", action="whoami")
        assert (whoami["agent"], whoami["keys_from"]) == ("alice", str(key_file))
    env = {
        "NEXYSYNC_API_URL": workspaces.api_url,
        "NEXYSYNC_API_KEY": workspaces.api_keys["bob"],
        "NEXYSYNC_ENC_KEY": workspaces.enc_key,
    }
    async with mcp_agent(tmp_path / "bare", env=env) as bob:
        whoami = await bob.ok("ns_meta", action="whoami")
        assert (whoami["agent"], whoami["keys_from"]) == ("bob", "environment")


async def test_ns_auth_configures_a_server_started_without_keys(workspaces: Workspaces, tmp_path: Path) -> None:
    # Started as `python -m nexysync_mcp`, the other way to run it.
    async with mcp_agent(tmp_path / "empty", command=(sys.executable, "-m", "nexysync_mcp")) as agent:
        text, is_error = await agent.call("ns_meta", action="whoami")
        assert is_error and "call ns_auth" in text and "`nexysync init`" in text
        text, is_error = await agent.call(
            "ns_auth", api_key="nsync_bob_" + "0" * 40, enc_key=workspaces.enc_key, api_url=workspaces.api_url
        )
        assert is_error and "refused" in text and "\n" not in text
        text, is_error = await agent.call("ns_auth", api_key=workspaces.api_keys["bob"], enc_key="not base64!")
        assert is_error and "enc_key" in text
        # A message waits in bob's inbox: it tells a wrong project key from the right one.
        ring = KeyRing([base64.b64decode(workspaces.enc_key)])
        with Client(base_url=workspaces.api_url, api_key=workspaces.api_keys["alice"], key_ring=ring) as sdk:
            early = sdk.messages.send("bob", topic="early", payload="sent before ns_auth").id
        wrong = base64.b64encode(new_key()).decode()
        text, is_error = await agent.call(
            "ns_auth", api_key=workspaces.api_keys["bob"], enc_key=wrong, api_url=workspaces.api_url
        )
        assert is_error and "ask the user to check the project key" in text
        auth = await agent.ok(
            "ns_auth", api_key=workspaces.api_keys["bob"], enc_key=workspaces.enc_key, api_url=workspaces.api_url
        )
        assert auth == {"authenticated": "bob", "project_id": workspaces.project_id, "api_url": workspaces.api_url}
        assert (await agent.ok("ns_meta", action="whoami"))["keys_from"] == "ns_auth"
        await live(agent)
        assert [m["id"] for m in (await agent.ok("ns_message", action="check"))["messages"]] == [early]
        assert (await agent.ok("ns_message", action="read", id=early))["payload"] == "sent before ns_auth"
        async with mcp_agent(workspaces.dirs["alice"]) as alice:
            sent = await alice.ok("ns_message", action="send", to="bob", topic="hi", payload="configured late")
            got = await agent.ok("ns_message", action="wait", timeout=DEADLINE_S)
            assert (got["id"], got["payload"]) == (sent["id"], "configured late")


async def test_the_mcp_server_survives_an_api_restart(dev_servers: Callable[..., Any], tmp_path: Path) -> None:
    server = dev_servers(tmp_path / "data", {"NEXYSYNC_HEARTBEAT_S": "0.5"})
    spaces = provision_workspaces(server.base_url, tmp_path / "ws")
    async with mcp_agent(spaces.dirs["alice"]) as alice, mcp_agent(spaces.dirs["bob"]) as bob:
        await live(bob)
        before = await alice.ok("ns_message", action="send", to="bob", topic="t", payload="before")
        assert (await bob.ok("ns_message", action="wait", timeout=DEADLINE_S))["id"] == before["id"]

        assert await asyncio.to_thread(server.stop, signal.SIGTERM) == 0
        text, is_error = await alice.call("ns_message", action="send", to="bob", topic="t", payload="while down")
        assert is_error and "Cannot reach the NexySync API" in text
        await asyncio.to_thread(server.start)

        after = await alice.ok("ns_message", action="send", to="bob", topic="t", payload="after")
        got = await bob.ok("ns_message", action="wait", **{"from": "alice"}, timeout=60)
        assert (got["id"], got["payload"]) == (after["id"], "after")
        # The push itself survived: the message was announced, and the stream is followed still.
        await bob.until(lambda: any(after["id"] in line for line in bob.logs), "the announcement after the restart")
        await live(bob)


async def test_tools_declare_annotations_and_output_schemas_and_answer_structured(workspaces: Workspaces) -> None:
    async with mcp_agent(workspaces.dirs["alice"]) as alice:
        listed = await alice.session.list_tools()
        for tool in listed.tools:
            assert tool.annotations is not None and tool.annotations.title, tool.name
            for hint in ("read_only_hint", "destructive_hint", "idempotent_hint", "open_world_hint"):
                assert isinstance(getattr(tool.annotations, hint), bool), (tool.name, hint)
            assert tool.output_schema is not None and tool.output_schema["type"] == "object"
        kv = next(tool for tool in listed.tools if tool.name == "ns_kv")
        assert kv.annotations is not None and kv.annotations.destructive_hint is True
        # The client checks every result against the tool's output schema; the text stays for older clients.
        result = await alice.session.call_tool("ns_meta", {"action": "whoami"})
        assert result.structured_content == json.loads(result.content[0].text)  # type: ignore[union-attr]
        agents = await alice.session.call_tool("ns_meta", {"action": "agents"})
        assert agents.structured_content == {"items": json.loads(agents.content[0].text)}  # type: ignore[union-attr]
        quiet = await alice.session.call_tool("ns_message", {"action": "wait", "timeout": 0.2})
        assert quiet.structured_content == {"text": "No matching message arrived within 0.2 s."}


async def test_send_says_queued_and_who_hears_now_and_status_follows_each_step(workspaces: Workspaces) -> None:
    async with mcp_agent(workspaces.dirs["alice"]) as alice:
        sent = await alice.ok("ns_message", action="send", to="bob", topic="t", payload="p")
        assert sent["state"] == "queued"
        assert sent["note"] == "queued: bob is offline (never seen yet); it gets it when it connects"
        text = json.dumps(sent).lower()
        assert "sent" not in text and "delivered" not in text
        status = await alice.ok("ns_message", action="status", id=sent["id"])
        assert status["receipts"] == [{"agent": "bob", "state": "queued"}] and status["summary"] == {"queued": 1}
        async with mcp_agent(workspaces.dirs["bob"]) as bob:
            await live(bob)
            online = await alice.ok("ns_message", action="send", to="bob", topic="t2", payload="p2")
            assert online["note"] == "queued: bob is online; it will be told now"
            await bob.until(lambda: any(online["id"] in line for line in bob.logs), "the push of the second message")
            # The server records the push delivered soon after it wrote it (copies gather 0.2 s).
            deadline = time.monotonic() + DEADLINE_S
            while (pushed := (await alice.ok("ns_message", action="status", id=online["id"]))["receipts"][0])[
                "state"
            ] == "queued":
                assert time.monotonic() < deadline, "the push was never recorded delivered"
                await asyncio.sleep(0.05)
            assert pushed["state"] == "delivered" and "delivered_at" in pushed
            await bob.ok("ns_message", action="read", id=online["id"])
            await bob.ok("ns_message", action="ack", ids=[sent["id"]])
            deadline = time.monotonic() + DEADLINE_S
            while (await alice.ok("ns_message", action="status", id=online["id"]))["receipts"][0]["state"] != "read":
                assert time.monotonic() < deadline, "the read never reached the receipt"
                await asyncio.sleep(0.05)
            (acked,) = (await alice.ok("ns_message", action="status", id=sent["id"]))["receipts"]
            assert acked["state"] == "acked" and {"delivered_at", "read_at", "acked_at"} <= set(acked)


async def test_wait_reports_progress_to_a_caller_that_asked_for_it(workspaces: Workspaces) -> None:
    reports: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reports.append((progress, total, message))

    async with mcp_agent(workspaces.dirs["alice"]) as alice:
        await live(alice)
        result = await alice.session.call_tool(
            "ns_message", {"action": "wait", "timeout": 2}, progress_callback=on_progress
        )
        assert not result.is_error
        # Without a progress token nothing is reported.
        await alice.session.call_tool("ns_message", {"action": "wait", "timeout": 1})
    assert len(reports) >= 2
    assert all(total == 2 for _, total, _ in reports)
    assert [p for p, _, _ in reports] == sorted(p for p, _, _ in reports)
    assert "waiting for a message" in (reports[0][2] or "")
