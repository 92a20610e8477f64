"""Pairing as two machines do it: two home directories, the real CLI, a real server.

Offer and accept; the new machine reads what was sent before it joined; a wrong code burns the
slot for the right one; an expired code fails; a rotation on one machine reaches the other with
nothing copied; a revoked device gets no later key; and nothing of the keys or the agent's API
key lands in the database files or the server's logs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_support import PASSWORD, CliProcess, run_cli
from mcp_raw import LEGACY, raw_mcp
from scan_support import files_holding

from nexysync import Client
from nexysync.crypto import key_id
from nexysync.keyfile import load_key_file

pytestmark = pytest.mark.e2e


class Machine:
    """One machine: its own home and config dir, running the CLI."""

    def __init__(self, root: Path, api_url: str) -> None:
        self.home = root
        self.config_dir = root / ".config" / "nexysync"
        self.api_url = api_url
        self.config_dir.parent.mkdir(parents=True)

    @property
    def env(self) -> dict[str, str]:
        return {"HOME": str(self.home)}

    def run(self, *args: str) -> Any:
        # Run from the home: a cwd holding a ``nexysync/`` directory (the config dir's parent) would
        # shadow the package for ``python -m``.
        return run_cli(
            ["--json", *args, "--api-url", self.api_url], config_dir=self.config_dir, cwd=self.home, env=self.env
        )

    def ok(self, *args: str) -> Any:
        done = self.run(*args)
        assert done.returncode == 0, f"nexysync {' '.join(args)} failed ({done.returncode}):\n{done.stderr}"
        return json.loads(done.stdout.splitlines()[-1])

    def offer(self, *args: str) -> tuple[CliProcess, dict[str, Any]]:
        """Start ``pair offer`` and return it with its first JSON line (the code)."""
        process = CliProcess(
            ["--json", "pair", "offer", "--api-url", self.api_url, *args],
            config_dir=self.config_dir,
            cwd=self.home,
            env=self.env,
        )
        return process, json.loads(process.stdout_line())


def outcome(process: CliProcess) -> tuple[int, dict[str, Any]]:
    code, stdout, _ = process.finish()
    return code, json.loads(stdout.strip().splitlines()[-1])


def key_forms(secret: bytes) -> dict[str, bytes]:
    """The forms a key could be written in."""
    std = base64.b64encode(secret)
    return {
        "raw": secret,
        "hex": secret.hex().encode(),
        "base64": std.rstrip(b"="),
        "base64url": base64.urlsafe_b64encode(secret).rstrip(b"="),
    }


async def rotate_under_a_running_mcp(first: Machine, web_dir: Path) -> tuple[dict[str, Any], str]:
    """Rotate on the first machine while web's MCP server runs; return the rotation and a message it sent after."""
    key_path = web_dir / ".nexysync" / "key"
    async with raw_mcp(web_dir, LEGACY) as mcp:
        await mcp.live()
        rotated = await asyncio.to_thread(first.ok, "keys", "rotate", "--project", "paired")
        deadline = time.monotonic() + 15
        while key_id(load_key_file(key_path).keys[-1]) != rotated["key_id"]:
            assert time.monotonic() < deadline, "the running MCP server never took the rotated key"
            await asyncio.sleep(0.1)
        sent = await mcp.call("ns_message", action="send", to="api", topic="from mcp", payload="after the rotation")
        assert not sent.get("isError"), sent
        return rotated, str(json.loads(sent["content"][0]["text"])["id"])


def test_pairing_two_machines_from_offer_to_revocation(dev_servers: Any, tmp_path: Path) -> None:
    server = dev_servers(tmp_path / "data")
    first, second = Machine(tmp_path / "first", server.base_url), Machine(tmp_path / "second", server.base_url)
    registered = run_cli(
        ["register", "--api-url", server.base_url, "--email", "pair@example.test", "--name", "Pair"],
        config_dir=first.config_dir,
        cwd=first.home,
        env={**first.env, "NEXYSYNC_PASSWORD": PASSWORD},
    )
    registered.check_returncode()
    # Registering accepts the server's terms (the API requires it): the user is told so.
    assert f"accepts the terms of service of the NexySync server at {server.base_url}" in registered.stderr
    project = first.ok("projects", "create", "paired")
    # init makes a workspace folder that does not exist yet, and refuses a file in its place.
    api_dir = first.home / "code" / "api"
    first.ok("init", "--project", "paired", "--agent", "api", "--dir", str(api_dir))
    assert (api_dir / ".nexysync" / "key").is_file()
    (first.home / "a-file").write_text("x")
    in_the_way = first.run("init", "--project", "paired", "--agent", "api", "--dir", str(first.home / "a-file"))
    assert in_the_way.returncode == 1 and json.loads(in_the_way.stderr)["error"]["code"] == "NO_WORKSPACE"
    # Agent web exists (with a key only the first machine saw); pairing hands the second machine a new one.
    first.ok("agents", "create", "--project", "paired", "web")
    api = Client.from_key_file(api_dir / ".nexysync" / "key")
    before = api.messages.send("web", topic="before", payload="sent before the second machine joined")

    # Offer and accept, the new machine with no sign-in and a workspace that does not exist yet.
    offering, announced = first.offer("--project", "paired", "--agent", "web")
    assert announced["code"].split("-")[0] == announced["number"] and len(announced["code"].split("-")) == 4
    web_dir = second.home / "code" / "web"
    accepted = second.ok("pair", "accept", announced["code"], "--dir", str(web_dir), "--name", "laptop")
    code, offered = outcome(offering)
    assert code == 0 and offered["ok"] and accepted["ok"]
    assert offered["verification"] == accepted["verification"] and offered["device_id"] == accepted["device_id"]
    key_path = web_dir / ".nexysync" / "key"
    assert key_path.stat().st_mode & 0o777 == 0o600
    assert ".nexysync/" in (web_dir / ".gitignore").read_text()
    web = Client.from_key_file(key_path)
    assert web.messages.get(before.id).payload == "sent before the second machine joined"

    # A wrong code fails, and burns the slot: the right code then fails too.
    offering, announced = first.offer("--project", "paired")
    number = announced["number"]
    # A workspace that has a key file already is refused before the code is used.
    taken = second.run("pair", "accept", announced["code"], "--dir", str(web_dir))
    assert taken.returncode == 1 and json.loads(taken.stdout)["error"]["code"] == "KEY_FILE_EXISTS"
    wrong = second.run("pair", "accept", f"{number}-abandon-ability-able", "--dir", str(second.home / "x"))
    assert wrong.returncode == 1 and json.loads(wrong.stdout)["error"]["code"] == "WRONG_CODE"
    right = second.run("pair", "accept", announced["code"], "--dir", str(second.home / "x"))
    assert right.returncode == 1 and json.loads(right.stdout)["error"]["code"] == "PAIRING_USED"
    code, offered = outcome(offering)
    assert code == 1 and offered["error"]["code"] == "WRONG_CODE"
    assert not (second.home / "x" / ".nexysync" / "key").exists()

    # An expired code fails on both sides.
    offering, announced = first.offer("--project", "paired", "--ttl", "1")
    time.sleep(1.5)
    late = second.run("pair", "accept", announced["code"], "--dir", str(second.home / "y"))
    assert late.returncode == 1 and json.loads(late.stdout)["error"]["code"] == "PAIRING_EXPIRED"
    code, offered = outcome(offering)
    assert code == 1 and offered["error"]["code"] == "PAIRING_EXPIRED"

    # A rotation on the first machine reaches the second, with nothing copied: its running MCP
    # server takes it from the stream event, and `keys sync` brings the CLI's own copy up to date.
    rotated, sent_by_mcp = asyncio.run(rotate_under_a_running_mcp(first, web_dir))
    assert accepted["device_id"] in rotated["devices_sealed"] and rotated["devices_skipped"] == []
    synced = second.ok("keys", "sync")
    assert synced == [{"project_id": project["id"], "keys_added": 1, "key_id": rotated["key_id"]}]
    assert key_id(load_key_file(key_path).keys[-1]) == rotated["key_id"]
    api = Client.from_key_file(api_dir / ".nexysync" / "key")
    after = api.messages.send("web", topic="after", payload="sealed with the new key")
    stored_headers = {"Authorization": f"Bearer {load_key_file(api_dir / '.nexysync' / 'key').api_key}"}
    stored = httpx.get(f"{server.base_url}/v1/messages/{after.id}", headers=stored_headers).json()
    assert stored["payload"].split(".")[1] == rotated["key_id"]  # the envelope names the new key
    by_mcp = httpx.get(f"{server.base_url}/v1/messages/{sent_by_mcp}", headers=stored_headers).json()
    assert by_mcp["payload"].split(".")[1] == rotated["key_id"]  # the running MCP server encrypts with it
    assert Client.from_key_file(key_path).messages.get(after.id).payload == "sealed with the new key"

    # A revoked device gets no later key: its token is dead, and the new key was sealed without it.
    devices = first.ok("devices", "list", "--project", "paired")
    assert {device["name"] for device in devices} >= {"laptop"} and all(device["attested"] for device in devices)
    revoked = first.ok("devices", "revoke", accepted["device_id"], "--project", "paired")
    assert revoked["rotated"] and accepted["device_id"] not in revoked["devices_sealed"]
    refused = second.run("keys", "sync")
    assert refused.returncode == 1 and json.loads(refused.stderr)["error"]["code"] == "DEVICE_REVOKED"
    assert revoked["key_id"] not in {key_id(key) for key in load_key_file(key_path).keys}

    # Neither the keys nor the agent's API key reached the database files or the server's logs.
    secrets_used = {f"key {key_id(key)}": key for key in load_key_file(api_dir / ".nexysync" / "key").keys}
    web_api_key = load_key_file(key_path).api_key
    needles = {
        f"{name} as {form}": value for name, key in secrets_used.items() for form, value in key_forms(key).items()
    }
    needles["web's API key"] = web_api_key.encode()
    deadline = time.monotonic() + 30
    project_marker = {"project id": project["id"].encode()}
    while not files_holding(Path(server.data_dir), project_marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert files_holding(Path(server.data_dir), project_marker), "the project never reached the data files"
    assert files_holding(api_dir, needles), "the scan must find the keys where they are (the key file)"
    leaks = {
        f"{where}: {name}": found
        for where in (Path(server.data_dir), Path(server.stdout_path).parent)
        for name, found in files_holding(where, needles).items()
    }
    assert leaks == {}, f"secrets found on the server's side: {leaks}"
