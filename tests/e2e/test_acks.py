"""Acks against a real database: a sender is told of each recipient's ack at least once."""

from __future__ import annotations

import secrets

import pytest
from pymongo import AsyncMongoClient

from nexysync_server.ids import new_id
from nexysync_server.store.events import EventStore
from nexysync_server.store.messages import MessageStore

pytestmark = pytest.mark.e2e


async def test_an_ack_whose_sender_was_not_told_is_told_on_the_retry_and_then_no_more(mongo_uri: str) -> None:
    client: AsyncMongoClient = AsyncMongoClient(mongo_uri)
    db = client["nexysync_acks_test"]
    store = MessageStore(db, EventStore(db, ttl_days=1))
    project_id = f"acks-{secrets.token_hex(4)}"
    message_id = new_id()
    body = {"id": message_id, "to": "bob", "type": "request", "topic": "v1.00000000.AAAA", "payload": "v1.0.BB"}
    try:
        await store.insert(
            project_id=project_id,
            sender={"_id": "alice-id", "slug": "alice"},
            body=body,
            recipients=["bob-id"],
            ttl_hours=1,
        )
        acked, untold = await store.ack(project_id, "bob-id", [message_id, new_id()])
        assert acked == [message_id] and untold == {"alice-id": [message_id]}
        # The server died before telling alice: bob's retry finds the ack stored, and tells her.
        acked, untold = await store.ack(project_id, "bob-id", [message_id])
        assert acked == [message_id] and untold == {"alice-id": [message_id]}
        await store.told_acks(project_id, "bob-id", [message_id])
        # Told once: acking again tells nobody.
        assert await store.ack(project_id, "bob-id", [message_id]) == ([message_id], {})
        # Only a recipient acks: the sender's own ack of it is not found.
        assert await store.ack(project_id, "alice-id", [message_id]) == ([], {})
    finally:
        await client.close()
