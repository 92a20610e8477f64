"""The event log's numbering against a real database, with writers racing as separate servers would."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from pymongo import AsyncMongoClient

from nexysync_server.store.events import EventStore

pytestmark = pytest.mark.e2e


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
