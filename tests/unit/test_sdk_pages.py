"""Pages and pagers (nexysync._pagination, nexysync._pages): lazy cursors, records that do not decrypt."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from sdk_fakes import NOW, PROJECT, FakeServer, agent_json, make_client

import nexysync
import nexysync.types
import nexysync_generated.models
from nexysync import (
    AsyncClient,
    DecryptionError,
    KeyRing,
)
from nexysync.crypto import new_key


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
