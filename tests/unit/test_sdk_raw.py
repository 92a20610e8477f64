"""``client.with_raw_response``: the same calls, answered by a ``RawResponse`` (mocked transport)."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from nexysync import AsyncClient, AuthenticationError, Client, KeyRing, NotFoundError, RawResponse

PROJECT = "01JAAAAAAAAAAAAAAAAAAAAAAA"
AGENT = "01JBBBBBBBBBBBBBBBBBBBBBBB"
NOW = "2026-01-01T00:00:00Z"
KEY = bytes(range(32))


def _agent() -> dict[str, Any]:
    return {
        "id": AGENT,
        "project_id": PROJECT,
        "slug": "alice",
        "name": "alice",
        "role": "",
        "capabilities": [],
        "key_prefix": "nsync_al",
        "created_at": NOW,
        "updated_at": NOW,
        "last_seen_at": None,
    }


def _refresh_token(n: int) -> str:
    return f"refresh{n}".ljust(43, "x")


def _tokens(n: int) -> dict[str, Any]:
    user = {"id": AGENT, "email": "a@b.c", "name": "A", "created_at": NOW}
    return {
        "access_token": f"access-{n}",
        "refresh_token": _refresh_token(n),
        "token_type": "Bearer",
        "expires_in": 900,
        "user": user,
    }


class Server:
    """Stores sent envelopes; every answer carries an ``X-Request-Id`` and a ``RateLimit`` header."""

    def __init__(self) -> None:
        self.messages: dict[str, dict[str, Any]] = {}
        self.requests: list[httpx.Request] = []
        self.ids = itertools.count(1)
        self.valid_token = "nsync_alice_key"
        self.logins = itertools.count(1)

    def answer(self, status: int, body: Any) -> httpx.Response:
        headers = {"X-Request-Id": f"req-{next(self.ids)}", "RateLimit": "limit=600, remaining=599, reset=60"}
        if status >= 400:
            headers["Content-Type"] = "application/problem+json"
        return httpx.Response(status, json=body, headers=headers)

    def problem(self, status: int, code: str) -> httpx.Response:
        return self.answer(status, {"type": "about:blank", "title": "Error", "status": status, "code": code})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/v1/auth/login":
            return self.answer(200, _tokens(next(self.logins)))
        if path == "/v1/auth/refresh":
            self.valid_token = "access-refreshed"
            return self.answer(200, {**_tokens(0), "access_token": "access-refreshed"})
        if request.headers.get("Authorization") != f"Bearer {self.valid_token}":
            return self.problem(401, "UNAUTHENTICATED")
        if path == "/v1/me":
            return self.answer(200, {"agent": _agent(), "project_id": PROJECT})
        if path == "/v1/messages" and request.method == "POST":
            body = json.loads(request.content)
            stored = {
                "id": body["id"],
                "project_id": PROJECT,
                "from": "alice",
                "to": body.get("to"),
                "broadcast": False,
                "type": body["type"],
                "priority": "normal",
                "reply_to": None,
                "topic": body["topic"],
                "payload": body["payload"],
                "metadata": body.get("metadata"),
                "status": "sent",
                "pinned": False,
                "reactions": [],
                "created_at": NOW,
                "expires_at": NOW,
            }
            self.messages[body["id"]] = stored
            return self.answer(201, stored)
        if path == "/v1/messages" and request.method == "GET":
            return self.answer(200, {"data": list(self.messages.values()), "next_cursor": None})
        match = re.fullmatch(r"/v1/messages/([0-9A-Z]{26})", path)
        if match and match.group(1) in self.messages:
            return self.answer(200, self.messages[match.group(1)])
        return self.problem(404, "NOT_FOUND")


def sync_client(server: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> Client:
    options: dict[str, Any] = {
        "base_url": "http://api.test",
        "api_key": "nsync_alice_key",
        "key_ring": KeyRing([KEY]),
        "project_id": PROJECT,
        "http_client": httpx.Client(transport=httpx.MockTransport(server)),
        "max_retries": 0,
    }
    return Client(**{**options, **kwargs})


def async_client(server: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> AsyncClient:
    options: dict[str, Any] = {
        "base_url": "http://api.test",
        "api_key": "nsync_alice_key",
        "key_ring": KeyRing([KEY]),
        "project_id": PROJECT,
        "http_client": httpx.AsyncClient(transport=httpx.MockTransport(server)),
        "max_retries": 0,
    }
    return AsyncClient(**{**options, **kwargs})


def test_raw_send_gives_status_headers_request_id_and_the_decrypted_model() -> None:
    server = Server()
    client = sync_client(server)
    raw = client.with_raw_response.messages.send("bob", topic="the topic", payload="secret payload", metadata={"k": 1})
    assert isinstance(raw, RawResponse)
    assert raw.status_code == 201
    assert raw.headers["RateLimit"].startswith("limit=600")
    assert raw.request_id == "req-1"
    wire = raw.http_response.json()
    assert wire["payload"].startswith("v2.") and "secret" not in raw.http_response.text
    parsed = raw.parse()
    normal = client.messages.send("bob", topic="the topic", payload="secret payload", metadata={"k": 1})
    assert type(parsed) is type(normal)
    assert (parsed.topic, parsed.payload, parsed.metadata) == ("the topic", "secret payload", {"k": 1})
    assert parsed.model_dump(exclude={"id"}) == normal.model_dump(exclude={"id"})
    # The raw call sent what the normal one sends: a client-made id that is also the idempotency key.
    first = server.requests[0]
    assert json.loads(first.content)["id"] == first.headers["Idempotency-Key"] == parsed.id


def test_raw_get_and_list_and_errors_are_unchecked_until_parsed() -> None:
    server = Server()
    client = sync_client(server)
    sent = client.messages.send("bob", topic="t", payload="p")
    got = client.with_raw_response.messages.get(sent.id)
    assert got.status_code == 200 and got.parse().payload == "p"
    page = client.with_raw_response.messages.list().first_page()
    assert isinstance(page, RawResponse)
    assert [m.payload for m in page.parse().data] == ["p"]
    missing = client.with_raw_response.messages.get("01JZZZZZZZZZZZZZZZZZZZZZZZ")
    assert missing.status_code == 404 and missing.request_id is not None
    with pytest.raises(NotFoundError):
        missing.parse()
    # The normal client is untouched by its raw view.
    assert client.messages.get(sent.id).payload == "p"
    assert client.last_request_id == f"req-{len(server.requests)}"


def test_raw_view_shares_the_session_tokens_and_refreshes_on_401() -> None:
    server = Server()
    client = sync_client(server, api_key=None, project_id=None)
    login = client.with_raw_response.auth.login(email="a@b.c", password="pw")
    assert login.status_code == 200
    assert client._session.token == "access-1" and client._session.refresh_token == _refresh_token(1)
    # The server accepts only a refreshed token: the raw view refreshes once and retries.
    me = client.with_raw_response.me.get()
    assert me.status_code == 200 and me.parse().project_id == PROJECT
    assert client._session.token == "access-refreshed"


def test_raw_view_raises_when_the_refresh_itself_fails() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"type": "about:blank", "title": "Error", "status": 401, "code": "UNAUTHENTICATED"}
        if request.url.path == "/v1/auth/login":
            return httpx.Response(200, json=_tokens(1))
        return httpx.Response(401, json=body, headers={"Content-Type": "application/problem+json"})

    client = sync_client(handler)
    client.auth.login(email="a@b.c", password="pw")
    with pytest.raises(AuthenticationError):
        client.with_raw_response.me.get()


async def test_async_raw_send_and_get() -> None:
    server = Server()
    client = async_client(server)
    raw = await client.with_raw_response.messages.send("bob", topic="t", payload="async secret")
    assert isinstance(raw, RawResponse)
    assert raw.status_code == 201 and raw.request_id == "req-1"
    assert raw.headers["RateLimit"].startswith("limit=600")
    parsed = raw.parse()
    assert parsed.payload == "async secret"
    normal = await client.messages.get(parsed.id)
    assert type(normal) is type(parsed) and normal == parsed
    missing = await client.with_raw_response.messages.get("01JZZZZZZZZZZZZZZZZZZZZZZZ")
    assert missing.status_code == 404
    with pytest.raises(NotFoundError):
        missing.parse()
    page = await client.with_raw_response.messages.list().first_page()
    assert [m.payload for m in page.parse().data] == ["async secret"]
    await client.aclose()


async def test_async_raw_view_adopts_tokens() -> None:
    server = Server()
    client = async_client(server, api_key=None, project_id=None)
    login = await client.with_raw_response.auth.login(email="a@b.c", password="pw")
    assert login.parse().access_token == "access-1"
    assert client._session.token == "access-1"
    me = await client.with_raw_response.me.get()
    assert me.status_code == 200 and client._session.token == "access-refreshed"
    await client.aclose()
