"""The whole first-day flow against a real ``nexysync-server dev``: two agents talk, encrypted.

Also: one project's agents and owner can reach nothing of another project, and the database
file holds no plaintext of what the agents sent.
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexysync.crypto import KeyRing, new_key

pytestmark = pytest.mark.e2e


class Agent:
    """An agent as the SDK will be: an API key, the project key ring, and plaintext in and out."""

    def __init__(self, base_url: str, project_id: str, api_key: str, ring: KeyRing) -> None:
        self.project_id = project_id
        self.ring = ring
        self.http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=10)

    def seal(self, message_id: str, field: str, text: str) -> str:
        return self.ring.encrypt(
            text.encode(), project_id=self.project_id, kind="message", record_id=message_id, field=field
        )

    def open(self, message: dict[str, Any], field: str) -> str:
        return self.ring.decrypt(
            message[field], project_id=self.project_id, kind="message", record_id=message["id"], field=field
        ).decode()

    def send(self, *, topic: str, payload: str, to: str | None = None, reply_to: str | None = None) -> dict[str, Any]:
        message_id = _ulid()
        body: dict[str, Any] = {
            "id": message_id,
            "type": "response" if reply_to else "request",
            "topic": self.seal(message_id, "topic", topic),
            "payload": self.seal(message_id, "payload", payload),
        }
        if to is None:
            body["broadcast"] = True
        else:
            body["to"] = to
        if reply_to:
            body["reply_to"] = reply_to
        response = self.http.post("/v1/messages", json=body)
        assert response.status_code == 201, response.text
        assert response.headers["Location"] == f"/v1/messages/{message_id}"
        return response.json()


def _ulid() -> str:
    # Client-made ids are ULIDs; the SDK has its own generator, the server checks only the shape.
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    return "0" + "".join(secrets.choice(alphabet) for _ in range(25))


class Owner:
    """A human account driving the management API."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=10)
        email = f"owner-{secrets.token_hex(4)}@example.test"
        response = self.http.post(
            "/v1/auth/register",
            json={"email": email, "name": "Owner", "password": "correct horse battery", "tos_accepted": True},
        )
        assert response.status_code == 201, response.text
        self.http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def project(self, name: str) -> str:
        response = self.http.post("/v1/projects", json={"name": name})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def agent(self, project_id: str, slug: str, ring: KeyRing) -> tuple[Agent, str]:
        response = self.http.post(f"/v1/projects/{project_id}/agents", json={"slug": slug, "name": slug.title()})
        assert response.status_code == 201, response.text
        created = response.json()
        return Agent(self.base_url, project_id, created["api_key"], ring), created["agent"]["id"]


@pytest.fixture(scope="module")
def team(dev_server: Any) -> dict[str, Any]:
    owner = Owner(dev_server.base_url)
    project_id = owner.project("payments")
    ring = KeyRing([new_key()])
    alice, _ = owner.agent(project_id, "alice", ring)
    bob, bob_id = owner.agent(project_id, "bob", ring)
    return {"owner": owner, "project_id": project_id, "alice": alice, "bob": bob, "bob_id": bob_id}


def test_two_agents_talk_through_a_thread(team: dict[str, Any]) -> None:
    alice, bob = team["alice"], team["bob"]
    question = alice.send(to="bob", topic="schema question", payload="Which table holds refunds?")

    inbox = bob.http.get("/v1/messages", params={"status": "unread"}).json()["data"]
    received = next(m for m in inbox if m["id"] == question["id"])
    assert received["from"] == "alice"
    assert bob.open(received, "payload") == "Which table holds refunds?"
    assert bob.open(received, "topic") == "schema question"

    answer = bob.send(to="alice", topic="re: schema question", payload="ledger_refunds", reply_to=question["id"])
    thread = alice.http.get(f"/v1/messages/{answer['id']}/thread").json()
    assert thread["root_id"] == question["id"]
    assert [m["id"] for m in thread["data"]] == [question["id"], answer["id"]]
    assert alice.open(thread["data"][1], "payload") == "ledger_refunds"

    acked = bob.http.post("/v1/messages/ack", json={"ids": [question["id"]]}).json()
    assert acked == {"acked": [question["id"]], "not_found": []}
    assert question["id"] in [m["id"] for m in bob.http.get("/v1/messages", params={"status": "acked"}).json()["data"]]
    assert question["id"] not in [
        m["id"] for m in bob.http.get("/v1/messages", params={"status": "unread"}).json()["data"]
    ]


def test_broadcast_reaches_everyone_but_the_sender(team: dict[str, Any]) -> None:
    alice, bob = team["alice"], team["bob"]
    sent = alice.send(topic="deploy", payload="freeze until 5pm")
    assert sent["broadcast"] is True and sent["to"] is None
    assert sent["id"] in [m["id"] for m in bob.http.get("/v1/messages").json()["data"]]
    assert sent["id"] not in [m["id"] for m in alice.http.get("/v1/messages").json()["data"]]


def test_resend_with_same_id_is_idempotent_and_a_changed_body_conflicts(team: dict[str, Any]) -> None:
    alice = team["alice"]
    message_id = _ulid()
    body = {
        "id": message_id,
        "to": "bob",
        "type": "notification",
        "topic": alice.seal(message_id, "topic", "t"),
        "payload": alice.seal(message_id, "payload", "p"),
    }
    first = alice.http.post("/v1/messages", json=body)
    again = alice.http.post("/v1/messages", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    changed = alice.http.post("/v1/messages", json={**body, "payload": alice.seal(message_id, "payload", "q")})
    assert changed.status_code == 409
    assert changed.headers["content-type"] == "application/problem+json"
    assert changed.json()["code"] == "ID_CONFLICT"
    inbox_ids = [m["id"] for m in team["bob"].http.get("/v1/messages", params={"limit": 200}).json()["data"]]
    assert inbox_ids.count(message_id) == 1


def test_plaintext_content_is_refused_and_nothing_is_stored(team: dict[str, Any]) -> None:
    alice, bob = team["alice"], team["bob"]
    before = len(bob.http.get("/v1/messages", params={"limit": 200}).json()["data"])
    response = alice.http.post(
        "/v1/messages", json={"to": "bob", "type": "request", "topic": "hello", "payload": "in clear"}
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "VALIDATION_FAILED"
    assert {e["field"] for e in problem["errors"]} == {"topic", "payload"}
    assert len(bob.http.get("/v1/messages", params={"limit": 200}).json()["data"]) == before


def test_rotated_key_fails_at_once(team: dict[str, Any], dev_server: Any) -> None:
    owner, bob = team["owner"], team["bob"]
    assert bob.http.get("/v1/me").status_code == 200
    rotated = owner.http.post(f"/v1/projects/{team['project_id']}/agents/{team['bob_id']}/rotate-key")
    assert rotated.status_code == 200
    refused = bob.http.get("/v1/me")
    assert refused.status_code == 401
    assert refused.json()["code"] == "INVALID_API_KEY"
    new_bob = Agent(dev_server.base_url, team["project_id"], rotated.json()["api_key"], bob.ring)
    assert new_bob.http.get("/v1/me").json()["agent"]["slug"] == "bob"
    team["bob"] = new_bob


def test_another_project_can_reach_nothing(team: dict[str, Any], dev_server: Any) -> None:
    alice, owner = team["alice"], team["owner"]
    secret = alice.send(to="bob", topic="private", payload="only for bob")

    stranger_owner = Owner(dev_server.base_url)
    other_project = stranger_owner.project("elsewhere")
    mallory, _ = stranger_owner.agent(other_project, "mallory", KeyRing([new_key()]))
    # Same slug as the victim's agent: slugs are per project and must not cross over.
    stranger_owner.agent(other_project, "bob", KeyRing([new_key()]))

    for method, path, body in [
        ("GET", f"/v1/messages/{secret['id']}", None),
        ("GET", f"/v1/messages/{secret['id']}/thread", None),
        ("POST", f"/v1/messages/{secret['id']}/reactions", {"emoji": "eyes"}),
        ("PUT", f"/v1/messages/{secret['id']}/pin", None),
    ]:
        response = mallory.http.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["code"] == "MESSAGE_NOT_FOUND"
    assert mallory.http.post("/v1/messages/ack", json={"ids": [secret["id"]]}).json()["not_found"] == [secret["id"]]
    assert secret["id"] not in [m["id"] for m in mallory.http.get("/v1/messages").json()["data"]]
    slugs = [a["slug"] for a in mallory.http.get("/v1/agents").json()["data"]]
    assert sorted(slugs) == ["bob", "mallory"]
    reply = mallory.http.post(
        "/v1/messages",
        json={
            "to": "mallory",
            "type": "response",
            "reply_to": secret["id"],
            "topic": mallory.seal("x", "topic", "x"),
            "payload": mallory.seal("x", "payload", "x"),
        },
    )
    assert reply.status_code == 404 and reply.json()["code"] == "REPLY_TO_NOT_FOUND"

    victim_project = team["project_id"]
    for method, path in [
        ("GET", f"/v1/projects/{victim_project}"),
        ("GET", f"/v1/projects/{victim_project}/usage"),
        ("GET", f"/v1/projects/{victim_project}/agents"),
        ("PATCH", f"/v1/projects/{victim_project}"),
        ("DELETE", f"/v1/projects/{victim_project}?confirm=true"),
    ]:
        body = {"name": "taken"} if method == "PATCH" else None
        response = stranger_owner.http.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
    bob_id = team["bob_id"]
    cloned = owner.http.post(
        f"/v1/projects/{victim_project}/agents/{bob_id}/clone", json={"target_project_id": other_project}
    )
    assert cloned.status_code == 403
    assert cloned.json()["code"] == "TARGET_PROJECT_FORBIDDEN"
    assert owner.http.get(f"/v1/projects/{victim_project}").json()["name"] == "payments"


def test_database_file_holds_no_plaintext(team: dict[str, Any], dev_server: Any) -> None:
    marker = f"PLAINTEXT-MARKER-{secrets.token_hex(8)}"
    team["alice"].send(to="bob", topic=f"topic {marker}", payload=f"payload {marker}")
    stored = b"".join(path.read_bytes() for path in Path(dev_server.data_dir).rglob("*") if path.is_file())
    # The scan must be able to find what is really stored, or its silence would prove nothing.
    assert team["project_id"].encode() in stored
    assert marker.encode() not in stored
    assert base64.b64encode(marker.encode()) not in stored


def test_clone_puts_the_agent_in_another_project_with_its_own_key(team: dict[str, Any], dev_server: Any) -> None:
    owner = team["owner"]
    target = owner.project("payments-staging")
    cloned = owner.http.post(
        f"/v1/projects/{team['project_id']}/agents/{team['bob_id']}/clone", json={"target_project_id": target}
    )
    assert cloned.status_code == 201, cloned.text
    created = cloned.json()
    assert created["agent"]["project_id"] == target
    assert created["agent"]["slug"] == "bob"
    assert cloned.headers["Location"] == f"/v1/projects/{target}/agents/{created['agent']['id']}"
    clone = Agent(dev_server.base_url, target, created["api_key"], KeyRing([new_key()]))
    assert clone.http.get("/v1/me").json()["project_id"] == target
    again = owner.http.post(
        f"/v1/projects/{team['project_id']}/agents/{team['bob_id']}/clone", json={"target_project_id": target}
    )
    assert again.status_code == 409
    assert again.json()["code"] == "SLUG_TAKEN"
