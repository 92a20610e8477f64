"""The lease store on the embedded database, with an injected clock: ends, renewals, the sweep, the guard."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from nexysync_server.ids import new_id
from nexysync_server.store import leases as store_leases
from nexysync_server.store.documents import AgentRef, PathLeaseDoc
from nexysync_server.store.leases import LeaseStore, Refused


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000_000

    def __call__(self) -> int:
        return self.now


def wanted(agent: AgentRef, key: str, ancestors: list[str], ttl_ms: int, now: int) -> PathLeaseDoc:
    return {
        "_id": new_id(),
        "project_id": agent["project_id"],
        "agent_id": agent["_id"],
        "agent": agent["slug"],
        "exclusive": True,
        "key": key,
        "ancestors": ancestors,
        "path": "sealed",
        "reason": None,
        "token": 0,
        "created_ms": 0,
        "renewed_ms": 0,
        "expires_ms": now + ttl_ms,
    }


@pytest.fixture
async def store(mongo_uri: str) -> Any:
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongo_uri, tz_aware=True)
    leases = LeaseStore(client[f"leases_{secrets.token_hex(4)}"], Clock())
    await leases.ensure_indexes()
    yield leases
    await client.close()


async def test_a_lease_ends_by_the_clock_a_renewal_moves_its_end_and_the_sweep_removes_it_once(
    store: LeaseStore,
) -> None:
    clock: Clock = store.clock  # type: ignore[assignment]
    project_id = f"p-{new_id()}"
    alice: AgentRef = {"_id": "alice-id", "project_id": project_id, "slug": "alice"}
    bob: AgentRef = {"_id": "bob-id", "project_id": project_id, "slug": "bob"}
    try:
        (held,) = await store.grant(alice, [wanted(alice, "k", [], 10_000, clock.now)], per_agent=5, per_project=5)  # type: ignore[misc]
        clock.now += 9_000
        assert isinstance(
            await store.grant(bob, [wanted(bob, "k", [], 10_000, clock.now)], per_agent=5, per_project=5), Refused
        )
        renewed = await store.renew(project_id, "alice-id", held["_id"], 10)
        assert renewed is not None and renewed["expires_ms"] == clock.now + 10_000
        clock.now += 9_000  # past the first end, within the renewed one
        assert [doc["_id"] for doc in await store.live(project_id)] == [held["_id"]]
        # (The clock is years ahead: other tests' leases in the shared database look ended.)
        assert [doc for doc in await store.ended() if doc["project_id"] == project_id] == []
        clock.now += 2_000  # past the renewed end
        assert await store.live(project_id) == []
        assert await store.renew(project_id, "alice-id", held["_id"], 10) is None  # too late to renew
        (ended,) = [doc for doc in await store.ended() if doc["project_id"] == project_id]
        assert await store.remove_ended(ended) is True
        assert await store.remove_ended(ended) is False  # a second sweeper announces nothing
        granted = await store.grant(bob, [wanted(bob, "k", [], 10_000, clock.now)], per_agent=5, per_project=5)
        assert not isinstance(granted, Refused) and granted[0]["token"] > held["token"]
    finally:
        await store.delete_project(project_id)


async def test_limits_per_agent_and_per_project(store: LeaseStore) -> None:
    project_id = f"p-{new_id()}"
    alice: AgentRef = {"_id": "alice-id", "project_id": project_id, "slug": "alice"}
    bob: AgentRef = {"_id": "bob-id", "project_id": project_id, "slug": "bob"}
    now = store.clock()
    try:
        assert not isinstance(
            await store.grant(
                alice, [wanted(alice, f"a{i}", [], 60_000, now) for i in range(2)], per_agent=2, per_project=3
            ),
            Refused,
        )
        assert await store.grant(alice, [wanted(alice, "a9", [], 60_000, now)], per_agent=2, per_project=3) == Refused(
            [], "agent"
        )
        assert not isinstance(
            await store.grant(bob, [wanted(bob, "b0", [], 60_000, now)], per_agent=2, per_project=3), Refused
        )
        assert await store.grant(bob, [wanted(bob, "b1", [], 60_000, now)], per_agent=2, per_project=3) == Refused(
            [], "project"
        )
    finally:
        await store.delete_project(project_id)


async def test_a_claimer_that_held_the_guard_too_long_is_granted_nothing(store: LeaseStore) -> None:
    clock: Clock = store.clock  # type: ignore[assignment]
    project_id = f"p-{new_id()}"
    alice: AgentRef = {"_id": "alice-id", "project_id": project_id, "slug": "alice"}
    real_live = store.live

    async def slow_live(project: str, agent_id: str | None = None) -> list[PathLeaseDoc]:
        # While alice's claim reads, its guard runs out and another claimer takes it.
        clock.now += store_leases.GUARD_MS + 1
        await store._take_guard(project)
        return await real_live(project, agent_id)

    store.live = slow_live  # type: ignore[method-assign]
    try:
        with pytest.raises(store_leases.GuardLost):
            await store.grant(alice, [wanted(alice, "k", [], 60_000, clock.now)], per_agent=5, per_project=5)
        store.live = real_live  # type: ignore[method-assign]
        assert await store.live(project_id) == []
    finally:
        await store.delete_project(project_id)
