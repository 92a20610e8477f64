"""The key check, the net under the ``key_revoked`` event, against the embedded database.

A key can stop working with no event to say so (a watcher that was down, a project deleted with
its event log): the check asks the database which keys the agents of this process's streams hold
now, and ends the streams of every other key.
"""

from __future__ import annotations

import secrets
from typing import Any

from pymongo import AsyncMongoClient

from nexysync_server.ids import new_id
from nexysync_server.realtime.hub import REVOKED, Hub
from nexysync_server.realtime.keycheck import KeyCheck
from nexysync_server.security import sha256_hex
from nexysync_server.store.agents import AgentStore
from nexysync_server.store.events import EventStore


class _NoSessions:
    async def live(self, session_ids: set[str]) -> set[str]:
        raise AssertionError("no owner stream is open")


async def test_streams_of_a_key_that_was_rotated_or_deleted_without_an_event_end_and_no_other(
    mongo_uri: str,
) -> None:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_uri, tz_aware=True)
    db = client[f"keycheck_{secrets.token_hex(4)}"]
    agents, events = AgentStore(db, cache_ttl_s=0), EventStore(db, ttl_days=1)
    await agents.ensure_indexes()
    project_id = f"project-{new_id()}"
    try:
        hub = Hub(events, gap_wait_s=2.0, sweep_interval_s=1.0)
        check = KeyCheck(hub, agents, _NoSessions(), interval_s=60)  # type: ignore[arg-type]
        streams, ids = {}, {}
        for slug in ("kept", "rotated", "deleted"):
            agent, key = await agents.create(project_id, slug, slug, "dev", [])
            ids[slug] = agent["_id"]
            streams[slug], _ = await hub.subscribe(project_id, agent["_id"], sha256_hex(key))
        await check.check()
        assert not any(stream.ended for stream in streams.values())

        # Straight in the database: no event tells the hub.
        await agents.col.update_one({"_id": ids["rotated"]}, {"$set": {"key_hash": "new"}})
        await agents.col.delete_one({"_id": ids["deleted"]})
        await check.check()
        assert [slug for slug, stream in streams.items() if stream.ended] == ["rotated", "deleted"]
        assert streams["rotated"].queue.get_nowait() == REVOKED
        assert not streams["kept"].ended
    finally:
        await agents.delete_project(project_id)
        await events.delete_project(project_id)
        await client.close()
