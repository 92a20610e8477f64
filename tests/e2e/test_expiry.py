"""Ended documents on the embedded database: a plain index and a sweep, not a TTL index read on every find."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

from nexysync_server.ids import utcnow
from nexysync_server.store.expiry import Expiry


@pytest.fixture
async def col(mongo_uri: str) -> AsyncIterator[AsyncCollection[Any]]:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_uri, tz_aware=True)
    # nx-27017 shares collections across database names: the collection's name is what isolates.
    collection = client["expiry"][f"expiring_{secrets.token_hex(4)}"]
    yield collection
    await collection.drop()
    await client.close()


async def ttl_of(col: AsyncCollection[Any], field: str) -> list[Any]:
    return [
        index.get("expireAfterSeconds") async for index in await col.list_indexes() if list(index["key"]) == [field]
    ]


async def test_an_earlier_ttl_index_is_replaced_and_the_sweep_deletes_what_ended(col: AsyncCollection[Any]) -> None:
    await col.create_index("expires_at", expireAfterSeconds=0)  # as an earlier version made it
    assert await ttl_of(col, "expires_at") == [0]
    expiry = Expiry()
    await expiry.index(col, "expires_at")
    await expiry.index(col, "expires_at")  # at every start: once is enough
    assert await ttl_of(col, "expires_at") == [None]
    now = utcnow()
    await col.insert_many(
        [
            {"_id": "ended", "expires_at": now - timedelta(seconds=1)},
            {"_id": "ending-later", "expires_at": now + timedelta(hours=1)},
            {"_id": "never"},
        ]
    )
    # Reading no longer deletes (the TTL index did so before every find).
    assert await col.count_documents({}) == 3
    assert await expiry.sweep() == 1
    assert sorted([doc["_id"] async for doc in col.find({})]) == ["ending-later", "never"]
    assert await expiry.sweep() == 0
