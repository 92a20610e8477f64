"""One retry policy and one authentication path for every request, the SSE stream's included."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from nexysync import AsyncClient, AuthenticationError, Client
from nexysync._transport import should_retry

TOKENS = {"access_token": "fresh", "refresh_token": "n" * 43, "token_type": "Bearer", "expires_in": 900}


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (None, None, True),
        (408, None, True),
        (409, "VERSION_CONFLICT", True),
        (409, "ID_CONFLICT", False),
        (409, "FILE_ALREADY_UPLOADED", False),
        (425, None, True),
        (429, "RATE_LIMITED", True),
        (500, None, True),
        (503, "DATABASE_UNAVAILABLE", True),
        (400, None, False),
        (401, None, False),
        (404, None, False),
        (422, None, False),
    ],
)
def test_one_policy_decides_every_retry(status: int | None, code: str | None, expected: bool) -> None:
    assert should_retry(status, code) is expected


class StreamServer:
    """Accept only the refreshed token; count refreshes; answer the stream with one event."""

    def __init__(self) -> None:
        self.refreshes: list[str] = []
        self.seen: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/auth/refresh":
            self.refreshes.append(json.loads(request.content)["refresh_token"])
            return httpx.Response(200, json=TOKENS)
        self.seen.append(request.headers.get("Authorization"))
        if request.headers.get("Authorization") != "Bearer fresh":
            return httpx.Response(401, json={"status": 401, "code": "TOKEN_EXPIRED"})
        body = b'id: 1\nevent: kv_update\ndata: {"seq": 1}\n\n'
        return httpx.Response(200, stream=httpx.ByteStream(body), headers={"Content-Type": "text/event-stream"})


def test_the_public_streaming_call_refreshes_an_expired_token() -> None:
    server = StreamServer()
    saved: list[tuple[str | None, str | None]] = []
    client = Client(
        base_url="http://api.test",
        api_key="stale",
        refresh_token="s" * 43,
        on_tokens=lambda access, refresh: saved.append((access, refresh)),
        http_client=httpx.Client(transport=httpx.MockTransport(server)),
    )
    response = client.open_stream("/v1/stream")
    try:
        assert response.status_code == 200
        assert list(response.iter_lines())[:2] == ["id: 1", "event: kv_update"]
    finally:
        response.close()
    assert server.seen == ["Bearer stale", "Bearer fresh"] and server.refreshes == ["s" * 43]
    assert saved == [("fresh", "n" * 43)] and client.refresh_token == "n" * 43


async def test_the_async_streaming_call_refreshes_too() -> None:
    server = StreamServer()
    client = AsyncClient(
        base_url="http://api.test",
        api_key="stale",
        refresh_token="s" * 43,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(server)),
    )
    response = await client.open_stream("/v1/stream")
    try:
        assert response.status_code == 200
        lines = [line async for line in response.aiter_lines()]
        assert lines[:2] == ["id: 1", "event: kv_update"]
    finally:
        await response.aclose()
    assert server.seen == ["Bearer stale", "Bearer fresh"]


def test_a_refused_refresh_raises_its_own_error_and_sends_no_token_to_the_cdn() -> None:
    seen: dict[str, Any] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen[request.url.host + request.url.path] = request.headers.get("Authorization")
        if request.url.path == "/v1/auth/refresh":
            return httpx.Response(401, json={"status": 401, "code": "REFRESH_TOKEN_REVOKED"})
        return httpx.Response(401, json={"status": 401, "code": "TOKEN_EXPIRED"})

    client = Client(
        base_url="http://api.test",
        api_key="stale",
        refresh_token="s" * 43,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    with pytest.raises(AuthenticationError) as raised:
        client.me.get()
    assert raised.value.code == "REFRESH_TOKEN_REVOKED"
    assert seen["api.test/v1/auth/refresh"] is None, "the refresh carries only the refresh token"
