"""The upload lease against the embedded database: one holder at a time, in every order of events.

nx-27017 mishandles an ``$or`` beside other conditions in a query; the claim once had exactly that
shape, and a second upload could claim a file whose first upload still held it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from nexysync_server.ids import new_id
from nexysync_server.store.files import FileStore

pytestmark = pytest.mark.e2e

AGENT: Any = {"_id": "agent-1", "project_id": "p1", "slug": "uploader"}


@pytest.fixture
async def files(mongo_uri: str) -> AsyncIterator[FileStore]:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_uri)
    db: AsyncDatabase[Any] = client[f"nexysync_lease_{new_id().lower()}"]
    yield FileStore(db, retention_days=1, pending_ttl_s=3600)
    await client.drop_database(db.name)
    await client.close()


async def _announce(files: FileStore) -> str:
    file_id = new_id()
    await files.create("p1", AGENT, {"id": file_id, "name": "a.bin", "size": 10})
    return file_id


async def test_a_held_lease_refuses_every_second_claim(files: FileStore) -> None:
    for _ in range(20):
        file_id = await _announce(files)
        first = await files.claim_upload("p1", file_id, lease_s=30)
        assert first is not None
        assert await files.claim_upload("p1", file_id, lease_s=30) is None
        # Renewed, it is still held; released, the next claim gets it at once.
        await files.renew_upload("p1", file_id, first, lease_s=30)
        assert await files.claim_upload("p1", file_id, lease_s=30) is None
        await files.release_upload("p1", file_id, first)
        assert await files.claim_upload("p1", file_id, lease_s=30) is not None


async def test_racing_claims_have_one_winner(files: FileStore) -> None:
    for _ in range(20):
        file_id = await _announce(files)
        tokens = await asyncio.gather(*(files.claim_upload("p1", file_id, lease_s=30) for _ in range(5)))
        assert sum(token is not None for token in tokens) == 1


async def test_a_lease_that_ran_out_can_be_claimed(files: FileStore) -> None:
    file_id = await _announce(files)
    assert await files.claim_upload("p1", file_id, lease_s=0.05) is not None
    await asyncio.sleep(0.1)
    assert await files.claim_upload("p1", file_id, lease_s=30) is not None


async def test_a_file_stored_before_leases_existed_is_claimed_once(files: FileStore) -> None:
    file_id = await _announce(files)
    await files.col.update_one({"id": file_id}, {"$unset": {"lease_until_ms": ""}})
    assert await files.claim_upload("p1", file_id, lease_s=30) is not None
    assert await files.claim_upload("p1", file_id, lease_s=30) is None
