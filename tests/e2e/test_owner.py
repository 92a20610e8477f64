"""The owner's read view of a whole project: every message and event as ciphertext, for the owner only."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from realtime_support import EventStream, Team

from nexysync import Client

pytestmark = pytest.mark.e2e


def _token(team: Team) -> str:
    return team.owner.headers["Authorization"].removeprefix("Bearer ")


def _send(team: Team, sender: str, to: str | None, **extra: Any) -> dict[str, Any]:
    body = {**team.body(to), **extra}
    sent = httpx.post(
        f"{team.base_url}/v1/messages", json=body, headers={"Authorization": f"Bearer {team.keys[sender]}"}
    )
    assert sent.status_code == 201, sent.text
    return body


def test_the_owner_lists_every_message_as_ciphertext_with_filters_and_paging(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice", "bob", "carol"])
    url = f"/v1/projects/{team.project_id}/messages"
    to_bob = _send(team, "alice", "bob")
    to_carol = _send(team, "bob", "carol", type="request")
    everyone = _send(team, "carol", None)
    ids = [to_bob["id"], to_carol["id"], everyone["id"]]

    first = team.owner.get(url, params={"limit": 2}).json()
    rest = team.owner.get(url, params={"limit": 2, "cursor": first["next_cursor"]}).json()
    listed = first["data"] + rest["data"]
    assert [m["id"] for m in listed] == ids and rest["next_cursor"] is None
    # What the server stored, byte for byte: the owner decrypts in the browser.
    assert listed[0]["topic"] == to_bob["topic"] and listed[0]["payload"] == to_bob["payload"]
    assert all(m["status"] == "unread" for m in listed)

    def ids_for(**query: str) -> list[str]:
        page = team.owner.get(url, params=query)
        assert page.status_code == 200, page.text
        return [m["id"] for m in page.json()["data"]]

    assert ids_for(agent="alice") == [to_bob["id"], everyone["id"]]  # sent one, got the broadcast
    assert ids_for(agent="bob") == ids  # received one, sent one, got the broadcast
    assert ids_for(**{"from": "bob"}) == [to_carol["id"]]
    assert ids_for(type="request") == [to_carol["id"]]
    assert ids_for(agent="nobody") == []

    def read(team: Team, reader: str, message_id: str) -> None:
        got = httpx.get(
            f"{team.base_url}/v1/messages/{message_id}", headers={"Authorization": f"Bearer {team.keys[reader]}"}
        )
        assert got.status_code == 200

    # Another project's read and acked messages stay out of this project's lists.
    other = Team(dev_server.base_url, ["dave", "erin"])
    read(other, "erin", _send(other, "dave", "erin")["id"])
    read(team, "bob", to_bob["id"])
    assert ids_for(status="read") == [to_bob["id"]]
    assert ids_for(status="unread") == ids[1:]
    acked = httpx.post(
        f"{team.base_url}/v1/messages/ack",
        json={"ids": [to_carol["id"]]},
        headers={"Authorization": f"Bearer {team.keys['carol']}"},
    )
    assert acked.json()["acked"] == [to_carol["id"]]
    assert ids_for(status="acked") == [to_carol["id"]]
    assert ids_for(status="unread") == [everyone["id"]]
    assert ids_for(agent="bob", status="read") == [to_bob["id"]]
    assert ids_for(agent="bob", status="unread") == [everyone["id"]]
    assert ids_for(agent="carol", status="acked") == [to_carol["id"]]
    bob_view = team.owner.get(url, params={"agent": "bob"}).json()["data"]
    assert [m["status"] for m in bob_view] == ["read", "sent", "unread"]

    bad = team.owner.get(url, params={"status": "lost"})
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"


def test_only_the_owner_token_opens_the_owner_routes_and_opening_is_audited(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice"])
    stranger = Team(dev_server.base_url, [])
    project = team.project_id
    for path in ("messages", "stream", "presence", "kv", "refs", "files"):
        url = f"/v1/projects/{project}/{path}"
        params = {"max_duration_s": "0.1"} if path == "stream" else {}
        other = stranger.owner.get(url, params=params)
        assert other.status_code == 404 and other.json()["code"] == "PROJECT_NOT_FOUND", path
        agent = httpx.get(
            f"{team.base_url}{url}", params=params, headers={"Authorization": f"Bearer {team.keys['alice']}"}
        )
        assert agent.status_code == 401 and agent.json()["code"] == "WRONG_CREDENTIAL_KIND", path
        assert team.owner.get(url, params=params).status_code == 200, path

    team.owner.get(f"/v1/projects/{project}/messages", params={"limit": 1, "cursor": "01" + "0" * 24})
    actions = [e["action"] for e in team.owner.get(f"/v1/projects/{project}/audit").json()["data"]]
    # Opening the list (its first page) and the stream is on record; following a cursor is not.
    assert actions.count("owner.messages.read") == 1
    assert actions.count("owner.stream.open") == 1


async def test_the_owner_stream_carries_every_event_and_resumes_after_last_event_id(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice", "bob", "carol"])
    path = f"/v1/projects/{team.project_id}/stream"
    async with httpx.AsyncClient() as client:
        async with EventStream(team.base_url, _token(team), path=path) as stream:
            first = await team.send(client, "alice", "bob")
            second = await team.send(client, "bob", "carol")
            frames = await stream.messages(2)
        # Events addressed to other agents than any one: the owner sees them all, in order.
        assert [f.data["data"]["id"] for f in frames if f.data] == [first, second]
        third = await team.send(client, "carol", "alice")
        async with EventStream(team.base_url, _token(team), last_event_id=frames[0].id, path=path) as resumed:
            again = await resumed.messages(2)
        assert [f.data["data"]["id"] for f in again if f.data] == [second, third]


async def test_the_owner_reads_kv_refs_files_and_presence_of_the_whole_project(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice", "bob"])
    project = team.project_id
    alice = {"Authorization": f"Bearer {team.keys['alice']}"}
    value = team.ring.encrypt(b"v", project_id=project, kind="kv", record_id="cfg", field="value")
    assert httpx.put(f"{team.base_url}/v1/kv/cfg", json={"value": value}, headers=alice).status_code == 201
    ref_id = team.body(None)["id"]

    def seal(field: str) -> str:
        return team.ring.encrypt(b"x", project_id=project, kind="ref", record_id=ref_id, field=field)

    shared = httpx.post(
        f"{team.base_url}/v1/refs",
        json={"id": ref_id, "title": seal("title"), "content": seal("content"), "to": "bob"},
        headers=alice,
    )
    assert shared.status_code == 201, shared.text
    kv_page = team.owner.get(f"/v1/projects/{project}/kv").json()
    assert [(e["key"], e["value"]) for e in kv_page["data"]] == [("cfg", value)]
    # A reference meant for bob alone is still the owner's to see.
    assert [r["id"] for r in team.owner.get(f"/v1/projects/{project}/refs").json()["data"]] == [ref_id]
    assert team.owner.get(f"/v1/projects/{project}/files").json() == {"data": [], "next_cursor": None}
    async with EventStream(team.base_url, team.keys["bob"]):
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            online = team.owner.get(f"/v1/projects/{project}/presence").json()["data"]
            if any(p["agent"] == "bob" and p["via"] == "stream" for p in online):
                break
            assert asyncio.get_running_loop().time() < deadline, online
            await asyncio.sleep(0.05)


async def test_an_owner_stream_ends_when_its_access_token_would_have_expired(dev_servers: Any, tmp_path: Any) -> None:
    # Tokens live 5 s here; the stream the owner opened must not outlive its token's lifetime.
    server = dev_servers(tmp_path / "data", {"NEXYSYNC_ACCESS_TOKEN_TTL_S": "5"})
    team = Team(server.base_url, [])
    path = f"/v1/projects/{team.project_id}/stream"
    ended = False
    async with EventStream(team.base_url, _token(team), path=path) as stream:
        deadline = time.monotonic() + 30  # far past 5 s, far short of the hour a stream may last
        while not ended and time.monotonic() < deadline:
            try:
                await stream.frame(timeout=max(0.1, deadline - time.monotonic()))
            except EOFError:
                ended = True
            except TimeoutError:
                break
    assert ended, "the owner's stream outlived its access token"


def test_the_sdk_reads_the_owner_view_decrypted(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice", "bob"])
    sent = _send(team, "alice", "bob")
    owner = Client(base_url=team.base_url, key_ring=team.ring, project_id=team.project_id)
    owner.auth.login(email=team.email, password="realtime-pass")
    try:
        messages = list(owner.projects.messages(team.project_id, agent="bob"))
        assert [(m.id, m.topic, m.payload) for m in messages] == [(sent["id"], "realtime", "realtime")]
        assert [p.agent for p in owner.projects.presence(team.project_id).data] == ["alice"]  # seen sending
        assert list(owner.projects.kv(team.project_id)) == []
    finally:
        owner.close()


def test_the_owner_reads_a_messages_receipts_and_no_one_else_does(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice", "bob", "carol"])
    stranger = Team(dev_server.base_url, ["dave"])
    everyone = _send(team, "alice", None)
    read = httpx.get(
        f"{team.base_url}/v1/messages/{everyone['id']}", headers={"Authorization": f"Bearer {team.keys['bob']}"}
    )
    assert read.status_code == 200, read.text
    url = f"/v1/projects/{team.project_id}/messages/{everyone['id']}/receipts"

    got = team.owner.get(url)
    assert got.status_code == 200, got.text
    receipts = {r["agent"]: r for r in got.json()["data"]}
    assert {agent: r["state"] for agent, r in receipts.items()} == {"bob": "read", "carol": "queued"}
    assert receipts["bob"]["read_at"] is not None and receipts["carol"]["read_at"] is None
    # The agent endpoint gives the sender the same body.
    agent_view = httpx.get(
        f"{team.base_url}/v1/messages/{everyone['id']}/receipts",
        headers={"Authorization": f"Bearer {team.keys['alice']}"},
    )
    assert agent_view.json() == got.json()
    owner = Client(base_url=team.base_url)
    owner.auth.login(email=team.email, password="realtime-pass")
    try:
        sdk_view = owner.projects.message_receipts(team.project_id, everyone["id"])
        assert [(r.agent, r.state) for r in sdk_view.data] == [("bob", "read"), ("carol", "queued")]
    finally:
        owner.close()

    other = stranger.owner.get(url)
    assert other.status_code == 404 and other.json()["code"] == "PROJECT_NOT_FOUND"
    # Another project's message id, asked for under the owner's own project, is not found either.
    theirs = _send(stranger, "dave", None)["id"]
    missing = team.owner.get(f"/v1/projects/{team.project_id}/messages/{theirs}/receipts")
    assert missing.status_code == 404 and missing.json()["code"] == "MESSAGE_NOT_FOUND"
    agent = httpx.get(f"{team.base_url}{url}", headers={"Authorization": f"Bearer {team.keys['alice']}"})
    assert agent.status_code == 401 and agent.json()["code"] == "WRONG_CREDENTIAL_KIND"
