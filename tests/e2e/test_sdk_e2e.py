"""The SDK against a real ``nexysync-server dev``: two agents from key files talk, encrypted end to end."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexysync import (
    AsyncClient,
    AuthenticationError,
    Client,
    ConflictError,
    DecryptionError,
    KeyRing,
    NotFoundError,
    PreconditionFailedError,
    new_ulid,
)
from nexysync.crypto import new_key

pytestmark = pytest.mark.e2e


@dataclass
class Project:
    """A project made through the SDK's management plane, with key files for two agents."""

    base_url: str
    project_id: str
    owner: Client
    keys: dict[str, str]
    key_files: dict[str, Path]


def write_key_file(directory: Path, fields: dict[str, Any]) -> Path:
    """Write ``directory/.nexysync/key`` (mode 0600) and return its path."""
    path = directory / ".nexysync" / "key"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(fields))
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def project(dev_server: Any, tmp_path: Path) -> Iterator[Project]:
    """Register an owner, make a project and agents alice and bob, and write their key files."""
    owner = Client(base_url=dev_server.base_url)
    owner.auth.register(email=f"sdk-{secrets.token_hex(5)}@example.test", name="SDK owner", password="sdk-password")
    made = owner.projects.create(name="sdk e2e")
    enc_key = base64.b64encode(new_key()).decode()
    keys: dict[str, str] = {}
    files: dict[str, Path] = {}
    for slug in ("alice", "bob"):
        created = owner.project_agents.create(made.id, slug=slug, name=slug.title())
        keys[slug] = created.api_key
    # alice's file is the minimal one (the project id comes from GET /v1/me); bob's is complete.
    files["alice"] = write_key_file(
        tmp_path / "alice", {"api_key": keys["alice"], "enc_key": enc_key, "api_url": dev_server.base_url}
    )
    files["bob"] = write_key_file(
        tmp_path / "bob",
        {
            "api_key": keys["bob"],
            "enc_key": enc_key,
            "api_url": dev_server.base_url,
            "agent_name": "Bob",
            "custom_enc_key": False,
            "project_id": made.id,
            "keyring": [enc_key],
        },
    )
    yield Project(dev_server.base_url, made.id, owner, keys, files)
    owner.close()


def test_two_agents_exchange_encrypted_messages_through_the_sdk(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project.key_files["alice"].parent.parent)
    alice = Client.from_key_file()
    bob = Client.from_key_file(project.key_files["bob"])
    with alice, bob:
        sent = alice.messages.send(
            "bob", topic="Review PR #4", payload="The secret plan", type="request", metadata={"pr": 4}
        )
        assert alice.get_project_id() == project.project_id
        assert (sent.from_, sent.to, sent.payload, sent.metadata) == ("alice", "bob", "The secret plan", {"pr": 4})

        inbox = list(bob.messages.list(status="unread"))
        assert [(m.id, m.topic, m.payload, m.metadata) for m in inbox] == [
            (sent.id, "Review PR #4", "The secret plan", {"pr": 4})
        ]
        assert bob.messages.get(sent.id).payload == "The secret plan"

        reply = bob.messages.send(
            "alice", topic="Re: Review PR #4", payload="Approved", type="response", reply_to=sent.id
        )
        thread = alice.messages.thread(reply.id)
        assert thread.root_id == sent.id
        assert [m.payload for m in thread.data] == ["The secret plan", "Approved"]

        acked = bob.messages.ack([sent.id])
        assert [a.root for a in acked.acked] == [sent.id]
        assert [m.id for m in bob.messages.list(status="acked")] == [sent.id]
        assert bob.messages.react(sent.id, "👍").reactions[0].emoji == "👍"
        assert bob.messages.pin(sent.id).pinned is True
        assert bob.messages.unpin(sent.id).pinned is False
        assert {a.slug for a in bob.agents.list()} == {"alice", "bob"}
        assert bob.me.get().agent.slug == "bob"
        assert bob.events.list(after=0).last_seq >= 1
        assert bob.quota.get().project_id == project.project_id
        assert project.owner.projects.usage(project.project_id).messages_today >= 2
        with pytest.raises(NotFoundError) as caught:
            bob.messages.get(new_ulid())
        assert caught.value.code and caught.value.request_id

        raw = httpx.get(
            f"{project.base_url}/v1/messages/{sent.id}",
            headers={"Authorization": f"Bearer {project.keys['bob']}"},
            timeout=10,
        )
        assert raw.status_code == 200
        stored = raw.json()
        for field in ("topic", "payload", "metadata"):
            assert stored[field].startswith("v2.")
        assert "secret plan" not in raw.text and "Review PR" not in raw.text


class LoseFirstSendResponse(httpx.BaseTransport):
    """Forward requests to the server, but cut the connection after the first send was stored."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.sends: list[bytes] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if request.method == "POST" and request.url.path == "/v1/messages":
            self.sends.append(request.read())
            if len(self.sends) == 1:
                response.read()
                response.close()
                raise httpx.ReadError("connection cut after the server stored the message", request=request)
        return response

    def close(self) -> None:
        self._inner.close()


def test_a_send_whose_response_is_lost_is_retried_into_one_message(project: Project) -> None:
    transport = LoseFirstSendResponse()
    sleeps: list[float] = []
    alice = Client.from_key_file(
        project.key_files["alice"], http_client=httpx.Client(transport=transport), sleep=sleeps.append
    )
    with alice, Client.from_key_file(project.key_files["bob"]) as bob:
        sent = alice.messages.send("bob", topic="lost", payload="exactly once")
        assert len(transport.sends) == 2 and transport.sends[0] == transport.sends[1]
        assert len(sleeps) == 1
        assert [m.id for m in bob.messages.list() if m.topic == "lost"] == [sent.id]


def test_a_send_repeated_with_the_same_id_stores_one_message(project: Project) -> None:
    sleeps: list[float] = []
    alice = Client.from_key_file(project.key_files["alice"], sleep=sleeps.append)
    with alice, Client.from_key_file(project.key_files["bob"]) as bob:
        body = {"id": new_ulid(), "to": "bob", "type": "notification", "topic": "once", "payload": "exactly once"}
        first = alice.call("messages_send", body=body)
        assert (first.id, first.payload) == (body["id"], "exactly once")
        # The low-level call seals again with fresh nonces: the server sees another body, says so.
        with pytest.raises(ConflictError) as caught:
            alice.call("messages_send", body=body)
        assert caught.value.code == "ID_CONFLICT"
        assert sleeps == []
        # messages.send recognises its own message in plaintext and returns it.
        again = alice.messages.send("bob", topic="once", payload="exactly once", id=body["id"])
        assert (again.id, again.created_at) == (first.id, first.created_at)
        with pytest.raises(ConflictError):
            alice.messages.send("bob", topic="once", payload="something else", id=body["id"])
        assert [m.id for m in bob.messages.list() if m.topic == "once"] == [body["id"]]


def test_the_async_client_reads_what_the_sync_client_sent(project: Project) -> None:
    with Client.from_key_file(project.key_files["alice"]) as alice:
        sent = alice.messages.send("bob", topic="async", payload="hello from sync", metadata=["x"])

    async def read() -> list[tuple[str, Any]]:
        async with AsyncClient.from_key_file(project.key_files["bob"]) as bob:
            got = await bob.messages.get(sent.id)
            assert got.metadata == ["x"]
            return [(m.payload, m.metadata) async for m in bob.messages.list(limit=1)]

    assert ("hello from sync", ["x"]) in asyncio.run(read())


def test_a_message_made_with_another_project_key_is_skipped_and_reported_not_fatal(project: Project) -> None:
    alice_key = json.loads(project.key_files["alice"].read_text())["api_key"]
    wrong_ring = KeyRing([new_key()])  # alice was given another project key here
    with (
        Client.from_key_file(project.key_files["alice"]) as alice,
        Client(base_url=project.base_url, api_key=alice_key, key_ring=wrong_ring) as misconfigured,
        Client.from_key_file(project.key_files["bob"]) as bob,
    ):
        before = alice.messages.send("bob", topic="first", payload="readable")
        foreign = misconfigured.messages.send("bob", topic="foreign", payload="unreadable for bob")
        after = alice.messages.send("bob", topic="third", payload="readable too", reply_to=before.id)

        pager = bob.messages.list(status="unread", limit=2)  # across pages
        assert [(m.id, m.payload) for m in pager] == [(before.id, "readable"), (after.id, "readable too")]
        assert [(e.record, e.raw["from"]) for e in pager.undecryptable] == [(f"message/{foreign.id}", "alice")]
        assert "not in the key ring" in str(pager.undecryptable[0])
        thread = bob.messages.thread(after.id)
        assert [m.id for m in thread.data] == [before.id, after.id] and thread.undecryptable == []
        with pytest.raises(DecryptionError, match="not in the key ring"):
            bob.messages.get(foreign.id, mark_read=False)

    async def first_page() -> Any:
        async with AsyncClient.from_key_file(project.key_files["bob"]) as async_bob:
            return await async_bob.messages.list(status="unread").first_page()

    page = asyncio.run(first_page())
    assert [m.id for m in page.data] == [before.id, after.id]
    assert [e.record for e in page.undecryptable] == [f"message/{foreign.id}"]


def test_kv_round_trip_with_conditional_writes(project: Project) -> None:
    with (
        Client.from_key_file(project.key_files["alice"]) as alice,
        Client.from_key_file(project.key_files["bob"]) as bob,
    ):
        created = alice.kv.put("conventions.style", "black, 120 columns", if_none_match=True)
        assert created.version == 1
        assert bob.kv.get("conventions.style").value == "black, 120 columns"
        bob.kv.put("conventions.style", "ruff format", if_match=created.version)
        with pytest.raises(PreconditionFailedError):
            alice.kv.put("conventions.style", "stale", if_match=created.version)
        assert [(e.key, e.value) for e in alice.kv.list(prefix="conventions.")] == [
            ("conventions.style", "ruff format")
        ]
        raw = httpx.get(
            f"{project.base_url}/v1/kv/conventions.style",
            headers={"Authorization": f"Bearer {project.keys['bob']}"},
            timeout=10,
        )
        assert raw.json()["value"].startswith("v2.") and "ruff" not in raw.text
        alice.kv.delete("conventions.style")
        with pytest.raises(NotFoundError):
            bob.kv.get("conventions.style")


def test_the_management_plane_through_the_sdk(dev_server: Any) -> None:
    email = f"mgmt-{secrets.token_hex(5)}@example.test"
    with Client(base_url=dev_server.base_url) as owner:
        owner.auth.register(email=email, name="Manager", password="manager-pass")
        made = owner.projects.create(name="mgmt", default_ttl_hours=24)
        assert owner.projects.update(made.id, name="renamed").name == "renamed"
        assert made.id in {p.id for p in owner.projects.list()}
        agent = owner.project_agents.create(made.id, slug="worker", name="Worker", capabilities=["review"])
        assert owner.project_agents.update(made.id, agent.agent.id, role="reviewer").role == "reviewer"
        rotated = owner.project_agents.rotate_key(made.id, agent.agent.id)
        assert rotated.api_key != agent.api_key
        with Client(base_url=dev_server.base_url, api_key=agent.api_key) as stale, pytest.raises(AuthenticationError):
            stale.me.get()
        assert [a.slug for a in owner.project_agents.list(made.id)] == ["worker"]
        owner.project_agents.delete(made.id, agent.agent.id)
        owner.auth.refresh()
        owner.auth.logout()
        with pytest.raises(AuthenticationError):
            owner.projects.get(made.id)
        owner.auth.login(email=email, password="manager-pass")
        owner.projects.delete(made.id)
        with pytest.raises(NotFoundError):
            owner.projects.get(made.id)
