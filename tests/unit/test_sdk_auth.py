"""Human sessions (nexysync._auth): tokens adopted, refreshed once on 401, renewed from a saved refresh token."""

from __future__ import annotations

import json
from typing import Any

import httpx
from sdk_fakes import AGENT, NOW, make_client, problem


def test_a_human_session_adopts_tokens_and_refreshes_once_on_401() -> None:
    user = {"id": AGENT, "email": "a@b.test", "name": "A", "created_at": NOW}
    issued = iter(["t1", "t2"])
    auth_headers: list[str | None] = []

    def tokens() -> dict[str, Any]:
        return {
            "access_token": next(issued),
            "refresh_token": "r" * 43,
            "token_type": "Bearer",
            "expires_in": 900,
            "user": user,
        }

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path in ("/v1/auth/login", "/v1/auth/refresh"):
            return httpx.Response(200, json=tokens())
        auth_headers.append(request.headers.get("Authorization"))
        if request.headers.get("Authorization") == "Bearer t1":
            return problem(401, "TOKEN_EXPIRED")
        return httpx.Response(200, json={"data": [], "next_cursor": None})

    client, _ = make_client(handler, api_key=None, key_ring=None, project_id=None)
    client.auth.login(email="a@b.test", password="password1")
    assert list(client.projects.list()) == []
    assert auth_headers == ["Bearer t1", "Bearer t2"]


def test_a_saved_refresh_token_renews_an_expired_session_and_reports_the_new_tokens() -> None:
    user = {"id": AGENT, "email": "a@b.test", "name": "A", "created_at": NOW}
    refreshed_with: list[str] = []
    saved: list[tuple[str | None, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/auth/refresh":
            refreshed_with.append(json.loads(request.content)["refresh_token"])
            body = {"access_token": "fresh", "refresh_token": "n" * 43, "token_type": "Bearer", "expires_in": 900}
            return httpx.Response(200, json={**body, "user": user})
        if request.url.path == "/v1/auth/logout":
            return httpx.Response(204)
        if request.headers.get("Authorization") != "Bearer fresh":
            return problem(401, "TOKEN_EXPIRED")
        return httpx.Response(200, json={"data": [], "next_cursor": None})

    client, _ = make_client(
        handler,
        api_key="expired",
        refresh_token="s" * 43,
        on_tokens=lambda access, refresh: saved.append((access, refresh)),
        key_ring=None,
        project_id=None,
    )
    assert list(client.projects.list()) == []
    assert refreshed_with == ["s" * 43]
    assert saved == [("fresh", "n" * 43)]
    assert client.refresh_token == "n" * 43
    client.auth.logout(refresh_token="n" * 43)
    assert saved[-1] == (None, None) and client.refresh_token is None
