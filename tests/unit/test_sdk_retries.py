"""Errors and retries (nexysync._transport, nexysync._errors): typed errors, backoff, Retry-After, idempotency keys."""

from __future__ import annotations

import json

import httpx
import pytest
from sdk_fakes import AGENT, PROJECT, ULID_RE, FakeServer, agent_json, make_client, problem

from nexysync import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)
from nexysync._transport import backoff_delay


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (401, "UNAUTHENTICATED", AuthenticationError),
        (403, "FORBIDDEN", PermissionDeniedError),
        (404, "NOT_FOUND", NotFoundError),
        (409, "CONFLICT", ConflictError),
        (422, "VALIDATION_FAILED", UnprocessableEntityError),
        (429, "RATE_LIMITED", RateLimitError),
        (500, "INTERNAL", InternalServerError),
        (503, "UNAVAILABLE", InternalServerError),
    ],
)
def test_problem_responses_become_typed_errors(status: int, code: str, error: type[Exception]) -> None:
    client, _ = make_client(lambda request: problem(status, code, "details here"), max_retries=0)
    with pytest.raises(error) as caught:
        client.me.get()
    assert caught.value.status == status  # type: ignore[attr-defined]
    assert caught.value.code == code  # type: ignore[attr-defined]
    assert caught.value.detail == "details here"  # type: ignore[attr-defined]
    assert caught.value.request_id == "req-123"  # type: ignore[attr-defined]
    assert isinstance(caught.value.body, dict)  # type: ignore[attr-defined]
    assert code in str(caught.value)


def test_server_errors_are_retried_with_backoff_then_succeed() -> None:
    answers = [problem(503, "UNAVAILABLE"), problem(500, "INTERNAL")]

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0) if answers else httpx.Response(200, json={"agent": agent_json(), "project_id": PROJECT})

    client, sleeps = make_client(handler)
    assert client.me.get().project_id == PROJECT
    assert len(sleeps) == 2
    assert 0.375 <= sleeps[0] <= 0.5
    assert 0.75 <= sleeps[1] <= 1.0
    assert client.last_request_id is None or isinstance(client.last_request_id, str)


def test_retry_after_is_honoured() -> None:
    answers = [problem(429, "RATE_LIMITED", headers={"Retry-After": "3"})]

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0) if answers else httpx.Response(200, json={"agent": agent_json(), "project_id": PROJECT})

    client, sleeps = make_client(handler)
    client.me.get()
    assert sleeps == [3.0]


def test_retries_stop_after_max_retries_and_raise() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return problem(503, "UNAVAILABLE")

    client, sleeps = make_client(handler)
    with pytest.raises(InternalServerError):
        client.me.get()
    assert len(calls) == 3
    assert len(sleeps) == 2


def test_client_errors_other_than_408_409_429_are_not_retried() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return problem(404, "NOT_FOUND")

    client, sleeps = make_client(handler)
    with pytest.raises(NotFoundError):
        client.me.get()
    assert len(calls) == 1
    assert sleeps == []


def test_connection_errors_are_retried_then_raised() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client, sleeps = make_client(handler)
    with pytest.raises(APIConnectionError):
        client.me.get()
    assert len(sleeps) == 2


def test_timeouts_raise_api_timeout_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client, _ = make_client(handler, max_retries=0)
    with pytest.raises(APITimeoutError):
        client.me.get()


def test_backoff_is_capped_and_jittered() -> None:
    assert backoff_delay(0, rand=lambda: 0.0) == 0.5
    assert backoff_delay(0, rand=lambda: 1.0) == 0.375
    assert backoff_delay(3, rand=lambda: 0.0) == 4.0
    assert backoff_delay(10, rand=lambda: 0.0) == 8.0
    assert backoff_delay(10, rand=lambda: 1.0) == 6.0


def test_a_retried_send_reuses_its_message_id_as_idempotency_key() -> None:
    server = FakeServer()
    failures = [problem(502, "BAD_GATEWAY")]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and failures:
            server.requests.append(request)
            return failures.pop(0)
        return server(request)

    client, sleeps = make_client(handler)
    sent = client.messages.send("bob", topic="hi", payload="hello")
    posts = [r for r in server.requests if r.method == "POST"]
    assert len(posts) == 2
    keys = {r.headers["Idempotency-Key"] for r in posts}
    assert keys == {sent.id}
    assert {json.loads(r.content)["id"] for r in posts} == {sent.id}
    assert len(server.messages) == 1
    assert len(sleeps) == 1


def test_other_writes_get_one_idempotency_key_across_retries_and_reads_none() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return problem(409, "CONFLICT")
        if request.method == "GET":
            return httpx.Response(200, json={"agent": agent_json(), "project_id": PROJECT})
        return httpx.Response(200, json={"acked": [], "not_found": [AGENT]})

    client, _ = make_client(handler)
    client.messages.ack([AGENT])
    assert seen[0].headers["Idempotency-Key"] == seen[1].headers["Idempotency-Key"]
    assert ULID_RE.match(seen[0].headers["Idempotency-Key"])
    client.me.get()
    assert "Idempotency-Key" not in seen[-1].headers


def test_an_id_conflict_is_final_and_not_retried() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return problem(409, "ID_CONFLICT", "already sent with a different body")

    client, sleeps = make_client(handler)
    with pytest.raises(ConflictError) as caught:
        client.messages.send("bob", topic="t", payload="p")
    assert caught.value.code == "ID_CONFLICT"
    assert (len(calls), sleeps) == (1, [])


def test_retry_after_too_long_or_malformed_falls_back_to_backoff() -> None:
    def answer(value: str) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": value})

    assert backoff_delay(0, answer("0"), rand=lambda: 0.0) == 0.0
    assert backoff_delay(0, answer("1.5"), rand=lambda: 0.0) == 1.5
    assert backoff_delay(1, answer("3600"), rand=lambda: 0.0) == 1.0
    assert backoff_delay(1, answer("soon"), rand=lambda: 0.0) == 1.0
    assert backoff_delay(2, answer("Wed, 21 Oct 2015 07:28:00 GMT"), rand=lambda: 0.0) == 2.0
