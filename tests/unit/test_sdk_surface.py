"""The SDK's surface: every operation on both clients with one signature, the raw views, the wire names.

Paths, parameters and auth come from the generated operation table.
"""

from __future__ import annotations

import asyncio
import inspect
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sdk_fakes import PROJECT, FakeServer, make_client, problem

import nexysync
import nexysync.types
from nexysync import (
    AsyncClient,
    BadRequestError,
    Client,
    KeyRing,
    NotFoundError,
    RawResponse,
)
from nexysync_generated import OPERATIONS

# Streams are followed with client.stream(); the owner's stream is the console's (a browser's).
NOT_SDK = {"meta_openapi", "health_live", "health_ready", "stream_open", "owner_stream_open"}


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


def test_bearer_auth_and_paths_come_from_the_operation_table() -> None:
    server = FakeServer()
    client, _ = make_client(server)
    client.me.get()
    request = server.requests[-1]
    assert request.headers["Authorization"] == "Bearer nsync_alice_" + "0" * 40
    assert request.url.path == OPERATIONS["me_get"].path


def test_query_parameters_use_wire_names_and_values() -> None:
    server = FakeServer()
    client, _ = make_client(server)
    list(client.messages.list(from_="bob", pinned=True, since=datetime(2026, 1, 1, tzinfo=UTC)))
    params = server.requests[-1].url.params
    assert params["from"] == "bob"
    assert params["pinned"] == "true"
    assert params["since"] == "2026-01-01T00:00:00+00:00"
    assert "cursor" not in params


def test_missing_path_or_required_query_parameters_fail_before_sending() -> None:
    client, _ = make_client(FakeServer())
    with pytest.raises(ValueError, match="path parameters"):
        client.call("messages_get")
    with pytest.raises(ValueError, match="confirm"):
        client.call("projects_delete", path_params={"project_id": PROJECT})
    with pytest.raises(ValueError, match="either"):
        client.messages.send(topic="t", payload="p")


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
