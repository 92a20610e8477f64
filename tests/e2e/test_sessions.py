"""Sessions: signing out ends the access token too, everywhere; password change; account deletion; owner streams.

An access token names its sign-in session (the refresh family), and every human request asks
whether that session is still signed in, so logout, logout-all, a password change and the
account's deletion end access tokens at once rather than when they expire. Owner streams end at
their token's own expiry and within seconds of their session ending; a user holds few at once.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pytest
from pymongo import MongoClient
from realtime_support import EventStream, Team

from nexysync import Client
from nexysync._errors import AuthenticationError, PermissionDeniedError
from nexysync_server.security import make_access_token

pytestmark = pytest.mark.e2e

SECRET = "sessions-e2e-secret-0123456789abcdef0123456789"
PASSWORD = "realtime-pass"
SETTINGS = {
    "NEXYSYNC_JWT_SECRET": SECRET,
    "NEXYSYNC_LOGIN_FAILURES_PER_ACCOUNT": "3",
    "NEXYSYNC_MAX_OWNER_STREAMS_PER_USER": "2",
    "NEXYSYNC_KEY_CHECK_INTERVAL_S": "1",
}


@pytest.fixture(scope="module")
def server(module_dev_servers: Callable[..., Any]) -> Any:
    return module_dev_servers(SETTINGS)


def _login(base_url: str, email: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(f"{base_url}/v1/auth/login", json={"email": email, "password": password})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _projects(base_url: str, token: str) -> httpx.Response:
    # A fresh connection each time: with several workers, any of them may answer.
    return httpx.get(f"{base_url}/v1/projects", headers=_bearer(token))


def _refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


def test_logout_ends_the_access_token_at_once_on_every_worker(server_processes: Callable[..., str]) -> None:
    base_url = server_processes(["serve", "--workers", "2"])
    team = Team(base_url, [])
    session = _login(base_url, team.email).json()
    # Every worker has seen (and may have cached) the token as good.
    assert {_projects(base_url, session["access_token"]).status_code for _ in range(20)} == {200}

    signed_out = httpx.post(f"{base_url}/v1/auth/logout", json={"refresh_token": session["refresh_token"]})
    assert signed_out.status_code == 204
    time.sleep(0.6)  # the cache of live sessions, on the worker that did not sign out

    for _ in range(20):
        _refused(_projects(base_url, session["access_token"]), 401, "SESSION_ENDED")
    # The team's own session (another sign-in) is untouched.
    assert team.owner.get("/v1/projects").status_code == 200


def test_logout_all_ends_every_session_of_the_account_and_no_other(server: Any) -> None:
    team, other = Team(server.base_url, []), Team(server.base_url, [])
    laptop, phone = _login(server.base_url, team.email).json(), _login(server.base_url, team.email).json()

    everywhere = httpx.post(f"{server.base_url}/v1/auth/logout-all", headers=_bearer(laptop["access_token"]))

    assert everywhere.status_code == 204
    for session in (laptop, phone):
        _refused(_projects(server.base_url, session["access_token"]), 401, "SESSION_ENDED")
        refreshed = httpx.post(f"{server.base_url}/v1/auth/refresh", json={"refresh_token": session["refresh_token"]})
        _refused(refreshed, 401, "INVALID_REFRESH_TOKEN")
    _refused(team.owner.get("/v1/projects"), 401, "SESSION_ENDED")
    assert other.owner.get("/v1/projects").status_code == 200
    # Signing in again works: the account is fine, only its sessions ended.
    assert _login(server.base_url, team.email).status_code == 200


def test_changing_the_password_needs_the_current_one_and_ends_every_other_session(server: Any) -> None:
    team = Team(server.base_url, [])
    other = _login(server.base_url, team.email).json()
    url = f"{server.base_url}/v1/auth/password"

    wrong = team.owner.post(url, json={"current_password": "not-the-password", "new_password": "brand-new-pass"})
    _refused(wrong, 403, "WRONG_PASSWORD")
    assert _login(server.base_url, team.email).status_code == 200  # nothing changed
    assert _projects(server.base_url, other["access_token"]).status_code == 200

    changed = team.owner.post(url, json={"current_password": PASSWORD, "new_password": "brand-new-pass"})

    assert changed.status_code == 200, changed.text
    fresh = changed.json()
    assert _projects(server.base_url, fresh["access_token"]).status_code == 200
    _refused(_projects(server.base_url, other["access_token"]), 401, "SESSION_ENDED")
    _refused(team.owner.get("/v1/projects"), 401, "SESSION_ENDED")
    _refused(_login(server.base_url, team.email), 401, "INVALID_CREDENTIALS")
    assert _login(server.base_url, team.email, "brand-new-pass").status_code == 200
    audit = MongoClient(server.banner()["Database"])["nexysync"]["audit"]
    entries = list(audit.find({"target": f"user:{fresh['user']['id']}"}))
    assert [(e["action"], e["outcome"]) for e in entries] == [
        ("auth.password_change", "refused"),
        ("auth.password_change", "ok"),
    ]


def test_guessing_the_password_through_a_stolen_token_is_limited_like_sign_in(server: Any) -> None:
    team = Team(server.base_url, [])
    url = "/v1/auth/password"
    for _ in range(3):
        guess = {"current_password": f"guess-{secrets.token_hex(4)}", "new_password": "brand-new-pass"}
        _refused(team.owner.post(url, json=guess), 403, "WRONG_PASSWORD")

    right = team.owner.post(url, json={"current_password": PASSWORD, "new_password": "brand-new-pass"})

    _refused(right, 429, "TOO_MANY_FAILED_LOGINS")
    _refused(_login(server.base_url, team.email), 429, "TOO_MANY_FAILED_LOGINS")


def test_deleting_the_account_deletes_its_projects_and_their_data(server: Any) -> None:
    team, other = Team(server.base_url, ["alice", "bob"]), Team(server.base_url, ["carol"])
    second_project = team.owner.post("/v1/projects", json={"name": "second"}).json()["id"]
    sent = httpx.post(f"{server.base_url}/v1/messages", json=team.body("bob"), headers=_bearer(team.keys["alice"]))
    assert sent.status_code == 201, sent.text
    db = MongoClient(server.banner()["Database"])["nexysync"]
    user_id = db["users"].find_one({"email": team.email})["_id"]
    url = "/v1/auth/delete-account"

    _refused(team.owner.post(url, json={"password": "not-the-password"}), 403, "WRONG_PASSWORD")
    assert db["projects"].count_documents({"owner_id": user_id}) == 2  # nothing changed

    deleted = team.owner.post(url, json={"password": PASSWORD})

    assert deleted.status_code == 204, deleted.text
    projects = [team.project_id, second_project]
    assert db["projects"].count_documents({"_id": {"$in": projects}}) == 0
    for collection in ("agents", "messages", "events"):
        assert db[collection].count_documents({"project_id": {"$in": projects}}) == 0, collection
    assert db["users"].count_documents({"_id": user_id}) == 0
    assert db["refresh_tokens"].count_documents({"user_id": user_id}) == 0
    _refused(team.owner.get("/v1/projects"), 401, "SESSION_ENDED")
    _refused(httpx.get(f"{server.base_url}/v1/me", headers=_bearer(team.keys["alice"])), 401, "INVALID_API_KEY")
    _refused(_login(server.base_url, team.email), 401, "INVALID_CREDENTIALS")
    # Another account's project is untouched, and the email is free again.
    assert other.owner.get(f"/v1/projects/{other.project_id}").status_code == 200
    body = {"email": team.email, "name": "Again", "password": PASSWORD, "tos_accepted": True}
    assert httpx.post(f"{server.base_url}/v1/auth/register", json=body).status_code == 201


def test_the_sdk_signs_out_everywhere_changes_the_password_and_deletes_the_account(server: Any) -> None:
    email = f"sdk-{secrets.token_hex(4)}@example.test"
    with Client(base_url=server.base_url) as client, Client(base_url=server.base_url) as elsewhere:
        client.auth.register(email=email, name="SDK", password=PASSWORD)
        elsewhere.auth.login(email=email, password=PASSWORD)
        with pytest.raises(PermissionDeniedError):
            client.auth.change_password(current_password="wrong-password", new_password="sdk-new-pass")
        client.auth.change_password(current_password=PASSWORD, new_password="sdk-new-pass")
        assert list(client.projects.list()) == []  # the client kept the new session
        with pytest.raises(AuthenticationError):
            list(elsewhere.projects.list())  # its refresh token ended with its session
        elsewhere.auth.login(email=email, password="sdk-new-pass")
        client.auth.logout_all()
        assert client.refresh_token is None
        with pytest.raises(AuthenticationError):
            list(elsewhere.projects.list())
        elsewhere.auth.login(email=email, password="sdk-new-pass")
        elsewhere.projects.create(name="doomed")
        elsewhere.auth.delete_account(password="sdk-new-pass")
        assert elsewhere.refresh_token is None
    _refused(_login(server.base_url, email, "sdk-new-pass"), 401, "INVALID_CREDENTIALS")


async def _ends_within(stream: EventStream, seconds: float) -> float:
    """Read until the stream ends; return how long that took (fail if it outlives ``seconds``)."""
    started = time.monotonic()
    async with asyncio.timeout(seconds):
        while True:
            try:
                await stream.frame(timeout=seconds)
            except EOFError:
                return time.monotonic() - started


async def test_an_owner_stream_ends_at_its_own_tokens_expiry(server: Any) -> None:
    team = Team(server.base_url, [])
    token = team.owner.headers["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], issuer="nexysync")
    # The same session's token with 2 s left (access tokens live 900 s here).
    short = make_access_token(SECRET, claims["sub"], claims["sid"], datetime.now(UTC), 2)
    path = f"/v1/projects/{team.project_id}/stream"

    async with EventStream(team.base_url, short, path=path) as stream:
        took = await _ends_within(stream, 8)

    assert took < 4


@pytest.mark.parametrize("how", ["logout", "logout-all", "password"])
async def test_an_owner_stream_ends_within_seconds_of_its_session_ending(server: Any, how: str) -> None:
    team = Team(server.base_url, [])
    session = _login(server.base_url, team.email).json()
    path = f"/v1/projects/{team.project_id}/stream"
    async with EventStream(team.base_url, session["access_token"], path=path) as stream:
        assert (await stream.frame()).comment == "connected"
        if how == "logout":
            ended = team.owner.post("/v1/auth/logout", json={"refresh_token": session["refresh_token"]})
        elif how == "logout-all":
            ended = team.owner.post("/v1/auth/logout-all")
        else:
            body = {"current_password": PASSWORD, "new_password": "brand-new-pass"}
            ended = team.owner.post("/v1/auth/password", json=body)
        assert ended.status_code in (200, 204), ended.text

        took = await _ends_within(stream, 8)

    assert took < 5


async def test_a_user_holds_at_most_the_configured_owner_streams(server: Any) -> None:
    team, other = Team(server.base_url, []), Team(server.base_url, [])
    token = team.owner.headers["Authorization"].removeprefix("Bearer ")
    path = f"/v1/projects/{team.project_id}/stream"
    async with EventStream(team.base_url, token, path=path), EventStream(team.base_url, token, path=path):
        third = httpx.get(f"{server.base_url}{path}", headers=_bearer(token), timeout=5)
        _refused(third, 429, "STREAM_LIMIT")
        assert int(third.headers["Retry-After"]) >= 1
        # Another user's streams are not counted against this one.
        other_token = other.owner.headers["Authorization"].removeprefix("Bearer ")
        async with EventStream(other.base_url, other_token, path=f"/v1/projects/{other.project_id}/stream") as s:
            assert (await s.frame()).comment == "connected"
    # Closed streams give their places back (the server notices a closed one at its next write).
    deadline = time.monotonic() + 30
    while True:
        async with (
            httpx.AsyncClient(base_url=server.base_url, timeout=5) as client,
            client.stream("GET", path, headers=_bearer(token)) as reopened,
        ):
            if reopened.status_code == 200:
                break
            assert reopened.status_code == 429
        assert time.monotonic() < deadline, "the closed streams' places never came back"
        await asyncio.sleep(0.5)


def test_a_token_made_before_sessions_is_sent_to_refresh(server: Any) -> None:
    team = Team(server.base_url, [])
    claims = jwt.decode(team.owner.headers["Authorization"][7:], SECRET, algorithms=["HS256"], issuer="nexysync")
    del claims["sid"]
    old = jwt.encode(claims, SECRET, algorithm="HS256")

    _refused(_projects(server.base_url, old), 401, "TOKEN_EXPIRED")
