"""Every hot query is answered through an index on the embedded database, so it stays as fast as a project grows.

The stores run against the session's nx-27017 while a command listener records each ``find``
they send and each index they make. The same finds are then run through neosqlite (the library
nx-27017 serves) in this process, and SQLite is asked for the plan of the statements it
generated. A plan that reads a whole collection (``SCAN <collection>``) or sorts every match
(``USE TEMP B-TREE``) slows with the number of documents: ``tests/bench/bench_lookups.py``
measures that, at 1,000 and 100,000 documents. See ``nexysync_server.store.queries``.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import neosqlite
import pytest
from pymongo import AsyncMongoClient, monitoring

from nexysync_server.ids import new_id, utcnow
from nexysync_server.store.agents import AgentStore
from nexysync_server.store.events import EventStore
from nexysync_server.store.messages import MessageStore
from nexysync_server.store.presence import PresenceStore
from nexysync_server.store.receipts import ReceiptStore

BODY = {"to": "bob", "type": "notification", "topic": "t", "payload": "p"}


@dataclass
class Recorder(monitoring.CommandListener):
    """The finds sent while each label was set, and every index made."""

    label: str = ""
    finds: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    indexes: list[tuple[str, list[tuple[str, int]], bool]] = field(default_factory=list)
    ttl_indexes: list[str] = field(default_factory=list)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        command = event.command
        if event.command_name == "find" and self.label:
            self.finds.setdefault(self.label, []).append(dict(command))
        elif event.command_name == "createIndexes":
            for index in command["indexes"]:
                keys = list(index["key"].items())
                self.indexes.append((command["createIndexes"], keys, bool(index.get("unique"))))
                if "expireAfterSeconds" in index:
                    self.ttl_indexes.append(f"{command['createIndexes']}.{index['name']}")

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def plans(recorder: Recorder, finds: list[dict[str, Any]]) -> list[str]:
    """Run the finds through neosqlite in memory, with the recorded indexes; return each statement's plan."""
    connection = neosqlite.Connection(":memory:")
    for name, keys, unique in recorder.indexes:
        if keys == [("_id", 1)] or any(isinstance(direction, str) for _, direction in keys):
            continue
        if len(keys) == 1:
            connection[name].create_index(keys[0][0], unique=unique)
        else:
            connection[name].create_index(keys, unique=unique)
    statements: list[str] = []
    found: list[str] = []
    for command in finds:
        name = command["find"]
        collection = connection[name]
        if collection.find_one({"_id": "seed"}) is None:
            collection.insert_one({"_id": "seed", "project_id": "seed"})  # a table to plan against
        statements.clear()
        connection.db.set_trace_callback(statements.append)
        cursor = collection.find(command.get("filter", {}), command.get("projection"))
        if "sort" in command:
            cursor = cursor.sort(list(command["sort"].items()))
        if "limit" in command:
            cursor = cursor.limit(command["limit"])
        list(cursor)
        connection.db.set_trace_callback(None)
        selects = [s for s in statements if s.startswith("SELECT") and f"FROM {name}" in s]
        assert selects, f"no SELECT on {name} for {command}"
        for statement in selects:
            rows = connection.db.execute(f"EXPLAIN QUERY PLAN {statement}").fetchall()
            found.append(f"{name}: " + " / ".join(row[3] for row in rows))
    return found


def slow(plan: str) -> bool:
    """Whether a plan reads every document of its collection, or sorts every match."""
    name, steps = plan.split(": ", 1)
    return f"SCAN {name}" in steps.split(" / ") or "USE TEMP B-TREE" in steps


@pytest.fixture(scope="module")
def recorded(mongo_uri: str) -> Recorder:
    """Run every hot query of the stores once; the recorder holds what they sent."""
    recorder = Recorder()
    asyncio.run(_exercise(mongo_uri, recorder))
    return recorder


async def _exercise(mongo_uri: str, recorder: Recorder) -> None:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_uri, tz_aware=True, event_listeners=[recorder])
    db = client[f"plans_{secrets.token_hex(4)}"]
    agents, events, receipts = AgentStore(db, cache_ttl_s=0), EventStore(db, ttl_days=1), ReceiptStore(db)
    messages, presence = MessageStore(db, events), PresenceStore(db, cache_ttl_s=0)
    for store in (agents, events, receipts, messages, presence):
        await store.ensure_indexes()
    project_id = f"project-{new_id()}"
    alice, alice_key = await agents.create(project_id, "alice", "Alice", "dev", [])
    bob, bob_key = await agents.create(project_id, "bob", "Bob", "dev", [])
    sent = [
        (await messages.insert(project_id=project_id, sender=alice, body=BODY, recipients=[bob["_id"]], ttl_hours=1))[0]
        for _ in range(3)
    ]
    await receipts.advance(sent, bob, "delivered")
    lease = await presence.hold({"_id": bob["_id"], "project_id": project_id, "slug": "bob"}, 30)

    async def record(label: str, call: Any) -> None:
        recorder.label = label
        await call
        recorder.label = ""

    inbox = {"since": None, "sender_slug": None, "message_type": None, "pinned": None, "limit": 2}
    await record("agent by key", agents.by_key(bob_key))
    recorder.label = "agents by key, batched"
    await asyncio.gather(agents.by_key(alice_key), agents.by_key(bob_key))
    await record("agent by slug", agents.id_for_slug(project_id, "bob"))
    await record("keys of the streams' agents", agents.key_hashes({alice["_id"], bob["_id"]}))
    await record("agent briefs", agents.briefs(project_id, [alice["_id"], bob["_id"]]))
    await record("message by id", messages.get(project_id, sent[1]["id"]))
    await record("inbox page", messages.inbox(project_id, bob["_id"], status=None, cursor=None, **inbox))
    await record(
        "inbox page after a cursor, unread",
        messages.inbox(project_id, bob["_id"], status="unread", cursor=sent[0]["sk"], **inbox),
    )
    await record(
        "inbox unread, from the agent's floor",
        messages.inbox(project_id, bob["_id"], status="unread", cursor=None, unread_floor=sent[1]["sk"], **inbox),
    )
    await record(
        "inbox since",
        messages.inbox(
            project_id, bob["_id"], **(inbox | {"since": utcnow() - timedelta(hours=1)}), status=None, cursor=None
        ),
    )
    await record("receipts of a message", receipts.of_message(sent[0]))
    await record("receipts of a page", receipts.of_messages(project_id, [doc["id"] for doc in sent]))
    await record("event log resume", events.after(project_id, 1, 100))
    await record("event log replay window", events.after(project_id, 0, 100, upto=2))
    await record("oldest event", events.oldest_seq(project_id))
    await record("presence of recipients", presence.streaming_among([alice["_id"], bob["_id"]]))
    await record("an agent's streams", presence.live_leases(bob["_id"]))
    await record("the project's streams", presence.streaming(project_id))
    await presence.release(lease)
    # The session's database is shared, collections and all, by the other modules: leave nothing.
    for store in (messages, receipts, events, agents, presence):
        await store.delete_project(project_id)
    await client.close()


HOT = [
    "agent by key",
    "agents by key, batched",
    "agent by slug",
    "keys of the streams' agents",
    "agent briefs",
    "message by id",
    "inbox page",
    "inbox page after a cursor, unread",
    "inbox unread, from the agent's floor",
    "inbox since",
    "receipts of a message",
    "receipts of a page",
    "event log resume",
    "event log replay window",
    "oldest event",
    "presence of recipients",
    "an agent's streams",
    "the project's streams",
]


@pytest.mark.parametrize("label", HOT)
def test_a_hot_query_is_answered_through_an_index(recorded: Recorder, label: str) -> None:
    finds = recorded.finds.get(label)
    assert finds, f"{label}: no find was sent"
    found = plans(recorded, finds)
    assert not [plan for plan in found if slow(plan)], found


def test_no_collection_has_a_ttl_index_the_database_would_purge_on_every_read(recorded: Recorder) -> None:
    # neosqlite deletes a TTL-indexed collection's ended documents before each find, reading it
    # whole: the stores sweep them instead (nexysync_server.store.expiry).
    assert len(recorded.indexes) > 10
    assert recorded.ttl_indexes == []


def test_the_check_tells_a_query_that_reads_everything(recorded: Recorder) -> None:
    # The shapes the store avoids, planned the same way: each one is caught.
    project = {"find": "messages", "filter": {"project_id": "p"}}
    by_agent = {"find": "agents", "filter": {"key_hash": {"$in": ["a", "b"]}}}
    id_range = {"find": "events", "filter": {"_id": {"$gte": "p:", "$lt": "p;"}}}
    unsorted = {"find": "events", "filter": {"project_id": {"$eq": "p"}}, "sort": {"created_at": 1}}
    for command in (project, by_agent, id_range, unsorted):
        assert any(slow(plan) for plan in plans(recorded, [command])), command
