"""Delivery receipts: queued → delivered → read → acked per recipient, each step told to the sender once."""

from __future__ import annotations

import asyncio
import secrets
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient
from realtime_support import EventStream, Team, no_more_receipts, receipt_events

from nexysync_server.ids import new_id
from nexysync_server.services.receipts import Receipts
from nexysync_server.store.events import EventStore
from nexysync_server.store.messages import MessageStore
from nexysync_server.store.receipts import ReceiptStore

pytestmark = pytest.mark.e2e


async def test_a_direct_message_goes_through_every_step_once_and_never_back(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice", "bob"])
    base = dev_server.base_url
    async with httpx.AsyncClient(base_url=base) as http, EventStream(base, team.keys["alice"]) as alice:
        # bob holds no stream: the answer says so.
        sent = await http.post("/v1/messages", json=team.body("bob"), headers=team.auth("alice"))
        assert sent.status_code == 201, sent.text
        message_id = sent.json()["id"]
        assert sent.json()["recipients"] == [{"agent": "bob", "online": False, "last_seen_at": None}]
        assert sent.json()["receipts"] == {"queued": 1, "delivered": 0, "read": 0, "acked": 0}
        receipts = await http.get(f"/v1/messages/{message_id}/receipts", headers=team.auth("alice"))
        (queued,) = receipts.json()["data"]
        assert queued["agent"] == "bob" and queued["state"] == "queued" and queued["delivered_at"] is None

        # A fetch that does not mark read delivers.
        fetched = await http.get(f"/v1/messages/{message_id}?mark_read=false", headers=team.auth("bob"))
        assert fetched.status_code == 200 and fetched.json()["status"] == "unread"
        (delivered,) = await receipt_events(alice, 1)
        assert delivered["message_id"] == message_id and delivered["agent"] == "bob"
        assert delivered["state"] == "delivered"
        # Fetching again tells nothing new.
        await http.get(f"/v1/messages/{message_id}?mark_read=false", headers=team.auth("bob"))
        await http.get("/v1/messages", headers=team.auth("bob"))
        await no_more_receipts(alice, team, http)

        await http.get(f"/v1/messages/{message_id}", headers=team.auth("bob"))
        (read,) = await receipt_events(alice, 1)
        assert read["state"] == "read"
        acked = await http.post("/v1/messages/ack", json={"ids": [message_id]}, headers=team.auth("bob"))
        assert acked.json()["acked"] == [message_id]
        (ack,) = await receipt_events(alice, 1)
        assert ack["state"] == "acked"

        # Reading again after the ack moves nothing back and tells nothing.
        await http.get(f"/v1/messages/{message_id}", headers=team.auth("bob"))
        await no_more_receipts(alice, team, http)
        for slug in ("alice", "bob"):  # any party may read the receipts
            (final,) = (await http.get(f"/v1/messages/{message_id}/receipts", headers=team.auth(slug))).json()["data"]
            assert final["state"] == "acked"
            assert final["queued_at"] <= final["delivered_at"] <= final["read_at"] <= final["acked_at"]
            assert final["delivered_at"] == delivered["at"] and final["acked_at"] == ack["at"]
        view = (await http.get(f"/v1/messages/{message_id}", headers=team.auth("alice"))).json()
        assert view["status"] == "sent"
        assert view["receipts"] == {"queued": 0, "delivered": 0, "read": 0, "acked": 1}


async def test_a_first_read_records_and_tells_the_delivery_it_skipped(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice", "bob"])
    base = dev_server.base_url
    async with httpx.AsyncClient(base_url=base) as http, EventStream(base, team.keys["alice"]) as alice:
        message_id = await team.send(http, "alice", "bob")
        await http.get(f"{base}/v1/messages/{message_id}", headers=team.auth("bob"))
        steps = await receipt_events(alice, 2)
        assert [step["state"] for step in steps] == ["delivered", "read"]
        assert steps[0]["at"] == steps[1]["at"]
        await no_more_receipts(alice, team, http)


async def test_a_broadcast_keeps_one_receipt_per_recipient(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice", "bob", "carol", "dave"])
    base = dev_server.base_url
    async with (
        httpx.AsyncClient(base_url=base) as http,
        EventStream(base, team.keys["alice"]) as alice,
        EventStream(base, team.keys["carol"]),
    ):
        sent = await http.post("/v1/messages", json=team.body(None), headers=team.auth("alice"))
        message_id = sent.json()["id"]
        online = {entry["agent"]: entry["online"] for entry in sent.json()["recipients"]}
        assert online == {"bob": False, "carol": True, "dave": False}
        assert sent.json()["receipts"]["queued"] == 3
        listed = await http.get("/v1/messages", headers=team.auth("bob"))
        assert [m["id"] for m in listed.json()["data"]] == [message_id]
        await http.get(f"/v1/messages/{message_id}", headers=team.auth("carol"))
        steps = await receipt_events(alice, 3)
        assert sorted((step["agent"], step["state"]) for step in steps) == [
            ("bob", "delivered"),
            ("carol", "delivered"),
            ("carol", "read"),
        ]
        await no_more_receipts(alice, team, http)
        receipts = (await http.get(f"/v1/messages/{message_id}/receipts", headers=team.auth("dave"))).json()
        assert {r["agent"]: r["state"] for r in receipts["data"]} == {
            "bob": "delivered",
            "carol": "read",
            "dave": "queued",
        }
        view = (await http.get(f"/v1/messages/{message_id}", headers=team.auth("alice"))).json()
        assert view["receipts"] == {"queued": 1, "delivered": 1, "read": 1, "acked": 0}


async def test_receipts_are_only_for_parties_to_the_message(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice", "bob", "eve"])
    async with httpx.AsyncClient(base_url=dev_server.base_url) as http:
        message_id = await team.send(http, "alice", "bob")
        outsider = await http.get(f"/v1/messages/{message_id}/receipts", headers=team.auth("eve"))
        assert outsider.status_code == 404
        assert outsider.headers["content-type"].startswith("application/problem+json")
        assert outsider.json()["code"] == "MESSAGE_NOT_FOUND"
        unknown = await http.get(f"/v1/messages/{new_id()}/receipts", headers=team.auth("alice"))
        assert unknown.status_code == 404


async def test_a_step_not_told_is_told_by_the_sweep_not_by_a_retry(mongo_uri: str) -> None:
    client: AsyncMongoClient = AsyncMongoClient(mongo_uri, tz_aware=True)
    db = client["nexysync_receipts_test"]
    messages = MessageStore(db, EventStore(db, ttl_days=1))
    receipts = ReceiptStore(db)
    await receipts.ensure_indexes()
    project_id = f"receipts-{secrets.token_hex(4)}"
    body = {"id": new_id(), "to": "bob", "type": "request", "topic": "v1.00000000.AAAA", "payload": "v1.0.BB"}
    alice, bob = {"_id": "alice-id", "slug": "alice"}, {"_id": "bob-id", "slug": "bob"}
    try:
        message, _, _ = await messages.insert(
            project_id=project_id, sender=alice, body=body, recipients=["bob-id"], ttl_hours=1
        )
        assert await receipts.advance([message], alice, "read") == []  # the sender has no copy
        steps = await receipts.advance([message], bob, "delivered")
        assert [(step.state, step.agent, step.sender_id) for step in steps] == [("delivered", "bob", "alice-id")]
        # The server died before telling alice: a retry moves nothing, so it tells nothing (the
        # first teller may still be at it; a second would tell the step twice)...
        assert await receipts.advance([message], bob, "delivered") == []
        # ...the sweep tells it, once the step is old enough to be taken for abandoned.
        assert await receipts.untold(older_than_s=3600) == []
        assert [step.message_id for step in await receipts.untold(older_than_s=-1)] == [message["id"]]
        told: list[tuple[str, list[str], dict[str, Any]]] = []

        class Hub:
            async def emit(self, project: str, kind: str, to: list[str], data: dict[str, Any]) -> None:
                told.append((kind, to, data))

        sweeper = Receipts(SimpleNamespace(receipts=receipts), Hub(), untold_after_s=-1)  # type: ignore[arg-type]
        await sweeper.sweep()
        assert told == [
            (
                "message_receipt",
                ["alice-id"],
                {"message_id": message["id"], "agent": "bob", "state": "delivered", "at": steps[0].at},
            )
        ]
        assert await receipts.advance([message], bob, "delivered") == []
        assert await receipts.untold(older_than_s=-1) == []
        # Many requests at once: the copy ends at the furthest step, each step reported for telling.
        results = await asyncio.gather(
            *(receipts.advance([message], bob, state) for state in ("read", "acked", "read", "delivered"))
        )
        reported = {step.state for result in results for step in result}
        assert reported == {"read", "acked"}
        await receipts.told([step for result in results for step in result])
        stored = await receipts.of_message(message)
        assert stored["bob-id"]["rank"] == 3 and stored["bob-id"]["told_rank"] == 3
        assert await receipts.advance([message], bob, "read") == []
        assert await receipts.untold(older_than_s=-1) == []
    finally:
        await client.close()
