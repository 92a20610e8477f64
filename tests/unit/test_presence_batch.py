"""Presence transitions go out in batches, one ``presence_change`` per project per interval."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from nexysync_server.services.presence import Presence
from nexysync_server.store.documents import AgentRef

BATCH_S = 0.05


class FakeStore:
    """Leases and online states in memory, shaped like ``PresenceStore``."""

    def __init__(self) -> None:
        self.leases: dict[str, str] = {}  # lease id -> agent id
        self.online: set[str] = set()
        self._ids = itertools.count()

    async def hold(self, agent: AgentRef, lease_s: float) -> str:
        lease_id = f"lease-{next(self._ids)}"
        self.leases[lease_id] = agent["_id"]
        return lease_id

    async def live_leases(self, agent_id: str) -> int:
        return sum(1 for holder in self.leases.values() if holder == agent_id)

    async def release(self, lease_id: str) -> bool:
        return self.leases.pop(lease_id, None) is not None

    async def flip(self, agent: AgentRef, online: bool) -> bool:
        if (agent["_id"] in self.online) == online:
            return False
        (self.online.add if online else self.online.discard)(agent["_id"])
        return True

    async def renew(self, lease_ids: list[str], lease_s: float) -> None:
        pass

    async def expired(self) -> list[Any]:
        return []


class FakeHub:
    """Records what is emitted; fails the next ``failures`` writes; can hold a write open."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, list[str], dict[str, Any]]] = []
        self.failures = 0
        self.gate: asyncio.Event | None = None
        self.writing = asyncio.Event()

    async def emit(self, project_id: str, kind: str, recipients: list[str], data: dict[str, Any]) -> None:
        self.writing.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database unavailable")
        self.events.append((project_id, kind, recipients, data))


def agent(slug: str, project_id: str = "p1") -> AgentRef:
    return {"_id": f"{project_id}-{slug}", "project_id": project_id, "slug": slug}


def presence(hub: FakeHub) -> Presence:
    return Presence(FakeStore(), hub, lease_s=30, grace_s=0.01, batch_s=BATCH_S)  # type: ignore[arg-type]


def changes(event: tuple[str, str, list[str], dict[str, Any]]) -> list[tuple[str, bool]]:
    return [(change["agent"], change["online"]) for change in event[3]["changes"]]


async def settle(rounds: int = 3) -> None:
    await asyncio.sleep(rounds * BATCH_S + 0.05)


async def test_many_agents_coming_online_make_one_event() -> None:
    hub = FakeHub()
    service = presence(hub)
    await asyncio.gather(*(service.connect(agent(f"a{i}")) for i in range(200)))
    await settle()
    assert len(hub.events) == 1
    project_id, kind, recipients, _ = hub.events[0]
    assert (project_id, kind, recipients) == ("p1", "presence_change", ["*"])
    assert changes(hub.events[0]) == [(f"a{i}", True) for i in range(200)]


async def test_an_agents_last_transition_wins_and_goes_last() -> None:
    hub = FakeHub()
    service = presence(hub)
    await service.connect(agent("bob"))
    carol = await service.connect(agent("carol"))
    await service.disconnect(carol)
    await asyncio.sleep(0.02)  # past the grace, within the batch
    await settle()
    assert [changes(event) for event in hub.events] == [[("bob", True), ("carol", False)]]


async def test_each_project_has_its_own_batch() -> None:
    hub = FakeHub()
    service = presence(hub)
    await service.connect(agent("bob", "p1"))
    await service.connect(agent("bob", "p2"))
    await settle()
    assert sorted((event[0], *changes(event)) for event in hub.events) == [
        ("p1", ("bob", True)),
        ("p2", ("bob", True)),
    ]


async def test_a_failed_write_is_tried_again_under_newer_transitions() -> None:
    hub = FakeHub()
    hub.failures = 2
    service = presence(hub)
    await service.connect(agent("bob"))
    carol = await service.connect(agent("carol"))
    await asyncio.sleep(BATCH_S * 1.5)  # the first write failed
    await service.disconnect(carol)
    await service.connect(agent("dave"))
    await settle(5)
    # Carol's offline replaced her online (and, being later than dave's, goes after it); nothing
    # was announced twice or lost.
    assert [changes(event) for event in hub.events] == [[("bob", True), ("dave", True), ("carol", False)]]


async def test_a_transition_during_a_write_goes_out_next() -> None:
    hub = FakeHub()
    hub.gate = asyncio.Event()
    service = presence(hub)
    await service.connect(agent("bob"))
    await asyncio.wait_for(hub.writing.wait(), 1)  # bob's batch is being written
    await service.connect(agent("carol"))
    hub.gate.set()
    await settle()
    assert [changes(event) for event in hub.events] == [[("bob", True)], [("carol", True)]]


async def test_stop_announces_what_waits_at_once() -> None:
    hub = FakeHub()
    service = Presence(FakeStore(), hub, lease_s=30, grace_s=0.01, batch_s=60)  # type: ignore[arg-type]
    await service.connect(agent("bob"))
    assert hub.events == []
    await asyncio.wait_for(service.stop(), 1)
    assert [changes(event) for event in hub.events] == [[("bob", True)]]


@pytest.mark.parametrize("count", [1, 3])
async def test_an_agent_with_several_streams_comes_online_once(count: int) -> None:
    hub = FakeHub()
    service = presence(hub)
    for _ in range(count):
        await service.connect(agent("bob"))
    await settle()
    assert [changes(event) for event in hub.events] == [[("bob", True)]]
