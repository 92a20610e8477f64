"""The event log's numbering against a real database, with writers racing as separate servers would."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import pytest
from pymongo import AsyncMongoClient, InsertOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import AutoReconnect, ClientBulkWriteException, InvalidOperation

from nexysync_server.ids import new_id
from nexysync_server.store.events import FILLER, EventStore
from nexysync_server.store.messages import IdConflict, MessageStore

pytestmark = pytest.mark.e2e


@pytest.fixture
async def db(mongo_uri: str) -> AsyncIterator[AsyncDatabase]:
    """The test database, through a client of this test's own."""
    client: AsyncMongoClient = AsyncMongoClient(mongo_uri)
    yield client["nexysync_event_log_test"]
    await client.close()


async def test_racing_writers_get_dense_unique_seqs(mongo_uri: str) -> None:
    # Each store has its own client and its own batching, like separate server processes.
    clients = [AsyncMongoClient(mongo_uri) for _ in range(3)]
    stores = [EventStore(client["nexysync_event_log_test"], ttl_days=1) for client in clients]
    await stores[0].ensure_indexes()
    project_id = f"race-{secrets.token_hex(4)}"
    try:

        async def write(store: EventStore, writer: int) -> list[int]:
            seqs = []
            for n in range(60):
                event = await store.append(project_id, "new_message", ["*"], {"writer": writer, "n": n})
                seqs.append(event["seq"])
            return seqs

        # Four concurrent tasks per store: batches within a store, races between stores.
        results = await asyncio.gather(*(write(stores[i % 3], i) for i in range(12)))
        every = sorted(seq for seqs in results for seq in seqs)
        assert every == list(range(1, 12 * 60 + 1)), "seqs are not dense and unique"
        for seqs in results:
            assert seqs == sorted(seqs), "one writer's events were numbered out of its order"
        stored = await stores[1].after(project_id, 0, 10_000)
        assert [e["seq"] for e in stored] == every
        assert await stores[2].latest_seq(project_id) == 12 * 60
    finally:
        for client in clients:
            await client.close()


Sent = tuple[dict[str, Any], bool, dict[str, Any]]


@pytest.fixture(params=[False, True], ids=["one command", "before MongoDB 8.0"])
def older_server(request: pytest.FixtureRequest) -> bool:
    """Whether the database is taken to lack client-level bulkWrite (MongoDB before 8.0)."""
    return bool(request.param)


@pytest.fixture
def messages(older_server: bool, db: AsyncDatabase, monkeypatch: pytest.MonkeyPatch) -> MessageStore:
    """A message store writing messages and events in one bulkWrite, or, as on a server without it, in two commands."""
    store = MessageStore(db, EventStore(db, ttl_days=1))
    if older_server:

        async def too_old(*args: Any, **kwargs: Any) -> Any:
            raise InvalidOperation("MongoClient.bulk_write requires MongoDB server version 8.0+.")

        monkeypatch.setattr(db.client, "bulk_write", too_old)
    return store


def _body(message_id: str, payload: str = "v1.00000000.AAAA") -> dict[str, str]:
    return {"id": message_id, "to": "bob", "type": "request", "topic": "v1.00000000.AAAA", "payload": payload}


async def _send(store: MessageStore, project_id: str, body: dict[str, str]) -> Sent:
    """Send ``body`` from alice to bob (agent-b), as the API would store it."""
    sender = {"_id": "agent-a", "slug": "alice"}
    return await store.insert(project_id=project_id, sender=sender, body=body, recipients=["agent-b"], ttl_hours=1)


async def test_concurrent_sends_store_each_message_with_its_event_and_fill_the_seq_of_a_retry(
    messages: MessageStore,
) -> None:
    store, events = messages, messages._events
    await events.ensure_indexes()
    await store.ensure_indexes()
    project_id = f"sends-{secrets.token_hex(4)}"

    def send(body: dict[str, str]) -> Coroutine[Any, Any, Sent]:
        return _send(store, project_id, body)

    ids = [new_id() for _ in range(10)]
    # Sent together, so they share batches: ten new ids, a retry of the first, a changed body.
    outcomes = await asyncio.gather(
        *(send(_body(i)) for i in ids),
        send(_body(ids[0])),
        send(_body(ids[1], payload="v1.00000000.BBBB")),
        return_exceptions=True,
    )
    created = [o for o in outcomes[:10] if not isinstance(o, BaseException)]
    assert len(created) == 10 and all(made for _, made, _ in created)
    for (message, _, event), message_id in zip(created, ids, strict=True):
        assert message["id"] == message_id
        assert (event["type"], event["data"]["id"], event["recipients"]) == ("new_message", message_id, ["agent-b"])
    retry = outcomes[10]
    assert not isinstance(retry, BaseException)
    assert retry[1] is False and retry[2]["type"] == FILLER
    assert isinstance(outcomes[11], IdConflict)
    # Every seq taken is written, the retry's and the conflict's as fillers: no gap to wait on.
    stored = await events.after(project_id, 0, 100)
    assert [e["seq"] for e in stored] == list(range(1, 13))
    assert sorted(e["data"]["id"] for e in stored if e["type"] == "new_message") == sorted(ids)
    assert await store.col.count_documents({"project_id": project_id}) == 10


async def test_a_retry_announces_a_message_whose_event_was_never_stored(
    messages: MessageStore, older_server: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, events = messages, messages._events
    project_id = f"crash-{secrets.token_hex(4)}"
    message_id = new_id()

    def send() -> Coroutine[Any, Any, Sent]:
        return _send(store, project_id, _body(message_id))

    async def server_dies(batch: list[dict[str, Any]], **kwargs: Any) -> None:
        raise ConnectionError("the server died between storing the message and its event")

    async def dies_after_the_message(models: list[InsertOne[Any]], **kwargs: Any) -> None:
        # The one command ran its first write (the message) when the connection broke.
        await store.col.insert_one(models[0]._doc)
        lost = AutoReconnect("connection closed")
        raise ClientBulkWriteException({"error": lost, "writeErrors": [], "writeConcernErrors": []}, False) from lost

    # The first try stores the message, then fails before its event is written.
    real_write, real_bulk_write = events.write, store.col.database.client.bulk_write
    monkeypatch.setattr(events, "write", server_dies)
    if not older_server:
        monkeypatch.setattr(store.col.database.client, "bulk_write", dies_after_the_message)
    with pytest.raises(ConnectionError):
        await send()
    assert await store.col.count_documents({"project_id": project_id}) == 1
    assert await events.after(project_id, 0, 10) == []
    monkeypatch.setattr(events, "write", real_write)
    if not older_server:
        monkeypatch.setattr(store.col.database.client, "bulk_write", real_bulk_write)

    # The client's retry finds the message stored and announces it, since nobody was told.
    message, created, event = await send()
    assert not created and message["id"] == message_id
    assert (event["type"], event["data"]["id"], event["recipients"]) == ("new_message", message_id, ["agent-b"])
    stored = await events.after(project_id, 0, 10)
    assert [(e["type"], e["data"].get("id")) for e in stored] == [("new_message", message_id)]

    # Once announced, a further retry announces nothing again.
    _, created, event = await send()
    assert not created and event["type"] == FILLER
    announced = [e for e in await events.after(project_id, 0, 10) if e["type"] == "new_message"]
    assert len(announced) == 1


async def test_a_send_whose_connection_broke_after_its_event_keeps_that_event(
    db: AsyncDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The one command stored the message and its event, and the answer was lost: the fillers
    # written after it must not fail on, or replace, what is stored, and a retry announces nothing.
    store = MessageStore(db, EventStore(db, ttl_days=1))
    events = store._events
    project_id = f"lost-answer-{secrets.token_hex(4)}"
    message_id = new_id()
    real = db.client.bulk_write

    async def answer_lost(models: list[InsertOne[Any]], **kwargs: Any) -> None:
        await real(models, **kwargs)
        lost = AutoReconnect("connection closed before the reply")
        raise ClientBulkWriteException({"error": lost, "writeErrors": [], "writeConcernErrors": []}, False) from lost

    monkeypatch.setattr(db.client, "bulk_write", answer_lost)
    with pytest.raises(AutoReconnect):
        await _send(store, project_id, _body(message_id))
    monkeypatch.undo()
    stored = await events.after(project_id, 0, 10)
    assert [(e["seq"], e["type"], e["data"].get("id")) for e in stored] == [(1, "new_message", message_id)]

    _, created, event = await _send(store, project_id, _body(message_id))
    assert not created and event["type"] == FILLER
    assert [e["type"] for e in await events.after(project_id, 0, 10)] == ["new_message", FILLER]


async def test_an_event_write_that_fails_after_its_messages_is_written_again(
    db: AsyncDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The messages of the one command were stored and its first event failed alone: that event and
    # those after it are written by the follow-up, as the new_message events they are.
    store = MessageStore(db, EventStore(db, ttl_days=1))
    events = store._events
    project_id = f"event-failed-{secrets.token_hex(4)}"
    ids = [new_id(), new_id()]

    async def first_event_fails(models: list[InsertOne[Any]], **kwargs: Any) -> None:
        half = len(models) // 2
        await store.col.insert_many([model._doc for model in models[:half]])
        error = {"idx": half, "code": 91, "errmsg": "shutting down"}
        raise ClientBulkWriteException({"error": None, "writeErrors": [error], "writeConcernErrors": []}, False)

    monkeypatch.setattr(db.client, "bulk_write", first_event_fails)
    sent = await asyncio.gather(*(_send(store, project_id, _body(i)) for i in ids))
    assert all(created and event["type"] == "new_message" for _, created, event in sent)
    stored = await events.after(project_id, 0, 10)
    assert sorted((e["type"], e["data"]["id"]) for e in stored) == sorted(("new_message", i) for i in ids)


async def test_records_are_announced_in_one_command_while_this_process_numbers_the_project(
    db: AsyncDatabase, older_server: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = EventStore(db, ttl_days=1)
    records = db["refs"]  # announced as code references (kind "ref")
    project_id = f"announce-claim-{secrets.token_hex(4)}"
    asked: list[str] = []
    real_ask = events.counters.find_one_and_update

    async def ask(query: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        asked.append(query["_id"])
        return await real_ask(query, *args, **kwargs)

    async def too_old(*args: Any, **kwargs: Any) -> Any:
        raise InvalidOperation("MongoClient.bulk_write requires MongoDB server version 8.0+.")

    monkeypatch.setattr(events.counters, "find_one_and_update", ask)
    if older_server:
        monkeypatch.setattr(db.client, "bulk_write", too_old)

    async def announce(n: int) -> dict[str, Any]:
        record = {"_id": f"{project_id}:r{n}", "project_id": project_id}
        await records.insert_one(record)
        event = await events.announce("ref", record, "new_ref", ["*"], {"id": f"r{n}"})
        assert event is not None
        named = await records.find_one({"_id": record["_id"]})
        assert named is not None and named["seq"] == event["seq"], "the record does not name its event"
        return event

    for n in range(5):
        assert (await announce(n))["seq"] == n + 1
    # Asked once (the first), then each seq was taken in the command that wrote the event.
    assert len(asked) == (5 if older_server else 1)
    # Another process's event: the next claim misses, and the announcement asks instead.
    await EventStore(db, ttl_days=1).append(project_id, "presence_change", ["*"], {"agent": "carol"})
    assert (await announce(5))["seq"] == 7
    assert len(asked) == (6 if older_server else 2)
    stored = await events.after(project_id, 0, 100)
    assert [(e["seq"], e["type"]) for e in stored] == [(n, "new_ref") for n in range(1, 6)] + [
        (6, "presence_change"),
        (7, "new_ref"),
    ]


async def test_sends_from_racing_servers_claim_dense_unique_seqs_each_announced_once(mongo_uri: str) -> None:
    # Separate clients and stores, as separate server processes: each guesses the counter from its
    # own last number, and a guess that another one overtook must fall back, never reuse a seq.
    clients = [AsyncMongoClient(mongo_uri) for _ in range(3)]
    stores = [MessageStore(c["nexysync_event_log_test"], EventStore(c["nexysync_event_log_test"], 1)) for c in clients]
    project_id = f"claims-{secrets.token_hex(4)}"
    try:

        async def sender(store: MessageStore) -> list[str]:
            ids = [new_id() for _ in range(40)]
            for message_id in ids:
                _, created, event = await _send(store, project_id, _body(message_id))
                assert created and event["type"] == "new_message" and event["data"]["id"] == message_id
            return ids

        sent = await asyncio.gather(*(sender(stores[i % 3]) for i in range(6)))
        every_id = sorted(i for ids in sent for i in ids)
        stored = await stores[0]._events.after(project_id, 0, 10_000)
        assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1)), "seqs are not dense"
        announced = sorted(e["data"]["id"] for e in stored if e["type"] == "new_message")
        assert announced == every_id, "a message was announced twice or not at all"
        # Each message names the event that announces it (what a retry checks).
        by_seq = {e["seq"]: e for e in stored}
        async for message in stores[0].col.find({"project_id": project_id}):
            assert by_seq[message["seq"]]["data"]["id"] == message["id"]
    finally:
        for client in clients:
            await client.close()


async def test_a_lone_sender_numbers_its_sends_in_their_writes_until_another_writer_comes(
    db: AsyncDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MessageStore(db, EventStore(db, ttl_days=1))
    events = store._events
    project_id = f"lone-{secrets.token_hex(4)}"
    asked: list[str] = []
    real_ask = events.counters.find_one_and_update

    async def ask(query: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        asked.append(query["_id"])
        return await real_ask(query, *args, **kwargs)

    monkeypatch.setattr(events.counters, "find_one_and_update", ask)
    for _ in range(10):
        await _send(store, project_id, _body(new_id()))
    # Asked once, for the first send; the other nine took their seq in the command that wrote them.
    assert len(asked) == 1
    # Another writer (another process's event) moves the counter: the next guess misses and the
    # send asks instead, with nothing written twice or lost; for a while sends ask first.
    other = EventStore(db, ttl_days=1)
    await other.append(project_id, "presence_change", ["*"], {"agent": "carol"})
    for _ in range(3):
        await _send(store, project_id, _body(new_id()))
    assert len(asked) == 4
    stored = await events.after(project_id, 0, 100)
    assert [e["seq"] for e in stored] == list(range(1, 15))
    assert [e["type"] for e in stored].count("new_message") == 13


async def test_announce_tells_once_per_record_even_after_its_event_expired(db: AsyncDatabase) -> None:
    events = EventStore(db, ttl_days=1)
    records = db["refs"]  # announced as code references (kind "ref")
    project_id = f"announce-{secrets.token_hex(4)}"
    record = {"_id": f"{project_id}:r1", "project_id": project_id}
    await records.insert_one(record)
    first = await events.announce("ref", record, "new_ref", ["*"], {"id": "r1"})
    assert first is not None and first["type"] == "new_ref"
    stored = await records.find_one({"_id": record["_id"]})
    assert stored is not None and stored["seq"] == first["seq"]
    # A retry that finds the record announced tells nobody again, also once its event is gone.
    await events.col.delete_many({"project_id": project_id})
    assert await events.announce("ref", stored, "new_ref", ["*"], {"id": "r1"}) is None
    assert await events.after(project_id, 0, 10) == []


async def test_a_failed_retry_look_up_fails_the_retry_alone_and_every_seq_is_written(
    messages: MessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, events = messages, messages._events
    project_id = f"lookup-{secrets.token_hex(4)}"

    def send(message_id: str) -> Coroutine[Any, Any, Sent]:
        return _send(store, project_id, _body(message_id))

    async def database_away(keys: list[str], kind: str) -> set[str]:
        raise ConnectionError("the events collection did not answer")

    retried = new_id()
    await send(retried)
    monkeypatch.setattr(events, "of_kind", database_away)
    fresh = [new_id(), new_id()]
    outcomes = await asyncio.gather(send(fresh[0]), send(retried), send(fresh[1]), return_exceptions=True)
    assert isinstance(outcomes[1], ConnectionError)
    for outcome in (outcomes[0], outcomes[2]):
        assert not isinstance(outcome, BaseException) and outcome[1] and outcome[2]["type"] == "new_message"
    stored = await events.after(project_id, 0, 10)
    assert [e["seq"] for e in stored] == [1, 2, 3, 4]  # the failed retry's seq too
    assert sorted(e["data"]["id"] for e in stored if e["type"] == "new_message") == sorted([retried, *fresh])


async def test_numbers_taken_before_another_project_failed_are_written(
    db: AsyncDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = EventStore(db, ttl_days=1)
    first, second = f"p1-{secrets.token_hex(4)}", f"p2-{secrets.token_hex(4)}"
    real = events.counters.find_one_and_update

    async def second_fails(query: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if query["_id"] == f"events:{second}":
            raise ConnectionError("the counter of the second project did not answer")
        return await real(query, *args, **kwargs)

    monkeypatch.setattr(events.counters, "find_one_and_update", second_fails)
    with pytest.raises(ConnectionError):
        await events.number([first, second, first])
    # The first project's two numbers were taken: they are in its log as fillers.
    assert [(e["seq"], e["type"]) for e in await events.after(first, 0, 10)] == [(1, FILLER), (2, FILLER)]
