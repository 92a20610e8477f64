"""Unit tests of the SDK client against a mocked transport: the operation layer, errors, retries, pages."""

from __future__ import annotations

import asyncio
import inspect
import io
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nexysync
import nexysync.types
import nexysync_generated.models
from nexysync import (
    APIConnectionError,
    APITimeoutError,
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    Client,
    ConflictError,
    DecryptionError,
    InternalServerError,
    KeyRing,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RawResponse,
    UnprocessableEntityError,
)
from nexysync._transport import backoff_delay
from nexysync.crypto import new_key
from nexysync_generated import OPERATIONS

PROJECT = "01JAAAAAAAAAAAAAAAAAAAAAAA"
AGENT = "01JBBBBBBBBBBBBBBBBBBBBBBB"
NOW = "2026-01-01T00:00:00Z"
# Streams are followed with client.stream(); the owner's stream is the console's (a browser's).
NOT_SDK = {"meta_openapi", "health_live", "health_ready", "stream_open", "owner_stream_open"}
ULID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


def problem(status: int, code: str, detail: str = "nope", headers: dict[str, str] | None = None) -> httpx.Response:
    """Return a problem+json response as the server makes them."""
    body = {"type": "about:blank", "title": "Error", "status": status, "detail": detail, "code": code}
    body["request_id"] = "req-123"
    return httpx.Response(
        status,
        json=body,
        headers={"Content-Type": "application/problem+json", "X-Request-Id": "req-123", **(headers or {})},
    )


def agent_json(slug: str = "alice") -> dict[str, Any]:
    """Return an Agent as the server serialises it."""
    return {
        "id": AGENT,
        "project_id": PROJECT,
        "slug": slug,
        "name": slug,
        "role": "",
        "capabilities": [],
        "key_prefix": "nsync_al",
        "created_at": NOW,
        "updated_at": NOW,
        "last_seen_at": None,
    }


class FakeServer:
    """An in-memory stand-in for the message API: stores whatever envelopes it is sent."""

    def __init__(self) -> None:
        self.messages: dict[str, dict[str, Any]] = {}
        self.requests: list[httpx.Request] = []
        self.me_calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/v1/me":
            self.me_calls += 1
            return httpx.Response(200, json={"agent": agent_json(), "project_id": PROJECT})
        if path == "/v1/messages" and request.method == "POST":
            body = json.loads(request.content)
            if body["id"] in self.messages:
                return httpx.Response(200, json=self.messages[body["id"]])
            stored = {
                "id": body["id"],
                "project_id": PROJECT,
                "from": "alice",
                "to": body.get("to"),
                "broadcast": bool(body.get("broadcast", False)),
                "type": body["type"],
                "priority": body.get("priority", "normal"),
                "reply_to": body.get("reply_to"),
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
            return httpx.Response(201, json=stored)
        if path == "/v1/messages" and request.method == "GET":
            return httpx.Response(200, json={"data": list(self.messages.values()), "next_cursor": None})
        match = re.fullmatch(r"/v1/messages/([0-9A-Z]{26})", path)
        if match:
            found = self.messages.get(match.group(1))
            return httpx.Response(200, json=found) if found else problem(404, "NOT_FOUND")
        match = re.fullmatch(r"/v1/messages/([0-9A-Z]{26})/thread", path)
        if match:
            return httpx.Response(200, json={"root_id": match.group(1), "data": list(self.messages.values())})
        return problem(404, "NOT_FOUND")


def make_client(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> tuple[Client, list[float]]:
    """Return a client over a mock transport, and the list its (fake) sleeps are recorded in."""
    sleeps: list[float] = []
    options: dict[str, Any] = {
        "base_url": "http://api.test",
        "api_key": "nsync_alice_" + "0" * 40,
        "key_ring": KeyRing([bytes(range(32))]),
        "project_id": PROJECT,
        "http_client": httpx.Client(transport=httpx.MockTransport(handler)),
        "sleep": sleeps.append,
    }
    options.update(kwargs)
    return Client(**options), sleeps


def sdk_operation_ids(client: Client | AsyncClient) -> set[str]:
    """Return the operationIds that the client's resources have methods for."""
    found: set[str] = set()
    for resource in vars(client).values():
        for _, method in inspect.getmembers(resource, callable):
            operation_id = getattr(method, "__operation_id__", None)
            if operation_id:
                found.add(operation_id)
    return found


def test_every_operation_has_an_sdk_method_on_both_clients() -> None:
    wanted = set(OPERATIONS) - NOT_SDK
    sync_client, _ = make_client(FakeServer())
    async_client = AsyncClient(base_url="http://api.test", api_key="k")
    assert wanted - sdk_operation_ids(sync_client) == set()
    assert wanted - sdk_operation_ids(async_client) == set()


def test_sync_and_async_resources_have_the_same_surface() -> None:
    # Every resource, files and refs included: the same public methods with the same parameters.
    sync_client, _ = make_client(FakeServer())
    async_client = AsyncClient(base_url="http://api.test", api_key="k")
    names = {name for name in vars(sync_client) if not name.startswith("_")}
    assert names == {name for name in vars(async_client) if not name.startswith("_")}
    assert {"files", "refs", "messages", "kv"} <= names
    for name in names - {"with_raw_response"}:
        sync_resource, async_resource = getattr(sync_client, name), getattr(async_client, name)
        sync_names = {n for n, _ in inspect.getmembers(sync_resource) if not n.startswith("_")}
        async_names = {n for n, _ in inspect.getmembers(async_resource) if not n.startswith("_")}
        assert sync_names == async_names, name
        for member in sync_names:
            sync_signature = inspect.signature(getattr(sync_resource, member))
            async_signature = inspect.signature(getattr(async_resource, member))
            assert sync_signature.parameters == async_signature.parameters, f"{name}.{member}"


def test_public_names_are_exported() -> None:
    for name in ("Client", "AsyncClient", "APIError", "KeyRing", "DecryptionError", "KeyFileError", "__version__"):
        assert hasattr(nexysync, name)
    for name in ("ClientWithRawResponse", "AsyncClientWithRawResponse", "DecryptedThread"):
        assert name in nexysync.__all__ and hasattr(nexysync, name)


def operation_methods(resource: object) -> set[str]:
    """Return the names of a resource's methods that are one operation each."""
    return {name for name, method in inspect.getmembers(resource, callable) if hasattr(method, "__operation_id__")}


def _sample(parameter: inspect.Parameter) -> Any:
    """Return a value a generated method accepts for ``parameter`` (by its annotation)."""
    annotation = str(parameter.annotation)
    if "list" in annotation:
        return ["x"]
    if annotation.startswith("bool"):
        return True
    if annotation.startswith("int"):
        return 1
    if "datetime" in annotation:
        return datetime(2026, 1, 1, tzinfo=UTC)
    return "01JCCCCCCCCCCCCCCCCCCCCCCC"


def _call_with_samples(method: Any) -> Any:
    arguments: dict[str, Any] = {}
    positional: list[Any] = []
    for parameter in inspect.signature(method).parameters.values():
        if parameter.name == "broadcast":
            continue  # `to` is given: a broadcast too would be refused before sending
        value = _sample(parameter)
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
            arguments[parameter.name] = value
        else:
            positional.append(value)
    return method(*positional, **arguments)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_the_raw_view_has_every_operation_method_of_every_resource_and_each_one_works(kind: str) -> None:
    # The raw view of each resource is generated with the resource's operation methods, the same
    # parameters, and nothing else (no wait, upload, download: they are more than one operation).
    # Each one is called: it must send its one request and answer that request's RawResponse.
    requests: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return problem(400, "BAD_REQUEST")

    options: dict[str, Any] = {
        "base_url": "http://api.test",
        "api_key": "nsync_alice_" + "0" * 40,
        "key_ring": KeyRing([bytes(range(32))]),
        "project_id": PROJECT,
        "max_retries": 0,
        "refresh_token": "r" * 43,
    }
    if kind == "sync":
        client: Any = Client(**options, http_client=httpx.Client(transport=httpx.MockTransport(refuse)))
    else:
        client = AsyncClient(**options, http_client=httpx.AsyncClient(transport=httpx.MockTransport(refuse)))
    resources = {name for name in vars(client) if not name.startswith("_") and name != "with_raw_response"}
    view = client.with_raw_response
    assert {name for name in vars(view) if not name.startswith("_")} == resources

    async def answer(result: Any) -> Any:
        return await result if inspect.isawaitable(result) else result

    async def scenario() -> None:
        for name in sorted(resources):
            resource, raw = getattr(client, name), getattr(view, name)
            methods = operation_methods(resource)
            assert {m for m in dir(raw) if not m.startswith("_")} == methods, name
            for member in sorted(methods):
                wanted = inspect.signature(getattr(resource, member))
                got = inspect.signature(getattr(raw, member))
                assert list(got.parameters.values()) == list(wanted.parameters.values()), f"{name}.{member}"
                before = len(requests)
                result = await answer(_call_with_samples(getattr(raw, member)))
                if hasattr(result, "first_page"):
                    result = await answer(result.first_page())
                assert isinstance(result, RawResponse), f"{name}.{member}"
                assert result.status_code == 400 and len(requests) == before + 1, f"{name}.{member}"
                operation = OPERATIONS[getattr(resource, member).__operation_id__]
                assert result.call.operation is operation and requests[-1].method == operation.method

    asyncio.run(scenario())


def test_every_raw_method_sends_what_the_normal_method_sends() -> None:
    bodies: list[tuple[str, str, bytes]] = []

    def record(request: httpx.Request) -> httpx.Response:
        bodies.append((request.method, str(request.url), request.content))
        return problem(400, "BAD_REQUEST")

    client, _ = make_client(record, max_retries=0)
    with pytest.raises(BadRequestError):
        client.kv.put("plan", "v", if_match=3)
    raw = client.with_raw_response.kv.put("plan", "v", if_match=3)
    assert raw.call.headers == {"If-Match": '"3"'} and bodies[0][:2] == bodies[1][:2]
    with pytest.raises(BadRequestError):
        client.projects.delete(PROJECT)
    assert client.with_raw_response.projects.delete(PROJECT).call.params == {"confirm": "true"}
    assert bodies[2][:2] == bodies[3][:2]


def test_a_raw_view_fetches_the_project_id_parsed_when_not_configured() -> None:
    server = FakeServer()
    client, _ = make_client(server, project_id=None)
    raw = client.with_raw_response.messages.send("bob", topic="t", payload="p")
    assert raw.status_code == 201 and raw.parse().payload == "p"
    assert server.me_calls == 1 and client.get_project_id() == PROJECT

    async def scenario() -> None:
        server = FakeServer()
        async with AsyncClient(
            base_url="http://api.test",
            api_key="k",
            key_ring=KeyRing([bytes(range(32))]),
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(server)),
        ) as client:
            raw = await client.with_raw_response.messages.send("bob", topic="t", payload="q")
            assert raw.status_code == 201 and raw.parse().payload == "q"
            assert server.me_calls == 1 and await client.get_project_id() == PROJECT

    asyncio.run(scenario())


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


def test_bearer_auth_and_paths_come_from_the_operation_table() -> None:
    server = FakeServer()
    client, _ = make_client(server)
    client.me.get()
    request = server.requests[-1]
    assert request.headers["Authorization"] == "Bearer nsync_alice_" + "0" * 40
    assert request.url.path == OPERATIONS["me_get"].path


def test_send_encrypts_on_the_wire_and_returns_plaintext() -> None:
    server = FakeServer()
    client, _ = make_client(server)
    sent = client.messages.send("bob", topic="Deploy", payload="secret plan", metadata={"pr": 4, "tags": ["a"]})
    assert ULID_RE.match(sent.id)
    assert (sent.topic, sent.payload, sent.metadata) == ("Deploy", "secret plan", {"pr": 4, "tags": ["a"]})
    assert sent.from_ == "alice"
    wire = server.requests[-1].content.decode()
    assert "secret plan" not in wire and "Deploy" not in wire and "tags" not in wire
    stored = server.messages[sent.id]
    for field in ("topic", "payload", "metadata"):
        assert stored[field].startswith("v2.")
    got = client.messages.get(sent.id)
    assert (got.topic, got.payload, got.metadata) == ("Deploy", "secret plan", {"pr": 4, "tags": ["a"]})
    listed = list(client.messages.list())
    assert [m.payload for m in listed] == ["secret plan"]
    thread = client.messages.thread(sent.id)
    assert thread.data[0].metadata == {"pr": 4, "tags": ["a"]}
    # The plaintext twin the generator wrote: a wire Message whose metadata is typed as any JSON value.
    assert type(got) is nexysync.types.Message and isinstance(got, nexysync_generated.models.Message)
    assert "JsonValue" in str(nexysync.types.Message.model_fields["metadata"].annotation)


def test_a_tampered_envelope_raises_decryption_error_naming_record_and_field() -> None:
    server = FakeServer()
    client, _ = make_client(server)
    sent = client.messages.send("bob", topic="t", payload="p")
    envelope = server.messages[sent.id]["payload"]
    middle = len(envelope) // 2 + 10
    flipped = "A" if envelope[middle] != "A" else "B"
    server.messages[sent.id]["payload"] = envelope[:middle] + flipped + envelope[middle + 1 :]
    with pytest.raises(DecryptionError) as caught:
        client.messages.get(sent.id)
    assert caught.value.record == f"message/{sent.id}"
    assert caught.value.field == "payload"


def test_a_message_served_under_another_id_fails_to_decrypt() -> None:
    server = FakeServer()
    client, _ = make_client(server)
    first = client.messages.send("bob", topic="one", payload="first")
    second = client.messages.send("bob", topic="two", payload="second")
    server.messages[second.id] = {**server.messages[first.id]}
    with pytest.raises(DecryptionError):
        client.messages.get(second.id)


def test_a_foreign_key_cannot_read_the_messages() -> None:
    server = FakeServer()
    client, _ = make_client(server)
    sent = client.messages.send("bob", topic="t", payload="p")
    stranger, _ = make_client(server, key_ring=KeyRing([new_key()]))
    with pytest.raises(DecryptionError, match="not in the key ring"):
        stranger.messages.get(sent.id)


def test_the_project_id_is_fetched_once_from_me_when_not_configured() -> None:
    server = FakeServer()
    client, _ = make_client(server, project_id=None)
    client.messages.send("bob", topic="t", payload="p")
    client.messages.send("bob", topic="t", payload="q")
    assert server.me_calls == 1
    assert client.get_project_id() == PROJECT


def test_the_low_level_call_takes_plaintext_and_an_explicit_id() -> None:
    server = FakeServer()
    client, _ = make_client(server)
    body = {"id": nexysync.new_ulid(), "to": "bob", "type": "request", "topic": "t", "payload": "p"}
    first = client.call("messages_send", body=body)
    again = client.call("messages_send", body=body)
    assert first.id == again.id == body["id"]
    assert again.payload == "p"
    assert len(server.messages) == 1


def test_pagination_follows_next_cursor_lazily() -> None:
    pages = {None: (["a", "b"], "C1"), "C1": (["c"], "C2"), "C2": (["d"], None)}
    cursors: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        cursors.append(cursor)
        slugs, next_cursor = pages[cursor]
        assert request.url.params.get("limit") == "2"
        return httpx.Response(200, json={"data": [agent_json(s) for s in slugs], "next_cursor": next_cursor})

    client, _ = make_client(handler)
    pager = client.agents.list(limit=2)
    assert cursors == []
    assert [agent.slug for agent in pager] == ["a", "b", "c", "d"]
    assert pager.undecryptable == []  # nothing in a list without encrypted records is ever skipped
    assert cursors == [None, "C1", "C2"]
    first = pager.first_page()
    assert [a.slug for a in first.data] == ["a", "b"] and first.next_cursor == "C1"


def test_query_parameters_use_wire_names_and_values() -> None:
    server = FakeServer()
    client, _ = make_client(server)
    list(client.messages.list(from_="bob", pinned=True, since=datetime(2026, 1, 1, tzinfo=UTC)))
    params = server.requests[-1].url.params
    assert params["from"] == "bob"
    assert params["pinned"] == "true"
    assert params["since"] == "2026-01-01T00:00:00+00:00"
    assert "cursor" not in params


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


def test_get_sends_mark_read_only_when_asked_not_to_mark() -> None:
    server = FakeServer()
    client, _ = make_client(server)
    sent = client.messages.send("bob", topic="t", payload="p")

    assert client.messages.get(sent.id).payload == "p"
    assert "mark_read" not in server.requests[-1].url.params
    assert client.messages.get(sent.id, mark_read=False).payload == "p"
    assert server.requests[-1].url.params["mark_read"] == "false"


def test_missing_path_or_required_query_parameters_fail_before_sending() -> None:
    client, _ = make_client(FakeServer())
    with pytest.raises(ValueError, match="path parameters"):
        client.call("messages_get")
    with pytest.raises(ValueError, match="confirm"):
        client.call("projects_delete", path_params={"project_id": PROJECT})
    with pytest.raises(ValueError, match="either"):
        client.messages.send(topic="t", payload="p")


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


def test_ulids_are_crockford_and_time_ordered() -> None:
    ids = [nexysync.new_ulid(now_ms=ms) for ms in (1, 2, 10**12)]
    assert all(ULID_RE.match(i) for i in ids)
    assert ids == sorted(ids)
    assert nexysync.new_ulid(now_ms=0).startswith("0000000000")
    assert len({nexysync.new_ulid() for _ in range(1000)}) == 1000
    with pytest.raises(ValueError):
        nexysync.new_ulid(now_ms=1 << 48)


def test_kv_values_are_bound_to_their_key_and_conditions_go_in_headers() -> None:
    store: dict[str, dict[str, Any]] = {}
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        key = request.url.path.rsplit("/", 1)[-1]
        if request.method == "PUT":
            current = f'"{store[key]["version"]}"' if key in store else None
            if request.headers.get("If-Match") not in (None, current):
                return problem(412, "PRECONDITION_FAILED")
            value = json.loads(request.content)["value"]
            version = store.get(key, {}).get("version", 0) + 1
            store[key] = {"key": key, "value": value, "version": version, "updated_by": "alice", "updated_at": NOW}
            return httpx.Response(201 if version == 1 else 200, json=store[key])
        if request.method == "GET" and key != "kv":
            return httpx.Response(200, json=store[key])
        return httpx.Response(200, json={"data": list(store.values()), "next_cursor": None})

    client, _ = make_client(handler)
    created = client.kv.put("style.tabs", "four spaces", if_none_match=True)
    assert (created.value, created.version) == ("four spaces", 1)
    assert seen[-1].headers["If-None-Match"] == "*" and "If-Match" not in seen[-1].headers
    assert "four spaces" not in seen[-1].content.decode()
    assert client.kv.put("style.tabs", "tabs", if_match=1).version == 2
    with pytest.raises(nexysync.PreconditionFailedError):
        client.kv.put("style.tabs", "spaces", if_match=1)
    assert client.kv.get("style.tabs").value == "tabs"
    assert [entry.value for entry in client.kv.list(prefix="style.")] == ["tabs"]
    store["other.key"] = {**store["style.tabs"], "key": "other.key"}
    with pytest.raises(DecryptionError) as caught:
        client.kv.get("other.key")
    assert caught.value.record == "kv/other.key" and caught.value.field == "value"
    with pytest.raises(ValueError, match="no header"):
        client.call("kv_get", path_params={"key": "k"}, headers={"X-Other": "1"})


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


@settings(max_examples=50, deadline=None)
@given(
    topic=st.text(max_size=50),
    payload=st.text(max_size=500),
    metadata=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=10,
    ),
)
def test_any_content_round_trips_through_the_operation_layer(topic: str, payload: str, metadata: Any) -> None:
    server = FakeServer()
    client, _ = make_client(server)
    sent = client.messages.send("bob", topic=topic, payload=payload, metadata=metadata)
    got = client.messages.get(sent.id)
    assert (got.topic, got.payload, got.metadata) == (topic, payload, metadata)


def test_call_raw_shows_the_wire_and_parses_on_demand() -> None:
    server = FakeServer()
    client, _ = make_client(server)
    raw = client.call_raw("messages_send", body={"to": "bob", "type": "request", "topic": "t", "payload": "plain"})
    assert raw.status_code == 201
    assert raw.http_response.json()["payload"].startswith("v2.")
    assert raw.call.json["id"] == raw.http_response.json()["id"] == raw.call.idempotency_key
    assert raw.parse().payload == "plain"
    missing = client.call_raw("messages_get", path_params={"message_id": "01JZZZZZZZZZZZZZZZZZZZZZZZ"})
    assert missing.status_code == 404 and missing.request_id == "req-123"
    with pytest.raises(NotFoundError):
        missing.parse()


def test_retry_after_too_long_or_malformed_falls_back_to_backoff() -> None:
    def answer(value: str) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": value})

    assert backoff_delay(0, answer("0"), rand=lambda: 0.0) == 0.0
    assert backoff_delay(0, answer("1.5"), rand=lambda: 0.0) == 1.5
    assert backoff_delay(1, answer("3600"), rand=lambda: 0.0) == 1.0
    assert backoff_delay(1, answer("soon"), rand=lambda: 0.0) == 1.0
    assert backoff_delay(2, answer("Wed, 21 Oct 2015 07:28:00 GMT"), rand=lambda: 0.0) == 2.0


def test_a_page_keeps_the_records_that_decrypt_and_lists_the_others(caplog: pytest.LogCaptureFixture) -> None:
    server = FakeServer()
    client, _ = make_client(server)
    stranger, _ = make_client(server, key_ring=KeyRing([new_key()]))  # an agent given another project key
    first = client.messages.send("bob", topic="one", payload="first", metadata={"n": 1})
    foreign = stranger.messages.send("bob", topic="two", payload="foreign")
    third = client.messages.send("bob", topic="three", payload="third")
    wire = json.loads(json.dumps(server.messages[foreign.id]))

    pager = client.messages.list(status="unread")
    with caplog.at_level("WARNING", logger="nexysync"):
        assert [m.payload for m in pager] == ["first", "third"]
    assert [type(e) for e in pager.undecryptable] == [nexysync._operations.UndecryptableRecord]
    skipped = pager.undecryptable[0]
    assert isinstance(skipped, DecryptionError) and "not in the key ring" in str(skipped)
    assert skipped.record == f"message/{foreign.id}" and skipped.field == "payload"
    # The record as it came: routing fields to name it by, its content still encrypted.
    assert skipped.raw == wire and skipped.raw["from"] == "alice"
    warnings = [r for r in caplog.records if r.name == "nexysync" and r.levelname == "WARNING"]
    assert len(warnings) == 1 and foreign.id in warnings[0].getMessage()

    page = client.messages.list().first_page()
    assert [m.id for m in page.data] == [first.id, third.id] and page.data[0].metadata == {"n": 1}
    assert [e.record for e in page.undecryptable] == [f"message/{foreign.id}"]
    # A walk starts its own count; the thread is a list of messages and degrades the same way.
    assert len(list(pager)) == 2 and len(pager.undecryptable) == 1
    thread = client.messages.thread(first.id)
    assert isinstance(thread, nexysync.DecryptedThread) and isinstance(thread, nexysync_generated.models.Thread)
    assert [m.id for m in thread.data] == [first.id, third.id]
    assert [e.record for e in thread.undecryptable] == [f"message/{foreign.id}"]
    # Asked for by id, the record still raises.
    with pytest.raises(DecryptionError, match="not in the key ring") as caught:
        client.messages.get(foreign.id)
    assert caught.value.record == f"message/{foreign.id}"
    # The other way round, the stranger sees its own message and is told of the two it cannot read.
    page = stranger.messages.list().first_page()
    assert [m.id for m in page.data] == [foreign.id]
    assert [e.record for e in page.undecryptable] == [f"message/{first.id}", f"message/{third.id}"]


def test_a_record_tampered_halfway_is_skipped_whole_and_kept_as_it_came() -> None:
    server = FakeServer()
    client, _ = make_client(server)
    kept = client.messages.send("bob", topic="t", payload="kept")
    sent = client.messages.send("bob", topic="t", payload="p", metadata=[1])
    envelope = server.messages[sent.id]["topic"]  # decrypted after metadata and payload
    server.messages[sent.id]["topic"] = envelope[:-4] + ("AAAA" if not envelope.endswith("AAAA") else "BBBB")
    wire = json.loads(json.dumps(server.messages[sent.id]))
    page = client.messages.list().first_page()
    assert [m.id for m in page.data] == [kept.id]
    assert page.undecryptable[0].field == "topic" and page.undecryptable[0].raw == wire


def test_kv_list_skips_a_value_moved_to_another_key() -> None:
    entries = {
        "a": {"key": "a", "version": 1, "updated_by": "alice", "updated_at": NOW},
        "b": {"key": "b", "version": 1, "updated_by": "carol", "updated_at": NOW},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": list(entries.values()), "next_cursor": None})

    client, _ = make_client(handler)
    cipher = nexysync._operations.Cipher(KeyRing([bytes(range(32))]), PROJECT)
    plan = nexysync._operations.RECORD_PLANS["KvEntry"]
    entries["a"]["value"] = cipher.seal(
        "va", record=plan, record_id="a", field="value", bound=(("updated_by", "alice"),)
    )
    # Made for "a" (by carol), served under "b".
    entries["b"]["value"] = cipher.seal(
        "vb", record=plan, record_id="a", field="value", bound=(("updated_by", "carol"),)
    )
    pager = client.kv.list()
    assert [(e.key, e.value) for e in pager] == [("a", "va")]
    assert [(e.record, e.raw["updated_by"]) for e in pager.undecryptable] == [("kv/b", "carol")]


def test_async_pager_collects_the_undecryptable_records_over_its_pages() -> None:
    ring, other = KeyRing([bytes(range(32))]), KeyRing([new_key()])
    pages: dict[str | None, tuple[list[dict[str, Any]], str | None]] = {}
    server = FakeServer()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/messages" and request.method == "GET":
            records, next_cursor = pages[request.url.params.get("cursor")]
            return httpx.Response(200, json={"data": records, "next_cursor": next_cursor})
        return server(request)

    def async_client(key_ring: KeyRing) -> AsyncClient:
        return AsyncClient(
            base_url="http://api.test",
            api_key="k",
            key_ring=key_ring,
            project_id=PROJECT,
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        )

    async def scenario() -> None:
        async with async_client(ring) as client, async_client(other) as stranger:
            good = [await client.messages.send("bob", topic="t", payload=f"p{n}") for n in range(3)]
            bad = [await stranger.messages.send("bob", topic="t", payload=f"x{n}") for n in range(2)]
            stored = server.messages
            pages[None] = ([stored[good[0].id], stored[bad[0].id]], "C1")
            pages["C1"] = ([stored[good[1].id], stored[bad[1].id], stored[good[2].id]], None)
            pager = client.messages.list()
            assert [m.payload async for m in pager] == ["p0", "p1", "p2"]
            assert [e.record for e in pager.undecryptable] == [f"message/{b.id}" for b in bad]
            first = await pager.first_page()
            assert [e.record for e in first.undecryptable] == [f"message/{bad[0].id}"]
            assert len(pager.undecryptable) == 2  # first_page() does not add to the walk's count
            thread = await client.messages.thread(good[0].id)
            assert isinstance(thread, nexysync.DecryptedThread)
            assert len(thread.data) == 3 and len(thread.undecryptable) == 2
            with pytest.raises(DecryptionError):
                await client.messages.get(bad[0].id)

    asyncio.run(scenario())


def test_an_upload_whose_answer_was_lost_is_not_undone_by_its_retry() -> None:
    """The CDN stored the content but the connection dropped before its 201: the retry's 409 is success."""
    ring = KeyRing([bytes(range(32))])
    files: dict[str, dict[str, Any]] = {}
    calls: list[str] = []
    stored: list[bytes] = []

    def file_json(file_id: str, status: str, body: dict[str, Any]) -> dict[str, Any]:
        ready = status == "ready"
        return {
            "id": file_id,
            "project_id": PROJECT,
            "name": body["name"],
            "size": body["size"],
            "content_type": None,
            "status": status,
            "from": "alice",
            "created_at": NOW,
            "expires_at": NOW,
            "download_url": f"http://cdn.test/blobs/{PROJECT}/{file_id}?sig=d" if ready else None,
        }

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        if request.method == "POST" and request.url.path == "/v1/files":
            body = json.loads(request.content)
            files[body["id"]] = body
            upload = {"file": file_json(body["id"], "pending", body), "upload_url": f"http://cdn.test/u/{body['id']}"}
            return httpx.Response(201, json=upload)
        if request.method == "PUT":
            if not stored:
                stored.append(request.read())
                raise httpx.ReadError("connection reset after the content was stored")
            return problem(409, "FILE_ALREADY_UPLOADED")
        if request.method == "GET" and request.url.path.startswith("/v1/files/"):
            file_id = request.url.path.rsplit("/", 1)[1]
            return httpx.Response(200, json=file_json(file_id, "ready", files[file_id]))
        return httpx.Response(500, json={"code": "UNEXPECTED", "title": "unexpected call"})

    client, _ = make_client(handler, key_ring=ring)
    uploaded = client.files.upload(io.BytesIO(b"quarterly numbers"), name="q3.txt")

    assert uploaded.status.value == "ready" and uploaded.name == "q3.txt"
    assert [call.split(" ")[0] for call in calls] == ["POST", "PUT", "PUT", "GET"]
    assert not any(call.startswith("DELETE") for call in calls)
    assert len(stored) == 1


def test_an_upload_refused_on_its_first_attempt_is_withdrawn() -> None:
    """A 409 without a lost earlier attempt is a real refusal: it raises, and the announcement goes."""
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if request.method == "POST":
            body = json.loads(request.content)
            pending = {
                "id": body["id"],
                "project_id": PROJECT,
                "name": body["name"],
                "size": body["size"],
                "content_type": None,
                "status": "pending",
                "from": "alice",
                "created_at": NOW,
                "expires_at": NOW,
                "download_url": None,
            }
            return httpx.Response(201, json={"file": pending, "upload_url": "http://cdn.test/u/x"})
        if request.method == "PUT":
            return problem(409, "FILE_ALREADY_UPLOADED")
        return httpx.Response(204)

    client, _ = make_client(handler)
    with pytest.raises(nexysync.ConflictError):
        client.files.upload(io.BytesIO(b"x"), name="x.txt")
    assert calls == ["POST", "PUT", "DELETE"]


def _public_methods(owner: object) -> dict[str, Any]:
    """Return an object's public methods, bound (properties are left alone: one of them does I/O)."""
    return {
        name: getattr(owner, name)
        for name in dir(type(owner))
        if not name.startswith("_")
        and isinstance(inspect.getattr_static(owner, name), staticmethod | classmethod | type(lambda: None))
    }


def _signature(method: Any) -> inspect.Signature:
    """Return a bound method's signature, its return type left out (a pager or a coroutine differs by nature)."""
    return inspect.signature(method, eval_str=True).replace(return_annotation=inspect.Parameter.empty)


def test_every_resource_and_method_exists_on_both_clients_with_the_same_signature() -> None:
    """Compare every resource (files and refs included) and the clients' own methods, parameter for parameter."""
    sync_client, _ = make_client(FakeServer())
    async_client = AsyncClient(base_url="http://api.test", api_key="k")
    sync_resources = {name for name in vars(sync_client) if not name.startswith("_")}
    async_resources = {name for name in vars(async_client) if not name.startswith("_")}
    assert sync_resources == async_resources
    assert {"files", "refs", "kv", "messages"} <= sync_resources
    # Closing differs by nature (close / aclose).
    client_only = {"close", "aclose"}
    owners = [(name, getattr(sync_client, name), getattr(async_client, name)) for name in sorted(sync_resources)]
    owners.append(("client", sync_client, async_client))
    for name, sync_owner, async_owner in owners:
        sync_methods, async_methods = _public_methods(sync_owner), _public_methods(async_owner)
        skip = client_only if name == "client" else set()
        assert set(sync_methods) - skip == set(async_methods) - skip, name
        for method in set(sync_methods) - skip:
            assert _signature(sync_methods[method]) == _signature(async_methods[method]), f"{name}.{method}"
