"""The storage counter behind the storage quota, against a real database with racing reservers."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from pymongo import AsyncMongoClient

from nexysync_server.store.usage import UsageStore

pytestmark = pytest.mark.e2e

LIMIT = 10_000


async def test_racing_reservations_never_pass_the_limit(mongo_uri: str) -> None:
    # Separate clients, like separate workers, reserving 100 bytes each until refused.
    clients = [AsyncMongoClient(mongo_uri) for _ in range(3)]
    stores = [UsageStore(client["nexysync_storage_quota_test"]) for client in clients]
    project_id = f"storage-{secrets.token_hex(4)}"
    try:
        # No counter exists before the race: its creation is raced too.
        async def reserve(store: UsageStore) -> int:
            granted = 0
            while await store.reserve_storage(project_id, 100, LIMIT):
                granted += 1
            return granted

        granted = await asyncio.gather(*(reserve(stores[i % 3]) for i in range(9)))
        assert sum(granted) == LIMIT // 100
        assert await stores[1].storage_bytes(project_id) == LIMIT

        await stores[2].release_storage(project_id, 250)
        assert await stores[0].storage_bytes(project_id) == LIMIT - 250
        assert await stores[0].reserve_storage(project_id, 250, LIMIT)
        assert not await stores[0].reserve_storage(project_id, 1, LIMIT)
        assert not await stores[0].reserve_storage(f"{project_id}-other", LIMIT + 1, LIMIT)

        await stores[0].delete_project(project_id)
        assert await stores[1].storage_bytes(project_id) == 0
    finally:
        for client in clients:
            await client.close()


async def counted(usage: UsageStore, project_id: str) -> tuple[int, int]:
    """Today's count and bytes as a quota check sees them: stored plus unwritten."""
    stored, unwritten = await usage.counted_today(project_id)
    return stored[0] + unwritten[0], stored[1] + unwritten[1]


async def test_a_flush_never_hides_what_a_quota_check_must_count(mongo_uri: str) -> None:
    client: AsyncMongoClient = AsyncMongoClient(mongo_uri)
    usage = UsageStore(client["nexysync_storage_quota_test"])
    project_id = f"messages-{secrets.token_hex(4)}"
    try:
        assert await counted(usage, project_id) == (0, 0)  # the stored counts are now cached
        usage.add_messages(project_id, 1, 300)
        assert await counted(usage, project_id) == (1, 300)
        # Written to the database while the cached stored counts are still fresh: at 75f16e8 the
        # sends moved out of "pending" but not into the cached counts, and a burst passed the quota.
        await usage.flush()
        assert await counted(usage, project_id) == (1, 300)
        usage.add_messages(project_id, 2, 50)
        await usage.flush()
        assert await counted(usage, project_id) == (3, 350)
        assert await counted(UsageStore(client["nexysync_storage_quota_test"]), project_id) == (3, 350)
    finally:
        await usage.delete_project(project_id)
        await client.close()


async def test_a_settle_writes_what_was_unwritten_and_reads_every_workers_totals(mongo_uri: str) -> None:
    client: AsyncMongoClient = AsyncMongoClient(mongo_uri)
    usage, other = (UsageStore(client["nexysync_storage_quota_test"]) for _ in range(2))
    project_id = f"settle-{secrets.token_hex(4)}"
    try:
        other.add_messages(project_id, 4, 40)
        await other.flush()
        assert await counted(usage, project_id) == (4, 40)
        usage.add_messages(project_id, 2, 20)
        # The two unwritten sends and this one are written at once; the totals include the other's.
        assert await usage.settle_messages(project_id, 1, 10) == (7, 70)
        assert usage.pending_messages(project_id) == (0, 0)
        assert await counted(usage, project_id) == (7, 70)
        assert await counted(UsageStore(client["nexysync_storage_quota_test"]), project_id) == (7, 70)
        # A settle that fails keeps what was unwritten for the next flush, without the failed send.
        usage.add_messages(project_id, 1, 5)
        real_col = usage.col

        class Gone:
            async def find_one_and_update(self, *_args: object, **_kwargs: object) -> None:
                raise ConnectionError("database gone")

        usage.col = Gone()  # type: ignore[assignment]
        with pytest.raises(ConnectionError):
            await usage.settle_messages(project_id, 1, 10)
        usage.col = real_col
        assert usage.pending_messages(project_id) == (1, 5)
        await usage.flush()
        assert await counted(UsageStore(client["nexysync_storage_quota_test"]), project_id) == (8, 75)
    finally:
        await usage.delete_project(project_id)
        await client.close()
