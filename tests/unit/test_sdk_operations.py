"""The operation layer (nexysync._operations): content encrypted on the wire, bound to its record, client-made ids."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sdk_fakes import NOW, ULID_RE, FakeServer, make_client, problem

import nexysync
import nexysync.types
import nexysync_generated.models
from nexysync import (
    DecryptionError,
    KeyRing,
)
from nexysync.crypto import new_key


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


def test_the_low_level_call_takes_plaintext_and_an_explicit_id() -> None:
    server = FakeServer()
    client, _ = make_client(server)
    body = {"id": nexysync.new_ulid(), "to": "bob", "type": "request", "topic": "t", "payload": "p"}
    first = client.call("messages_send", body=body)
    again = client.call("messages_send", body=body)
    assert first.id == again.id == body["id"]
    assert again.payload == "p"
    assert len(server.messages) == 1


def test_get_sends_mark_read_only_when_asked_not_to_mark() -> None:
    server = FakeServer()
    client, _ = make_client(server)
    sent = client.messages.send("bob", topic="t", payload="p")

    assert client.messages.get(sent.id).payload == "p"
    assert "mark_read" not in server.requests[-1].url.params
    assert client.messages.get(sent.id, mark_read=False).payload == "p"
    assert server.requests[-1].url.params["mark_read"] == "false"


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
