"""What a user of the API notices, beyond the main flow: accounts, projects, usage, agents and messages.

Every test runs against the session's real ``nexysync-server dev`` with its own fresh account, so
tests do not see each other's data.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from nexysync.crypto import KeyRing, new_key

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
PROBLEM_JSON = "application/problem+json"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
DEADLINE_S = 15.0
ONE_MIB = 1_048_576


# --- helpers -----------------------------------------------------------------------------------


def wait_for(condition: Callable[[], Any], what: str, deadline_s: float = DEADLINE_S) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``deadline_s`` seconds."""
    deadline = time.monotonic() + deadline_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not true within {deadline_s:g} s (last: {result!r})")
        time.sleep(0.05)


def ulid() -> str:
    """Make a client-side message id: the current millisecond, then 80 random bits (ULID layout)."""
    millis = time.time_ns() // 1_000_000
    head = "".join(CROCKFORD[(millis >> shift) & 31] for shift in range(45, -1, -5))
    return head + "".join(secrets.choice(CROCKFORD) for _ in range(16))


def email() -> str:
    """Return an email address no other test uses."""
    return f"user-{secrets.token_hex(6)}@example.test"


def when(text: str) -> datetime:
    """Parse an API timestamp."""
    return datetime.fromisoformat(text)


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Check that ``response`` is the problem+json error ``status``/``code`` and return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    problem = response.json()
    assert problem["code"] == code, problem
    assert problem["status"] == status
    assert problem["type"] and problem["title"]
    assert problem["request_id"]
    assert response.headers["X-Request-Id"] == problem["request_id"]
    return problem


def assert_needs_auth(response: httpx.Response, code: str) -> None:
    """Check a 401 that tells the client to authenticate with a bearer token."""
    assert_problem(response, 401, code)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


class Agent:
    """An agent: its API key, the project key ring, plaintext in and ciphertext on the wire."""

    def __init__(self, base_url: str, created: dict[str, Any], ring: KeyRing) -> None:
        self.id: str = created["agent"]["id"]
        self.project_id: str = created["agent"]["project_id"]
        self.slug: str = created["agent"]["slug"]
        self.api_key: str = created["api_key"]
        self.ring = ring
        self.http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=10)

    def seal(self, message_id: str, field: str, text: str) -> str:
        """Encrypt one field of a message."""
        return self.ring.encrypt(
            text.encode(), project_id=self.project_id, kind="message", record_id=message_id, field=field
        )

    def body(
        self, *, to: str | None = None, kind: str = "request", text: str = "hello", **extra: Any
    ) -> dict[str, Any]:
        """Build a send request to ``to`` (a broadcast when ``None``) with encrypted content."""
        message_id = ulid()
        body: dict[str, Any] = {
            "id": message_id,
            "type": kind,
            "topic": self.seal(message_id, "topic", f"topic of {text}"),
            "payload": self.seal(message_id, "payload", text),
        }
        if to is None:
            body["broadcast"] = True
        else:
            body["to"] = to
        body.update(extra)
        return body

    def send(
        self, *, to: str | None = None, kind: str = "request", text: str = "hello", **extra: Any
    ) -> dict[str, Any]:
        """Send a message and return it as stored."""
        response = self.http.post("/v1/messages", json=self.body(to=to, kind=kind, text=text, **extra))
        assert response.status_code == 201, response.text
        return response.json()

    def inbox(self, **params: Any) -> list[dict[str, Any]]:
        """Return the whole inbox (with ``params`` as filters), following every cursor."""
        messages: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = {**params, "limit": 200, **({"cursor": cursor} if cursor else {})}
            response = self.http.get("/v1/messages", params=query)
            assert response.status_code == 200, response.text
            page = response.json()
            messages += page["data"]
            cursor = page["next_cursor"]
            if cursor is None:
                return messages

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.http.close()


class Owner:
    """A freshly registered human account driving the management API."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.email = email()
        self.http = httpx.Client(base_url=base_url, timeout=10)
        response = self.http.post(
            "/v1/auth/register", json={"email": self.email, "name": "Owner", "password": PASSWORD, "tos_accepted": True}
        )
        assert response.status_code == 201, response.text
        self.tokens = response.json()
        self.user_id = self.tokens["user"]["id"]
        self.http.headers["Authorization"] = f"Bearer {self.tokens['access_token']}"
        self.agents: list[Agent] = []

    def project(self, name: str = "project", **extra: Any) -> dict[str, Any]:
        """Create a project and return it."""
        response = self.http.post("/v1/projects", json={"name": name, **extra})
        assert response.status_code == 201, response.text
        return response.json()

    def create_agent(self, project_id: str, slug: str, **extra: Any) -> httpx.Response:
        """Ask to create an agent; return the raw response."""
        return self.http.post(f"/v1/projects/{project_id}/agents", json={"slug": slug, "name": slug.title(), **extra})

    def agent(self, project_id: str, slug: str, ring: KeyRing | None = None) -> Agent:
        """Create an agent and return it ready to talk."""
        response = self.create_agent(project_id, slug)
        assert response.status_code == 201, response.text
        agent = Agent(self.base_url, response.json(), ring or KeyRing([new_key()]))
        self.agents.append(agent)
        return agent

    def usage(self, project_id: str) -> dict[str, Any]:
        """Return the project's usage."""
        response = self.http.get(f"/v1/projects/{project_id}/usage")
        assert response.status_code == 200, response.text
        return response.json()

    def close(self) -> None:
        """Close every HTTP connection pool this owner opened."""
        for agent in self.agents:
            agent.close()
        self.http.close()


@pytest.fixture
def new_owner(dev_server: Any) -> Iterator[Callable[[], Owner]]:
    """Register fresh accounts on demand; close their connections after the test."""
    owners: list[Owner] = []

    def make() -> Owner:
        owner = Owner(dev_server.base_url)
        owners.append(owner)
        return owner

    yield make
    for owner in owners:
        owner.close()


@pytest.fixture
def owner(new_owner: Callable[[], Owner]) -> Owner:
    """A fresh account."""
    return new_owner()


@pytest.fixture
def team(owner: Owner) -> dict[str, Any]:
    """A fresh project with agents alice, bob and carol sharing one key ring."""
    project = owner.project("team")
    ring = KeyRing([new_key()])
    return {
        "owner": owner,
        "project": project,
        **{slug: owner.agent(project["id"], slug, ring) for slug in ("alice", "bob", "carol")},
    }


@pytest.fixture
def anon(dev_server: Any) -> Iterator[httpx.Client]:
    """An HTTP client without credentials."""
    with httpx.Client(base_url=dev_server.base_url, timeout=10) as client:
        yield client


# --- accounts ----------------------------------------------------------------------------------


def _register(client: httpx.Client, address: str, password: str = PASSWORD) -> httpx.Response:
    return client.post(
        "/v1/auth/register", json={"email": address, "name": "Someone", "password": password, "tos_accepted": True}
    )


def test_register_returns_working_tokens_and_the_user(anon: httpx.Client) -> None:
    address = email()
    response = _register(anon, address)

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["token_type"] == "Bearer"
    assert created["expires_in"] > 0
    assert len(created["refresh_token"]) == 43
    assert created["user"]["email"] == address
    assert created["user"]["name"] == "Someone"
    assert abs(when(created["user"]["created_at"]) - datetime.now(UTC)) < timedelta(minutes=1)
    projects = anon.get("/v1/projects", headers={"Authorization": f"Bearer {created['access_token']}"})
    assert projects.status_code == 200
    assert projects.json() == {"data": [], "next_cursor": None}


def test_duplicate_email_in_any_case_is_refused(anon: httpx.Client) -> None:
    address = email()
    assert _register(anon, address).status_code == 201

    for duplicate in (address, address.upper(), address.capitalize()):
        assert_problem(_register(anon, duplicate, "another password"), 409, "EMAIL_TAKEN")
    # The first account keeps its password.
    assert anon.post("/v1/auth/login", json={"email": address, "password": PASSWORD}).status_code == 200


def test_login_failures_look_the_same_for_wrong_password_and_unknown_email(anon: httpx.Client) -> None:
    address = email()
    assert _register(anon, address).status_code == 201

    wrong_password = anon.post("/v1/auth/login", json={"email": address, "password": "not the password"})
    unknown_email = anon.post("/v1/auth/login", json={"email": email(), "password": PASSWORD})

    first = assert_problem(wrong_password, 401, "INVALID_CREDENTIALS")
    second = assert_problem(unknown_email, 401, "INVALID_CREDENTIALS")
    assert {k: v for k, v in first.items() if k != "request_id"} == {
        k: v for k, v in second.items() if k != "request_id"
    }
    assert wrong_password.headers["WWW-Authenticate"] == unknown_email.headers["WWW-Authenticate"]
    good = anon.post("/v1/auth/login", json={"email": address.upper(), "password": PASSWORD})
    assert good.status_code == 200, good.text
    assert good.json()["user"]["email"] == address


def _refresh(client: httpx.Client, token: str) -> httpx.Response:
    return client.post("/v1/auth/refresh", json={"refresh_token": token})


def test_refresh_rotates_the_pair_and_the_old_token_dies(anon: httpx.Client) -> None:
    first = _register(anon, email()).json()

    response = _refresh(anon, first["refresh_token"])

    assert response.status_code == 200, response.text
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["user"] == first["user"]
    me = anon.get("/v1/projects", headers={"Authorization": f"Bearer {second['access_token']}"})
    assert me.status_code == 200
    assert _refresh(anon, first["refresh_token"]).status_code == 401


def test_reusing_a_refresh_token_revokes_its_whole_family(anon: httpx.Client) -> None:
    login = _register(anon, email()).json()
    used = login["refresh_token"]
    newest = _refresh(anon, used).json()["refresh_token"]
    other_login = anon.post("/v1/auth/login", json={"email": login["user"]["email"], "password": PASSWORD}).json()

    assert_needs_auth(_refresh(anon, used), "REFRESH_TOKEN_REUSED")
    # The thief and the owner alike must sign in again: the newest token of the family is dead.
    assert_needs_auth(_refresh(anon, newest), "INVALID_REFRESH_TOKEN")
    # Another login is another family, and survives.
    assert _refresh(anon, other_login["refresh_token"]).status_code == 200


def test_logout_kills_the_family(anon: httpx.Client) -> None:
    login = _register(anon, email()).json()
    current = _refresh(anon, login["refresh_token"]).json()["refresh_token"]

    assert anon.post("/v1/auth/logout", json={"refresh_token": current}).status_code == 204

    response = _refresh(anon, current)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_JSON
    # Logging out with a token nobody knows reveals nothing.
    unknown = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    assert anon.post("/v1/auth/logout", json={"refresh_token": unknown}).status_code == 204


def test_tampered_foreign_expired_and_garbage_jwts_are_refused(anon: httpx.Client, dev_server: Any) -> None:
    victim = _register(anon, email()).json()
    attacker = _register(anon, email()).json()
    header, payload, signature = attacker["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = victim["user"]["id"]
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    tampered = f"{header}.{forged_payload}.{signature}"
    foreign = jwt.encode(claims, "some-other-secret-0123456789abcdef0123", algorithm="HS256")
    real_secret = (Path(dev_server.data_dir) / "jwt_secret").read_text().strip()
    expired = jwt.encode(
        {**claims, "iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, real_secret, algorithm="HS256"
    )
    not_access = jwt.encode({**claims, "typ": "refresh"}, real_secret, algorithm="HS256")

    for token, code in [
        (tampered, "INVALID_TOKEN"),
        (foreign, "INVALID_TOKEN"),
        (expired, "TOKEN_EXPIRED"),
        (not_access, "INVALID_TOKEN"),
        ("not.a.jwt", "INVALID_TOKEN"),
    ]:
        response = anon.get("/v1/projects", headers={"Authorization": f"Bearer {token}"})
        assert_needs_auth(response, code)
    assert_needs_auth(anon.get("/v1/projects"), "MISSING_CREDENTIALS")
    assert_needs_auth(
        anon.get("/v1/projects", headers={"Authorization": f"Basic {victim['access_token']}"}), "MISSING_CREDENTIALS"
    )


def test_each_credential_works_only_where_it_belongs(team: dict[str, Any], anon: httpx.Client) -> None:
    owner, alice = team["owner"], team["alice"]
    agent_key = {"Authorization": f"Bearer {alice.api_key}"}
    human_token = {"Authorization": f"Bearer {owner.tokens['access_token']}"}

    assert_needs_auth(anon.get("/v1/projects", headers=agent_key), "WRONG_CREDENTIAL_KIND")
    assert_needs_auth(
        anon.get(f"/v1/projects/{team['project']['id']}/agents", headers=agent_key), "WRONG_CREDENTIAL_KIND"
    )
    assert_needs_auth(anon.get("/v1/me", headers=human_token), "INVALID_API_KEY")
    assert_needs_auth(anon.get("/v1/messages", headers=human_token), "INVALID_API_KEY")
    assert anon.get("/v1/me", headers=agent_key).status_code == 200


# --- projects ----------------------------------------------------------------------------------


def test_projects_list_pages_through_every_project_once_in_order(owner: Owner) -> None:
    created = []
    for number in range(5):
        response = owner.http.post("/v1/projects", json={"name": f"p{number}"})
        assert response.status_code == 201, response.text
        project = response.json()
        assert response.headers["Location"] == f"/v1/projects/{project['id']}"
        assert project["owner_id"] == owner.user_id
        assert project["default_ttl_hours"] == 168
        created.append(project)

    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        response = owner.http.get("/v1/projects", params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 10, "the cursor never ends"

    assert [len(page) for page in pages] == [2, 2, 1]
    assert [project for page in pages for project in page] == created


def test_patch_renames_a_project(owner: Owner) -> None:
    project = owner.project("before")

    response = owner.http.patch(f"/v1/projects/{project['id']}", json={"name": "after"})

    assert response.status_code == 200, response.text
    assert response.json()["name"] == "after"
    assert when(response.json()["updated_at"]) >= when(project["updated_at"])
    assert owner.http.get(f"/v1/projects/{project['id']}").json()["name"] == "after"
    assert [p["name"] for p in owner.http.get("/v1/projects").json()["data"]] == ["after"]
    assert_problem(owner.http.patch(f"/v1/projects/{project['id']}", json={}), 422, "VALIDATION_FAILED")
    assert_problem(
        owner.http.patch(f"/v1/projects/{project['id']}", json={"default_ttl_hours": 0}), 422, "VALIDATION_FAILED"
    )


def _lifetime(message: dict[str, Any]) -> timedelta:
    return when(message["expires_at"]) - when(message["created_at"])


def test_message_retention_follows_the_project_ttl(owner: Owner) -> None:
    project = owner.project("retention")
    response = owner.http.patch(f"/v1/projects/{project['id']}", json={"default_ttl_hours": 2})
    assert response.status_code == 200, response.text
    assert response.json()["default_ttl_hours"] == 2
    alice = owner.agent(project["id"], "alice")
    owner.agent(project["id"], "bob")

    # A project that never sent before: the new TTL holds for its very first message.
    assert _lifetime(alice.send(to="bob")) == timedelta(hours=2)

    assert owner.http.patch(f"/v1/projects/{project['id']}", json={"default_ttl_hours": 5}).status_code == 200
    # The server may cache the TTL for a few seconds per process: later sends must pick it up.
    wait_for(lambda: _lifetime(alice.send(to="bob")) == timedelta(hours=5), "sends use the new TTL")

    defaulted = owner.project("defaults")
    carol = owner.agent(defaulted["id"], "carol")
    owner.agent(defaulted["id"], "dave")
    assert _lifetime(carol.send(to="dave")) == timedelta(hours=168)


def test_delete_project_needs_confirmation_then_removes_everything(owner: Owner) -> None:
    project = owner.project("doomed")
    alice, bob = owner.agent(project["id"], "alice"), owner.agent(project["id"], "bob")
    sent = alice.send(to="bob")
    path = f"/v1/projects/{project['id']}"

    assert_problem(owner.http.delete(path), 400, "CONFIRMATION_REQUIRED")
    assert_problem(owner.http.delete(path, params={"confirm": "false"}), 400, "CONFIRMATION_REQUIRED")
    assert owner.http.get(path).status_code == 200
    assert bob.http.get(f"/v1/messages/{sent['id']}").status_code == 200
    assert owner.usage(project["id"])["agents"] == 2

    assert owner.http.delete(path, params={"confirm": "true"}).status_code == 204

    assert_problem(owner.http.get(path), 404, "PROJECT_NOT_FOUND")
    assert_problem(owner.http.get(f"{path}/usage"), 404, "PROJECT_NOT_FOUND")
    assert_problem(owner.http.get(f"{path}/agents"), 404, "PROJECT_NOT_FOUND")
    assert_problem(owner.http.delete(path, params={"confirm": "true"}), 404, "PROJECT_NOT_FOUND")
    assert_needs_auth(alice.http.get("/v1/me"), "INVALID_API_KEY")
    assert_needs_auth(bob.http.get("/v1/messages"), "INVALID_API_KEY")
    assert project["id"] not in [p["id"] for p in owner.http.get("/v1/projects").json()["data"]]


# --- usage -------------------------------------------------------------------------------------


def test_usage_counts_todays_messages_and_agents(team: dict[str, Any]) -> None:
    owner, alice, bob = team["owner"], team["alice"], team["bob"]
    project_id = team["project"]["id"]
    first = owner.usage(project_id)
    assert first["messages_today"] == 0
    assert first["agents"] == 3

    body = alice.body(to="bob")
    assert alice.http.post("/v1/messages", json=body).status_code == 201
    # An idempotent retry is the same message: it must not count twice.
    assert alice.http.post("/v1/messages", json=body).status_code == 200
    alice.send()  # a broadcast is one message, whoever receives it
    for _ in range(3):
        bob.send(to="alice")

    usage = wait_for(
        lambda: (u := owner.usage(project_id))["messages_today"] == 5 and u, "usage shows 5 messages today"
    )
    assert usage["project_id"] == project_id
    assert usage["day"] == datetime.now(UTC).strftime("%Y-%m-%d")
    assert usage["agents"] == 3
    assert usage["messages_per_day_limit"] > 0
    assert usage["agents_limit"] > 0
    assert usage["storage_limit_bytes"] > 0
    assert usage["storage_bytes"] >= 0
    # Another project's sends are not counted here.
    other = owner.project("other")
    dave = owner.agent(other["id"], "dave")
    owner.agent(other["id"], "erin")
    dave.send(to="erin")
    wait_for(lambda: owner.usage(other["id"])["messages_today"] == 1, "the other project counts its own send")
    assert owner.usage(project_id)["messages_today"] == 5


# --- agents ------------------------------------------------------------------------------------


def test_created_agent_gets_a_key_shown_once(owner: Owner) -> None:
    project = owner.project()

    response = owner.create_agent(project["id"], "build-bot", role="builds", capabilities=["python", "ci"])

    assert response.status_code == 201, response.text
    created = response.json()
    agent, api_key = created["agent"], created["api_key"]
    assert response.headers["Location"] == f"/v1/projects/{project['id']}/agents/{agent['id']}"
    assert re.fullmatch(r"nsync_build-bot_[0-9a-f]{40}", api_key)
    assert api_key.startswith(agent["key_prefix"])
    assert len(agent["key_prefix"]) < len(api_key)
    assert (agent["slug"], agent["role"], agent["capabilities"]) == ("build-bot", "builds", ["python", "ci"])
    assert agent["last_seen_at"] is None
    listing = owner.http.get(f"/v1/projects/{project['id']}/agents")
    assert listing.status_code == 200
    assert [a["id"] for a in listing.json()["data"]] == [agent["id"]]
    assert api_key[-40:] not in listing.text and "api_key" not in listing.text
    assert "key_hash" not in listing.text


def test_duplicate_slug_in_a_project_conflicts(owner: Owner) -> None:
    project = owner.project()
    assert owner.create_agent(project["id"], "alice").status_code == 201

    assert_problem(owner.create_agent(project["id"], "alice"), 409, "SLUG_TAKEN")
    assert len(owner.http.get(f"/v1/projects/{project['id']}/agents").json()["data"]) == 1
    assert owner.create_agent(owner.project()["id"], "alice").status_code == 201


def test_patch_agent_changes_name_role_and_capabilities(team: dict[str, Any]) -> None:
    owner, bob = team["owner"], team["bob"]
    path = f"/v1/projects/{team['project']['id']}/agents/{bob.id}"

    response = owner.http.patch(path, json={"name": "Robert", "role": "reviewer", "capabilities": ["go", "sql"]})

    assert response.status_code == 200, response.text
    updated = response.json()
    assert (updated["name"], updated["role"], updated["capabilities"]) == ("Robert", "reviewer", ["go", "sql"])
    assert updated["slug"] == "bob"
    assert bob.http.get("/v1/me").json()["agent"]["role"] == "reviewer"
    assert owner.http.patch(path, json={"role": ""}).json()["name"] == "Robert"
    assert_problem(owner.http.patch(path, json={"slug": "robert"}), 422, "VALIDATION_FAILED")


def test_deleted_agent_is_refused_at_once_and_cannot_be_addressed(team: dict[str, Any]) -> None:
    owner, alice, bob = team["owner"], team["alice"], team["bob"]
    alice.send(to="bob")  # the server now knows where "bob" is
    assert bob.http.get("/v1/me").status_code == 200
    path = f"/v1/projects/{team['project']['id']}/agents/{bob.id}"

    assert owner.http.delete(path).status_code == 204

    assert_needs_auth(bob.http.get("/v1/me"), "INVALID_API_KEY")
    assert_problem(alice.http.post("/v1/messages", json=alice.body(to="bob")), 404, "RECIPIENT_NOT_FOUND")
    assert_problem(owner.http.delete(path), 404, "AGENT_NOT_FOUND")
    slugs = [a["slug"] for a in owner.http.get(f"/v1/projects/{team['project']['id']}/agents").json()["data"]]
    assert slugs == ["alice", "carol"]


def test_directory_shows_when_each_agent_was_last_seen(team: dict[str, Any]) -> None:
    alice, bob = team["alice"], team["bob"]

    seen = {a["slug"]: a["last_seen_at"] for a in alice.http.get("/v1/agents").json()["data"]}
    assert seen["bob"] is None and seen["carol"] is None
    assert seen["alice"] is not None
    assert abs(when(seen["alice"]) - datetime.now(UTC)) < timedelta(minutes=1)

    assert bob.http.get("/v1/messages").status_code == 200

    seen = {a["slug"]: a["last_seen_at"] for a in alice.http.get("/v1/agents").json()["data"]}
    assert seen["bob"] is not None
    assert abs(when(seen["bob"]) - datetime.now(UTC)) < timedelta(minutes=1)
    assert seen["carol"] is None


# --- me ----------------------------------------------------------------------------------------


def test_me_describes_and_updates_the_calling_agent(team: dict[str, Any]) -> None:
    carol = team["carol"]

    me = carol.http.get("/v1/me").json()
    assert me["project_id"] == team["project"]["id"]
    assert (me["agent"]["id"], me["agent"]["slug"]) == (carol.id, "carol")

    response = carol.http.patch("/v1/me", json={"name": "Carol C.", "role": "tester", "capabilities": ["pytest"]})

    assert response.status_code == 200, response.text
    assert response.json()["agent"]["name"] == "Carol C."
    again = carol.http.get("/v1/me").json()["agent"]
    assert (again["name"], again["role"], again["capabilities"]) == ("Carol C.", "tester", ["pytest"])
    listed = team["owner"].http.get(f"/v1/projects/{team['project']['id']}/agents").json()["data"]
    assert next(a for a in listed if a["slug"] == "carol")["role"] == "tester"
    assert_problem(carol.http.patch("/v1/me", json={"slug": "mallory"}), 422, "VALIDATION_FAILED")
    assert_problem(carol.http.patch("/v1/me", json={}), 422, "VALIDATION_FAILED")
    assert carol.http.get("/v1/me").json()["agent"]["slug"] == "carol"


# --- messages ----------------------------------------------------------------------------------


def test_inbox_pages_stay_stable_while_new_messages_arrive(team: dict[str, Any]) -> None:
    alice, bob, carol = team["alice"], team["bob"], team["carol"]
    before = [alice.send(to="bob", text=f"before {n}")["id"] for n in range(10)]
    during: list[str] = []
    stop = threading.Event()
    failures: list[str] = []

    def keep_sending() -> None:
        while not stop.is_set():
            response = carol.http.post("/v1/messages", json=carol.body(to="bob", text="during"))
            if response.status_code != 201:
                failures.append(response.text)
                return
            during.append(response.json()["id"])

    sender = threading.Thread(target=keep_sending, daemon=True)
    sender.start()
    seen: list[str] = []
    cursor: str | None = None
    deadline = time.monotonic() + DEADLINE_S
    try:
        wait_for(lambda: len(during) >= 2, "the concurrent sender got going")
        sent_when_paging_began = len(during)
        while True:
            params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            response = bob.http.get("/v1/messages", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            assert len(page["data"]) <= 3
            seen += [message["id"] for message in page["data"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
            assert time.monotonic() < deadline, "paging never reached the end"
        sent_when_paging_ended = len(during)
    finally:
        stop.set()
        sender.join(timeout=DEADLINE_S)
    assert not failures, failures
    # Otherwise this test would prove nothing about paging while messages arrive.
    assert sent_when_paging_ended > sent_when_paging_began

    assert len(seen) == len(set(seen)), "a message came twice"
    assert seen[: len(before)] == before
    # Past the messages sent earlier come the concurrent ones, in the order sent and none skipped.
    later = seen[len(before) :]
    assert len(later) >= sent_when_paging_began
    assert later == during[: len(later)]


def _three_messages_for_bob(team: dict[str, Any]) -> list[dict[str, Any]]:
    """Send bob a request from alice, a notification from carol and a response from alice."""
    alice, carol = team["alice"], team["carol"]
    first = alice.send(to="bob", kind="request")
    # Store the next message in a later millisecond, so `since` can tell the two apart.
    wait_for(lambda: datetime.now(UTC) > when(first["created_at"]) + timedelta(milliseconds=5), "clock moves on")
    second = carol.send(to="bob", kind="notification")
    third = alice.send(to="bob", kind="response", reply_to=first["id"])
    carol.send(to="alice")  # not for bob: never in his inbox
    return [first, second, third]


def _listed(agent: Agent, **params: Any) -> list[str]:
    return [message["id"] for message in agent.inbox(**params)]


def test_inbox_filters_by_sender_type_status_and_pin(team: dict[str, Any]) -> None:
    bob = team["bob"]
    first, second, third = (message["id"] for message in _three_messages_for_bob(team))

    assert _listed(bob) == [first, second, third]
    assert _listed(bob, **{"from": "carol"}) == [second]
    assert _listed(bob, **{"from": "alice"}) == [first, third]
    assert _listed(bob, type="notification") == [second]
    assert _listed(bob, type="response") == [third]

    assert bob.http.get(f"/v1/messages/{first}").status_code == 200
    assert bob.http.post("/v1/messages/ack", json={"ids": [third]}).status_code == 200
    assert bob.http.put(f"/v1/messages/{second}/pin").status_code == 200
    assert _listed(bob, status="unread") == [second]
    assert _listed(bob, status="read") == [first]
    assert _listed(bob, status="acked") == [third]
    assert _listed(bob, pinned="true") == [second]
    assert _listed(bob, pinned="false") == [first, third]
    assert _listed(bob, pinned="true", status="unread", type="notification") == [second]

    for bad in [{"status": "new"}, {"pinned": "1"}, {"since": "2026-01-01"}, {"type": "chat"}, {"limit": "0"}]:
        assert_problem(bob.http.get("/v1/messages", params=bad), 400, "INVALID_PARAMETER")


def test_inbox_since_keeps_messages_stored_at_or_after_the_time(team: dict[str, Any]) -> None:
    bob = team["bob"]
    first, second, third = _three_messages_for_bob(team)
    since = when(second["created_at"])

    assert _listed(bob, since=second["created_at"]) == [second["id"], third["id"]]
    in_paris = since.astimezone(timezone(timedelta(hours=2))).isoformat()
    assert _listed(bob, since=in_paris) == [second["id"], third["id"]]
    assert _listed(bob, since=(since - timedelta(days=1)).isoformat()) == [first["id"], second["id"], third["id"]]
    assert _listed(bob, since=(since + timedelta(days=1)).isoformat()) == []
    # Any RFC 3339 bound is valid: one before the store's first millisecond (1970) lists all, one
    # past what a datetime holds lists nothing, and neither is refused.
    assert _listed(bob, since="1135-08-25T18:51:59.60614Z") == [first["id"], second["id"], third["id"]]
    assert _listed(bob, since="9999-12-31T23:59:59-23:59") == []


def test_mark_read_false_looks_without_marking_and_bad_values_are_refused(team: dict[str, Any]) -> None:
    alice, bob = team["alice"], team["bob"]
    sent = alice.send()

    peeked = bob.http.get(f"/v1/messages/{sent['id']}", params={"mark_read": "false"})

    assert peeked.status_code == 200 and peeked.json()["status"] == "unread"
    assert [m["status"] for m in bob.inbox() if m["id"] == sent["id"]] == ["unread"]
    assert_problem(bob.http.get(f"/v1/messages/{sent['id']}", params={"mark_read": "no"}), 400, "INVALID_PARAMETER")
    assert [m["status"] for m in bob.inbox() if m["id"] == sent["id"]] == ["unread"]
    assert bob.http.get(f"/v1/messages/{sent['id']}", params={"mark_read": "true"}).json()["status"] == "read"


def test_getting_a_message_marks_it_read_for_the_caller_only(team: dict[str, Any]) -> None:
    alice, bob, carol = team["alice"], team["bob"], team["carol"]
    sent = alice.send()  # broadcast: bob and carol both receive it
    assert sent["status"] == "sent"

    got = bob.http.get(f"/v1/messages/{sent['id']}")

    assert got.status_code == 200
    assert got.json()["status"] == "read"
    assert [m["status"] for m in bob.inbox() if m["id"] == sent["id"]] == ["read"]
    assert [m["status"] for m in carol.inbox() if m["id"] == sent["id"]] == ["unread"]
    assert alice.http.get(f"/v1/messages/{sent['id']}").json()["status"] == "sent"
    assert_problem(bob.http.get(f"/v1/messages/{ulid()}"), 404, "MESSAGE_NOT_FOUND")


def test_reactions_are_kept_once_per_agent_and_emoji_and_none_is_lost(team: dict[str, Any]) -> None:
    alice, bob = team["alice"], team["bob"]
    message = alice.send(to="bob")
    path = f"/v1/messages/{message['id']}/reactions"

    assert bob.http.post(path, json={"emoji": "👍"}).status_code == 200
    again = bob.http.post(path, json={"emoji": "👍"})
    assert again.status_code == 200
    assert [(r["agent"], r["emoji"]) for r in again.json()["reactions"]] == [("bob", "👍")]

    rounds = 4  # with the 👍, five of Bob's: as many as one agent may add
    barrier = threading.Barrier(2)
    errors: list[str] = []

    def react(agent: Agent) -> None:
        for number in range(rounds):
            barrier.wait(timeout=DEADLINE_S)
            response = agent.http.post(path, json={"emoji": f"{agent.slug}-{number}"})
            if response.status_code != 200:
                errors.append(response.text)

    threads = [threading.Thread(target=react, args=(agent,)) for agent in (alice, bob)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DEADLINE_S * 2)
    assert not errors, errors

    stored = alice.http.get(f"/v1/messages/{message['id']}").json()["reactions"]
    pairs = sorted((r["agent"], r["emoji"]) for r in stored)
    expected = [("bob", "👍")] + [(a, f"{a}-{n}") for a in ("alice", "bob") for n in range(rounds)]
    assert pairs == sorted(expected)
    assert all(abs(when(r["created_at"]) - datetime.now(UTC)) < timedelta(minutes=1) for r in stored)


def test_one_agent_cannot_use_up_a_messages_reactions(team: dict[str, Any]) -> None:
    alice, bob, carol = team["alice"], team["bob"], team["carol"]
    message = alice.send()  # a broadcast: Bob and Carol both received it
    path = f"/v1/messages/{message['id']}/reactions"

    answers = [bob.http.post(path, json={"emoji": f"e{n}"}) for n in range(50)]
    assert [a.status_code for a in answers[:5]] == [200] * 5
    for refused in answers[5:]:
        assert_problem(refused, 409, "TOO_MANY_REACTIONS")
    assert "5 reactions" in answers[5].json()["detail"]
    # The refusals changed nothing, and everyone else can still react.
    assert carol.http.post(path, json={"emoji": "👀"}).status_code == 200
    stored = alice.http.get(f"/v1/messages/{message['id']}").json()["reactions"]
    assert sorted((r["agent"], r["emoji"]) for r in stored) == sorted(
        [("bob", f"e{n}") for n in range(5)] + [("carol", "👀")]
    )
    # Adding one Bob has already is still a no-op, not a refusal.
    assert bob.http.post(path, json={"emoji": "e0"}).status_code == 200


def test_pins_are_each_agents_own(team: dict[str, Any]) -> None:
    alice, bob = team["alice"], team["bob"]
    message = alice.send(to="bob")
    assert message["pinned"] is False

    pinned = bob.http.put(f"/v1/messages/{message['id']}/pin")
    assert pinned.status_code == 200 and pinned.json()["pinned"] is True
    assert bob.http.put(f"/v1/messages/{message['id']}/pin").json()["pinned"] is True
    # Bob's pin is Bob's: the sender's view is unchanged, and the sender cannot take it away.
    assert alice.http.get(f"/v1/messages/{message['id']}").json()["pinned"] is False
    assert alice.http.delete(f"/v1/messages/{message['id']}/pin").json()["pinned"] is False
    assert bob.http.get(f"/v1/messages/{message['id']}").json()["pinned"] is True

    unpinned = bob.http.delete(f"/v1/messages/{message['id']}/pin")
    assert unpinned.status_code == 200 and unpinned.json()["pinned"] is False
    assert bob.http.get(f"/v1/messages/{message['id']}").json()["pinned"] is False
    assert_problem(bob.http.put(f"/v1/messages/{ulid()}/pin"), 404, "MESSAGE_NOT_FOUND")


def test_ack_only_acks_messages_addressed_to_the_caller(team: dict[str, Any]) -> None:
    alice, bob, carol = team["alice"], team["bob"], team["carol"]
    message = alice.send(to="bob")
    unknown = ulid()

    assert carol.http.post("/v1/messages/ack", json={"ids": [message["id"]]}).json() == {
        "acked": [],
        "not_found": [message["id"]],
    }
    assert alice.http.post("/v1/messages/ack", json={"ids": [message["id"]]}).json()["not_found"] == [message["id"]]
    assert [m["status"] for m in bob.inbox() if m["id"] == message["id"]] == ["unread"]

    response = bob.http.post("/v1/messages/ack", json={"ids": [unknown, message["id"]]})

    assert response.status_code == 200, response.text
    assert response.json() == {"acked": [message["id"]], "not_found": [unknown]}
    assert [m["status"] for m in bob.inbox() if m["id"] == message["id"]] == ["acked"]
    assert bob.http.post("/v1/messages/ack", json={"ids": [message["id"]]}).json()["acked"] == [message["id"]]
    assert_problem(bob.http.post("/v1/messages/ack", json={"ids": []}), 422, "VALIDATION_FAILED")


def test_send_mistakes_are_refused_and_nothing_is_stored(team: dict[str, Any]) -> None:
    alice, bob = team["alice"], team["bob"]
    good = alice.body(to="bob")

    assert_problem(alice.http.post("/v1/messages", json={**good, "reply_to": ulid()}), 404, "REPLY_TO_NOT_FOUND")
    assert_problem(alice.http.post("/v1/messages", json={**good, "to": "nobody"}), 404, "RECIPIENT_NOT_FOUND")
    neither = {k: v for k, v in good.items() if k != "to"}
    assert_problem(alice.http.post("/v1/messages", json=neither), 422, "VALIDATION_FAILED")
    assert_problem(alice.http.post("/v1/messages", json={**neither, "broadcast": False}), 422, "VALIDATION_FAILED")
    assert_problem(alice.http.post("/v1/messages", json={**good, "broadcast": True}), 422, "VALIDATION_FAILED")
    assert_problem(
        alice.http.post(
            "/v1/messages", content=b'{"to": "bob", "type": ', headers={"Content-Type": "application/json"}
        ),
        400,
        "MALFORMED_JSON",
    )
    assert_problem(
        alice.http.post("/v1/messages", content=json.dumps(good).encode(), headers={"Content-Type": "text/plain"}),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    huge = {**good, "payload": good["payload"] + "A" * ONE_MIB}
    assert_problem(alice.http.post("/v1/messages", json=huge), 413, "PAYLOAD_TOO_LARGE")

    def chunks() -> Iterator[bytes]:
        data = json.dumps(huge).encode()
        for start in range(0, len(data), 65536):
            yield data[start : start + 65536]

    # Without a Content-Length the server must stop reading at the limit all the same.
    chunked = alice.http.post("/v1/messages", content=chunks(), headers={"Content-Type": "application/json"})
    assert_problem(chunked, 413, "PAYLOAD_TOO_LARGE")

    assert bob.inbox() == []
    assert alice.http.post("/v1/messages", json=good).status_code == 201
    assert [m["id"] for m in bob.inbox()] == [good["id"]]


def test_errors_carry_the_request_id_and_echo_the_clients(team: dict[str, Any]) -> None:
    alice = team["alice"]
    request_id = f"client-{secrets.token_hex(8)}"

    failed = alice.http.get(f"/v1/messages/{ulid()}", headers={"X-Request-Id": request_id})
    problem = assert_problem(failed, 404, "MESSAGE_NOT_FOUND")
    assert problem["request_id"] == request_id

    succeeded = alice.http.get("/v1/me", headers={"X-Request-Id": request_id})
    assert succeeded.status_code == 200
    assert succeeded.headers["X-Request-Id"] == request_id

    own = alice.http.get(f"/v1/messages/{ulid()}")
    assert assert_problem(own, 404, "MESSAGE_NOT_FOUND")["request_id"] != request_id
    distinct = {alice.http.get("/v1/me").headers["X-Request-Id"] for _ in range(3)}
    assert len(distinct) == 3


# --- health and contract -----------------------------------------------------------------------


def test_health_endpoints_answer_ok(anon: httpx.Client) -> None:
    for path in ("/v1/health/live", "/v1/health/ready"):
        response = anon.get(path)
        assert response.status_code == 200, path
        assert response.json() == {"status": "ok"}


def test_served_contract_is_the_repositorys_openapi_yaml(anon: httpx.Client) -> None:
    response = anon.get("/v1/openapi.yaml")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/yaml")
    assert response.content == (REPO_ROOT / "openapi.yaml").read_bytes()
