"""Claude Code's channel: a new message reaches a running session as ``notifications/claude/channel``.

Driven by a raw JSON-RPC client (as Claude Code drives the server), in both protocol
generations mcp 2.x serves: the ``initialize`` handshake and the 2026 per-request envelope.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import pty
import re
import subprocess
import termios
import time
from pathlib import Path
from typing import Any

import pytest
from mcp_raw import LEGACY, MCP_COMMAND, MODERN, raw_mcp
from test_mcp_e2e import provision_workspaces

from nexysync import AsyncClient, KeyRing

pytestmark = pytest.mark.e2e

IDENTIFIER = re.compile(r"^[A-Za-z0-9_]+$")


@pytest.mark.parametrize("era", [LEGACY, MODERN])
async def test_a_new_message_reaches_the_session_as_a_channel_event_and_is_delivered_not_read(
    dev_server: Any, tmp_path: Path, era: str
) -> None:
    workspaces = provision_workspaces(dev_server.base_url, tmp_path)
    ring = KeyRing([base64.b64decode(workspaces.enc_key)])
    async with (
        raw_mcp(workspaces.dirs["bob"], era) as bob,
        AsyncClient(base_url=workspaces.api_url, api_key=workspaces.api_keys["alice"], key_ring=ring) as alice,
    ):
        assert bob.opened["capabilities"]["experimental"]["claude/channel"] == {}
        assert "<channel" in bob.opened["instructions"] and "reply_to" in bob.opened["instructions"]
        await bob.live()
        sent = await alice.messages.send(
            "bob", topic="Schema review", payload="Is `user.email` unique?", type="request", priority="urgent"
        )
        told_at = time.monotonic()
        event = await bob.notification("notifications/claude/channel", {"message_id": sent.id}, timeout=1.0)
        print(f"{era}: channel event {1000 * (event.at - told_at):.1f} ms after the send answered")
        assert event.at - told_at < 1.0
        content, meta = event.params["content"], event.params["meta"]
        assert "Schema review" in content and "Is `user.email` unique?" in content
        assert "from alice" in content and "request" in content and "urgent" in content
        assert f"reply_to={sent.id}" in content
        assert meta == {"message_id": sent.id, "from": "alice", "type": "request", "priority": "urgent"}
        assert all(IDENTIFIER.match(key) and isinstance(value, str) for key, value in meta.items())
        # The push recorded it delivered (the server, once it wrote the event that carried the
        # message to bob's stream, told alice soon after); nobody read it yet.
        deadline = time.monotonic() + 5
        (receipt,) = (await alice.messages.receipts(sent.id)).data
        while str(receipt.state) == "queued" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            (receipt,) = (await alice.messages.receipts(sent.id)).data
        assert str(receipt.state) == "delivered"

        long = await alice.messages.send("bob", topic="Log", payload="x" * 10_000, reply_to=sent.id)
        event = await bob.notification("notifications/claude/channel", {"message_id": long.id}, timeout=10.0)
        assert event.params["meta"]["reply_to"] == sent.id
        assert f"read the rest with ns_message action=read id={long.id}" in event.params["content"]
        assert len(event.params["content"]) < 5000


def test_the_server_also_answers_when_stdin_is_a_terminal_not_a_pipe(tmp_path: Path) -> None:
    # A terminal is not a pipe, so the server keeps mcp's own threaded stdin there. (A file would
    # test the same fallback, but its end comes at once, and a client that closes stdin has left:
    # the answers still in flight may then be dropped, so it cannot tell a working server apart.)
    initialize = {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "tty", "version": "1"}}
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": initialize},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    env = {key: value for key, value in os.environ.items() if not key.startswith("NEXYSYNC_")}
    controller, terminal = pty.openpty()
    attributes = termios.tcgetattr(terminal)
    attributes[3] &= ~termios.ECHO  # the requests are not echoed back into the terminal
    termios.tcsetattr(terminal, termios.TCSANOW, attributes)
    process = subprocess.Popen(
        [MCP_COMMAND], stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=tmp_path, env=env
    )
    os.close(terminal)
    answers: dict[int, Any] = {}
    try:
        assert os.isatty(controller)
        for request in requests:
            os.write(controller, (json.dumps(request) + "\n").encode())
        assert process.stdout is not None
        while len(answers) < 2:
            line = process.stdout.readline()
            assert line, f"the server ended before answering; it answered {sorted(answers)}"
            message = json.loads(line)
            if "id" in message:
                answers[message["id"]] = message
    finally:
        os.close(controller)
        process.kill()
        process.wait(timeout=30)
    assert answers[1]["result"]["capabilities"]["experimental"] == {"claude/channel": {}}
    assert {tool["name"] for tool in answers[2]["result"]["tools"]} >= {"ns_message", "ns_kv"}
