"""Unit tests of the ``nexysync`` CLI's sessions, options and error reporting (no server)."""

from __future__ import annotations

import asyncio
import io
import json
import stat
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from nexysync import APIConnectionError, Client
from nexysync_cli.commands.init import run_init
from nexysync_cli.commands.messaging import _Tail
from nexysync_cli.context import Context
from nexysync_cli.credentials import DEFAULT_API_URL, CredentialStore, OwnerSession, StoredSession, resolve_api_url
from nexysync_cli.errors import CliError, describe
from nexysync_cli.main import build_parser, main
from nexysync_cli.output import Output
from nexysync_generated.models import Message

URL = "http://api.test"
NOW = "2026-01-01T00:00:00Z"
USER = {"id": "01KQ7Z" + "0" * 20, "email": "me@example.test", "name": "Me", "created_at": NOW}


# Every test runs against a config dir of its own (the ``isolated`` fixture of conftest.py).
pytestmark = pytest.mark.usefixtures("isolated")


def session(expires_at: float = 4_000_000_000.0) -> StoredSession:
    """Return a saved session for the fake API."""
    return StoredSession(URL, "me@example.test", "Me", USER["id"], "access-0", "r" * 43, expires_at)


def tokens(n: int) -> dict[str, Any]:
    """Return the API's AuthTokens answer number ``n``."""
    return {
        "access_token": f"access-{n}",
        "refresh_token": str(n) * 43,
        "token_type": "Bearer",
        "expires_in": 900,
        "user": USER,
    }


class FakeAuthApi:
    """Answers refresh and projects_list; refuses access tokens listed as expired."""

    def __init__(self, expired: set[str] | None = None, refresh_ok: bool = True) -> None:
        self.expired = expired or set()
        self.refresh_ok = refresh_ok
        self.refreshes = 0
        self.seen_tokens: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/auth/refresh":
            if not self.refresh_ok:
                return httpx.Response(401, json={"status": 401, "code": "INVALID_REFRESH_TOKEN", "detail": "no"})
            self.refreshes += 1
            return httpx.Response(200, json=tokens(self.refreshes))
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.seen_tokens.append(token)
        if token in self.expired:
            return httpx.Response(401, json={"status": 401, "code": "TOKEN_EXPIRED", "detail": "expired"})
        return httpx.Response(200, json={"data": [], "next_cursor": None})


def factory(api: FakeAuthApi) -> Any:
    """Return a client factory bound to the fake API."""

    def make(**kwargs: Any) -> Client:
        return Client(http_client=httpx.Client(transport=httpx.MockTransport(api)), max_retries=0, **kwargs)

    return make


def test_credentials_file_is_private(isolated: Path) -> None:
    store = CredentialStore(isolated)
    store.save(session())
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(isolated.stat().st_mode) == 0o700
    assert store.load(URL + "/v1/") == session()
    assert store.current_url() == URL
    assert store.delete(URL) is True
    assert store.load(URL) is None
    assert store.current_url() == URL, "the next login should go to the same API"


def test_api_url_precedence(isolated: Path) -> None:
    store = CredentialStore(isolated)
    assert resolve_api_url(None, store, {}) == DEFAULT_API_URL
    store.save(session())
    assert resolve_api_url(None, store, {}) == URL
    assert resolve_api_url(None, store, {"NEXYSYNC_API_URL": "http://env.test/"}) == "http://env.test"
    assert resolve_api_url("http://flag.test/v1", store, {"NEXYSYNC_API_URL": "http://env.test"}) == "http://flag.test"


def test_expired_access_token_is_refreshed_first_and_saved(isolated: Path) -> None:
    store = CredentialStore(isolated)
    store.save(session(expires_at=0))
    api = FakeAuthApi()
    owner = OwnerSession.open(store, URL, factory(api))
    owner.call(lambda client: list(client.projects.list()))
    assert api.seen_tokens == ["access-1"]
    saved = store.load(URL)
    assert saved is not None and (saved.access_token, saved.refresh_token) == ("access-1", "1" * 43)


def test_refused_access_token_is_refreshed_once_and_the_call_repeated(isolated: Path) -> None:
    store = CredentialStore(isolated)
    store.save(session())
    api = FakeAuthApi(expired={"access-0"})
    owner = OwnerSession.open(store, URL, factory(api))
    assert owner.call(lambda client: list(client.projects.list())) == []
    assert api.seen_tokens == ["access-0", "access-1"]
    assert api.refreshes == 1
    saved = store.load(URL)
    assert saved is not None and saved.refresh_token == "1" * 43


def test_refused_refresh_token_asks_to_log_in(isolated: Path) -> None:
    store = CredentialStore(isolated)
    store.save(session(expires_at=0))
    owner = OwnerSession.open(store, URL, factory(FakeAuthApi(refresh_ok=False)))
    with pytest.raises(CliError) as caught:
        owner.call(lambda client: list(client.projects.list()))
    assert "nexysync login" in caught.value.message


def test_init_lists_the_project_agents_once(isolated: Path, tmp_path: Path) -> None:
    project_id, bob_id = "01KQ7Z" + "1" * 20, "01KQ7Z" + "2" * 20
    project = {"id": project_id, "name": "demo", "owner_id": USER["id"], "default_ttl_hours": 24}
    project |= {"created_at": NOW, "updated_at": NOW}

    def agent(slug: str, agent_id: str) -> dict[str, Any]:
        return {"id": agent_id, "project_id": project_id, "slug": slug, "name": slug, "role": "", "capabilities": []}

    requests: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        requests.append(f"{request.method} {request.url.path}")
        base = f"/v1/projects/{project_id}"
        times = {"key_prefix": "nsync_xx", "created_at": NOW, "updated_at": NOW, "last_seen_at": None}
        if request.url.path == base:
            return httpx.Response(200, json=project)
        if request.url.path == f"{base}/agents" and request.method == "GET":
            return httpx.Response(
                200, json={"data": [agent("alice", "01KQ7Z" + "3" * 20) | times], "next_cursor": None}
            )
        if request.url.path == f"{base}/agents" and request.method == "POST":
            return httpx.Response(201, json={"agent": agent("bob", bob_id) | times, "api_key": "nsync_bob_" + "0" * 40})
        return httpx.Response(404, json={"status": 404, "detail": "no"})

    CredentialStore(isolated).save(session())
    workspace = tmp_path / "bob"
    workspace.mkdir()
    argv = [
        "init",
        "--project",
        project_id,
        "--agent",
        "bob",
        "--dir",
        str(workspace),
        "--new-key",
        "--mcp-command",
        "x",
    ]
    ctx = Context(
        args=build_parser().parse_args(argv),
        output=Output(json_mode=True, stdout=io.StringIO(), stderr=io.StringIO()),
        directory=isolated,
        client_factory=factory(api),
    )
    try:
        assert run_init(ctx) == 0
    finally:
        ctx.close()
    # The new-key check (other agents?) and the create-or-rotate step share one listing.
    assert requests.count(f"GET /v1/projects/{project_id}/agents") == 1
    assert f"POST /v1/projects/{project_id}/agents" in requests
    assert (workspace / ".nexysync" / "key").is_file()


def test_json_flag_works_before_and_after_the_command() -> None:
    parser = build_parser()
    assert parser.parse_args(["--json", "projects", "list"]).json is True
    assert parser.parse_args(["projects", "list", "--json"]).json is True
    assert getattr(parser.parse_args(["projects", "list"]), "json", False) is False
    assert parser.parse_args(["--api-url", "http://a", "whoami"]).api_url == "http://a"


def test_not_signed_in_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["projects", "list"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        captured.err
        == f"nexysync projects list: not signed in to {DEFAULT_API_URL}: run `nexysync login` or `nexysync register`\n"
    )


def test_errors_in_json_mode_are_a_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["projects", "list", "--json"]) == 1
    error = json.loads(capsys.readouterr().err)["error"]
    assert error["code"] == "NOT_SIGNED_IN"


def test_missing_password_without_terminal_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    assert main(["login", "--email", "me@example.test", "--api-url", URL]) == 1
    assert "set NEXYSYNC_PASSWORD or pass --password-file FILE ('-' reads stdin)" in capsys.readouterr().err


def test_connection_errors_name_the_api() -> None:
    failure = describe(APIConnectionError("connection refused"), "http://127.0.0.1:9")
    assert failure.code == "CONNECTION_ERROR"
    assert "http://127.0.0.1:9" in failure.message and "nexysync-server dev" in failure.message


def test_send_without_key_file_says_to_run_init(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["send", "--to", "bob", "--topic", "t", "--payload", "p", "--dir", str(tmp_path)]) == 1
    assert "run `nexysync init`" in capsys.readouterr().err


def test_tail_shows_a_message_announced_twice_once(tmp_path: Path) -> None:
    stdout = io.StringIO()
    ctx = Context(
        args=build_parser().parse_args(["tail", "--json"]),
        output=Output(json_mode=True, stdout=stdout, stderr=io.StringIO()),
        directory=tmp_path,
    )
    message = Message.model_validate(
        {
            "id": "01JAAAAAAAAAAAAAAAAAAAAAAA",
            "project_id": "01JBBBBBBBBBBBBBBBBBBBBBBB",
            "from": "alice",
            "to": "bob",
            "broadcast": False,
            "type": "request",
            "priority": "normal",
            "reply_to": None,
            "topic": "deploy",
            "payload": "ship it",
            "metadata": None,
            "status": "unread",
            "pinned": False,
            "reactions": [],
            "created_at": datetime(2026, 1, 2, tzinfo=UTC),
            "expires_at": datetime(2026, 1, 9, tzinfo=UTC),
        }
    )

    async def fetch(mark_read: bool = True) -> Message:
        return message

    tail = _Tail(ctx, tmp_path / "tail.json")
    for seq in (7, 9):  # the same message announced by its send and again by a retry
        asyncio.run(tail.handle(SimpleNamespace(type="new_message", seq=seq, data={"id": message.id}, message=fetch)))
    shown = [json.loads(line) for line in stdout.getvalue().splitlines()]
    assert [(row["seq"], row["message"]["id"]) for row in shown] == [(7, message.id)]
    assert tail.printed == 1
