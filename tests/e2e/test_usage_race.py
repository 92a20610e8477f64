"""Two first reservations of a project's storage at once both count (found by the soak)."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import AsyncMongoClient

from nexysync_server.ids import new_id
from nexysync_server.store.usage import UsageStore

pytestmark = pytest.mark.e2e


class _FirstIncrementMisses:
    """The collection as a racing reserver saw it: its first ``$inc`` ran before the counter existed."""

    def __init__(self, col: Any) -> None:
        self._col = col
        self._missed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._col, name)

    async def update_one(self, *args: Any, **kwargs: Any) -> Any:
        if not self._missed:
            self._missed = True
            return await self._col.update_one({"_id": "no such counter"}, *args[1:], **kwargs)
        return await self._col.update_one(*args, **kwargs)


async def test_a_first_reservation_that_lost_the_race_to_make_the_counter_still_counts(mongo_uri: str) -> None:
    client: AsyncMongoClient = AsyncMongoClient(mongo_uri)
    try:
        usage = UsageStore(client["usage_race"])
        project_id = new_id()
        assert await usage.reserve_storage(project_id, 10, 1000)  # the racer that made the counter
        racer = UsageStore(client["usage_race"])
        racer.col = _FirstIncrementMisses(racer.col)  # type: ignore[assignment]
        assert await racer.reserve_storage(project_id, 20, 1000)
        assert await usage.storage_bytes(project_id) == 30
    finally:
        await client.close()
