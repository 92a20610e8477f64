"""Every query of the store that compares a time against "now", on the embedded database.

nx-27017's ``find`` and ``update`` compare date-like strings only to the second (its
``count_documents`` does not). Leases and deadlines that must not pass early are kept as epoch
milliseconds (``expires_ms``, ``lease_until_ms``); sweeps that only find what is due keep ISO
strings, and may find it up to a second late, never early. Each test puts the deadline in the
current second, where the two differ.

nx-27017 also ignores the database name (``a.c`` and ``b.c`` are one collection), so each test
looks only at the documents it made.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from nexysync_server.ids import epoch_ms, iso, new_id, utcnow
from nexysync_server.store.files import PENDING, READY, FileStore
from nexysync_server.store.presence import PresenceStore
from nexysync_server.store.receipts import ReceiptStore

pytestmark = pytest.mark.e2e


@pytest.fixture
async def db(mongo_uri: str) -> AsyncIterator[Any]:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_uri)
    database = client[f"time_queries_{secrets.token_hex(4)}"]
    await database.command("ping")  # connected before any deadline is taken
    yield database
    await client.close()


async def early_in_a_second() -> None:
    """Wait until the current second has at least 600 ms left, so "now + 400 ms" falls in it."""
    while time.time() % 1 > 0.4:
        await asyncio.sleep(0.02)


async def swept(store: PresenceStore) -> set[str]:
    return {lease["_id"] for lease in await store.expired(limit=10_000)}


async def test_a_presence_lease_ending_later_this_second_is_live_and_not_swept(db: Any) -> None:
    store = PresenceStore(db, cache_ttl_s=0)
    await store.ensure_indexes()
    agent = {"_id": new_id(), "project_id": new_id(), "slug": "a"}
    await early_in_a_second()
    lease_id = await store.hold(agent, lease_s=0.4)  # type: ignore[arg-type]
    # At dbd1551 the sweep found this lease "expired" (and ended it) while it had 400 ms left,
    # and every query of live streams missed it.
    assert lease_id not in await swept(store)
    assert await store.live_leases(agent["_id"]) == 1
    assert "a" in await store.streaming(agent["project_id"])
    await asyncio.sleep(0.5)
    assert lease_id in await swept(store)
    assert await store.live_leases(agent["_id"]) == 0
    assert await store.streaming(agent["project_id"]) == {}


async def test_a_lease_of_the_previous_version_is_swept_by_its_string_never_early(db: Any) -> None:
    store = PresenceStore(db, cache_ttl_s=0)
    await store.ensure_indexes()
    agent_id, project_id = new_id(), new_id()
    await early_in_a_second()
    ends = utcnow() + timedelta(milliseconds=400)
    lease = {"_id": new_id(), "project_id": project_id, "agent_id": agent_id, "slug": "old"}
    old = {**lease, "since": iso(utcnow()), "expires": iso(ends), "gc_at": utcnow() + timedelta(days=1)}
    await db["presence_leases"].insert_one(old)
    assert lease["_id"] not in await swept(store)
    assert await store.live_leases(agent_id) == 1
    await asyncio.sleep(1.5)
    assert lease["_id"] in await swept(store)


async def test_the_file_sweep_finds_retention_and_abandoned_uploads_once_due_never_before(db: Any) -> None:
    store = FileStore(db, retention_days=1, pending_ttl_s=60)
    await early_in_a_second()
    soon = iso(utcnow() + timedelta(milliseconds=400))
    far = iso(utcnow() + timedelta(days=1))
    kept = {"_id": f"{new_id()}:kept", "status": READY, "expires_at": soon, "pending_until": far}
    abandoned = {"_id": f"{new_id()}:abandoned", "status": PENDING, "expires_at": far, "pending_until": soon}
    await store.col.insert_many([kept, abandoned])
    mine = {kept["_id"], abandoned["_id"]}
    assert not mine & {doc["_id"] for doc in await store.due()}
    await asyncio.sleep(1.5)
    assert mine <= {doc["_id"] for doc in await store.due()}


async def test_the_receipt_sweep_finds_untold_steps_once_old_enough_never_before(db: Any) -> None:
    store = ReceiptStore(db)
    await early_in_a_second()
    moved = iso(utcnow())
    doc = {
        "_id": new_id(),
        "project_id": "p",
        "message_id": "m",
        "sender_id": "s",
        "agent": "a",
        "rank": 1,
        "untold": True,
        "moved_at": moved,
        "delivered_at": moved,
    }
    await store.col.insert_one(doc)
    assert doc["_id"] not in {step.key for step in await store.untold(older_than_s=0.4)}
    await asyncio.sleep(1.5)
    assert doc["_id"] in {step.key for step in await store.untold(older_than_s=0.4)}


async def test_the_epoch_milliseconds_the_store_compares_are_exact(db: Any) -> None:
    col = db["probe"]
    await early_in_a_second()
    now = epoch_ms()
    await col.insert_one({"_id": new_id(), "at": iso(utcnow() + timedelta(milliseconds=400)), "at_ms": now + 400})
    assert await col.find_one({"at_ms": {"$gt": now, "$lte": now + 400}}) is not None
    assert await col.find_one({"at_ms": {"$lte": now, "$gt": now - 1000}}) is None
