"""The clients themselves (nexysync._client): options, the project id, the async client end to end."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sdk_fakes import PROJECT, FakeServer, make_client, problem

from nexysync import (
    AsyncClient,
    InternalServerError,
    KeyRing,
    NotFoundError,
)


def test_with_options_copies_without_changing_the_original() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return problem(503, "UNAVAILABLE")

    client, _ = make_client(handler)
    with pytest.raises(InternalServerError):
        client.with_options(max_retries=0, timeout=1.5).me.get()
    assert len(calls) == 1
    with pytest.raises(InternalServerError):
        client.me.get()
    assert len(calls) == 4


def test_the_project_id_is_fetched_once_from_me_when_not_configured() -> None:
    server = FakeServer()
    client, _ = make_client(server, project_id=None)
    client.messages.send("bob", topic="t", payload="p")
    client.messages.send("bob", topic="t", payload="q")
    assert server.me_calls == 1
    assert client.get_project_id() == PROJECT


def test_async_client_round_trip_retries_and_pagination() -> None:
    server = FakeServer()
    failures = [problem(503, "UNAVAILABLE", headers={"Retry-After": "2"})]
    sleeps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if failures:
            return failures.pop(0)
        return server(request)

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def scenario() -> None:
        async with AsyncClient(
            base_url="http://api.test",
            api_key="k",
            key_ring=KeyRing([bytes(range(32))]),
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
            sleep=fake_sleep,
        ) as client:
            sent = await client.messages.send("bob", topic="hi", payload="async hello", metadata=[1, 2])
            got = await client.messages.get(sent.id)
            assert (got.payload, got.metadata) == ("async hello", [1, 2])
            assert [m.topic async for m in client.messages.list()] == ["hi"]
            first = await client.messages.list().first_page()
            assert first.next_cursor is None
            assert await client.get_project_id() == PROJECT
            with pytest.raises(NotFoundError):
                await client.with_options(max_retries=0).messages.get("01JZZZZZZZZZZZZZZZZZZZZZZZ")

    asyncio.run(scenario())
    assert sleeps == [2.0]
    assert server.me_calls == 1
