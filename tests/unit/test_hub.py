"""The hub's ordering: events released once each, in seq order, lost seqs skipped after a wait."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from nexysync_server.ids import iso, utcnow
from nexysync_server.realtime.hub import KEY_REVOKED, OVERFLOW, REVOKED, Hub, Listener, Mailbox
from nexysync_server.store.events import contiguous


def _event(seq: int, recipients: list[str] | None = None, age_s: float = 0.0) -> dict[str, Any]:
    return {
        "project_id": "p",
        "seq": seq,
        "type": "new_message",
        "recipients": recipients or ["*"],
        "data": {},
        "created_at": iso(utcnow() - timedelta(seconds=age_s)),
    }


class FakeEvents:
    """An event log in memory, standing in for EventStore."""

    def __init__(self, stored: list[dict[str, Any]], latest: int) -> None:
        self.stored = stored
        self.latest = latest

    async def latest_seq(self, project_id: str) -> int:
        return self.latest

    async def after(self, project_id: str, after: int, limit: int, upto: int | None = None) -> list[dict[str, Any]]:
        found = [e for e in self.stored if e["seq"] > after and (upto is None or e["seq"] <= upto)]
        return sorted(found, key=lambda e: e["seq"])[:limit]


def _drain(queue: Any) -> list[int]:
    seqs = []
    while not queue.empty():
        seqs.append(queue.get_nowait()["seq"])
    return seqs


async def test_out_of_order_and_repeated_events_come_out_once_in_order() -> None:
    hub = Hub(FakeEvents([_event(1)], latest=1), gap_wait_s=2.0, sweep_interval_s=1.0)  # type: ignore[arg-type]
    listener, settled = await hub.subscribe("p", "a")
    assert settled == 1
    for seq in (4, 2, 4, 3, 2, 1, 5):
        hub.publish(_event(seq))
    assert _drain(listener.queue) == [2, 3, 4, 5]


async def test_a_listener_gets_only_events_addressed_to_its_agent() -> None:
    hub = Hub(FakeEvents([], latest=0), gap_wait_s=2.0, sweep_interval_s=1.0)  # type: ignore[arg-type]
    bob, _ = await hub.subscribe("p", "bob")
    carol, _ = await hub.subscribe("p", "carol")
    hub.publish(_event(1, ["bob"]))
    hub.publish(_event(2, ["*"]))
    hub.publish(_event(3, ["carol"]))
    assert _drain(bob.queue) == [1, 2]
    assert _drain(carol.queue) == [2, 3]


async def test_a_seq_that_never_commits_is_skipped_after_the_gap_wait(monkeypatch: Any) -> None:
    events = FakeEvents([], latest=0)
    hub = Hub(events, gap_wait_s=2.0, sweep_interval_s=1.0)  # type: ignore[arg-type]
    listener, _ = await hub.subscribe("p", "a")
    clock = [100.0]
    monkeypatch.setattr("nexysync_server.realtime.hub.time.monotonic", lambda: clock[0])
    hub.publish(_event(2))
    events.stored = [_event(2)]
    await hub.sweep("p")
    assert _drain(listener.queue) == []  # seq 1 may still be committing
    clock[0] += 2.5
    await hub.sweep("p")
    assert _drain(listener.queue) == [2]  # seq 1 was lost by its writer
    hub.publish(_event(1))
    assert _drain(listener.queue) == []  # and is never delivered after 2


async def test_the_sweep_fills_a_gap_from_the_log() -> None:
    events = FakeEvents([], latest=0)
    hub = Hub(events, gap_wait_s=2.0, sweep_interval_s=1.0)  # type: ignore[arg-type]
    listener, _ = await hub.subscribe("p", "a")
    hub.publish(_event(2))
    events.stored = [_event(1), _event(2), _event(3)]
    await hub.sweep("p")
    assert _drain(listener.queue) == [1, 2, 3]


async def test_a_new_feed_starts_after_the_settled_prefix() -> None:
    # seq 3 is still being written (young gap): the feed settles at 2 and waits for 3.
    events = FakeEvents([_event(1), _event(2), _event(4)], latest=4)
    hub = Hub(events, gap_wait_s=2.0, sweep_interval_s=1.0)  # type: ignore[arg-type]
    listener, settled = await hub.subscribe("p", "a")
    assert settled == 2
    hub.publish(_event(3))
    assert _drain(listener.queue) == [3, 4]


def test_contiguous_stops_at_a_young_gap_and_passes_an_old_one() -> None:
    now = utcnow()
    young = [_event(1), _event(3)]
    assert [e["seq"] for e in contiguous(young, 0, now, 2.0)[0]] == [1]
    assert contiguous(young, 0, now, 2.0)[1] == 1
    old = [_event(1, age_s=10), _event(3, age_s=10)]
    taken, passed = contiguous(old, 0, now, 2.0)
    assert [e["seq"] for e in taken] == [1, 3] and passed == 3


async def test_drain_ends_every_listener_after_its_queued_events() -> None:
    hub = Hub(FakeEvents([], latest=0), gap_wait_s=2.0, sweep_interval_s=1.0)  # type: ignore[arg-type]
    listener, _ = await hub.subscribe("p", "a")
    hub.publish(_event(1))
    hub.drain()
    assert listener.queue.get_nowait()["seq"] == 1
    assert listener.queue.get_nowait() is None
    assert hub.draining


async def test_a_listener_that_falls_behind_is_ended_with_overflow_and_keeps_no_backlog() -> None:
    hub = Hub(FakeEvents([], latest=0), gap_wait_s=2.0, sweep_interval_s=1.0, queue_max=3)  # type: ignore[arg-type]
    slow, _ = await hub.subscribe("p", "a")
    for seq in range(1, 11):
        hub.publish(_event(seq))
    # Nothing was read: the queue holds only the marker (the events are in the log for the resume).
    assert slow.queue.get_nowait() == OVERFLOW
    assert slow.queue.empty()
    fast, _ = await hub.subscribe("p", "b")
    hub.publish(_event(11))
    assert _drain(fast.queue) == [11]


async def test_a_key_revoked_event_ends_only_the_streams_of_that_key_in_seq_order() -> None:
    hub = Hub(FakeEvents([], latest=0), gap_wait_s=2.0, sweep_interval_s=1.0)  # type: ignore[arg-type]
    old, _ = await hub.subscribe("p", "a", "old-hash")
    new, _ = await hub.subscribe("p", "a", "new-hash")
    other, _ = await hub.subscribe("p", "b", "b-hash")
    revoke = _event(2) | {"type": KEY_REVOKED, "recipients": [], "data": {"agent_id": "a", "key_hash": "old-hash"}}
    for event in (_event(3), revoke, _event(1)):
        hub.publish(event)
    # Released in seq order: 1, then the revocation, which drops what the old key's stream had
    # not read yet and ends it, so event 3 (written after it) never reaches it.
    assert old.queue.get_nowait() == REVOKED
    assert old.queue.empty()
    assert _drain(new.queue) == [1, 3]
    assert _drain(other.queue) == [1, 3]

    everyone = _event(4) | {"type": KEY_REVOKED, "recipients": [], "data": {"agent_id": "*", "key_hash": None}}
    hub.publish(everyone)
    assert new.queue.get_nowait() == REVOKED and other.queue.get_nowait() == REVOKED


async def test_a_mailbox_hands_items_over_in_order_and_wakes_its_reader() -> None:
    box = Mailbox()
    reader = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    assert not reader.done()
    box.put_nowait({"seq": 1})
    box.put_nowait(OVERFLOW)
    assert await reader == {"seq": 1}
    assert box.qsize() == 1
    assert await box.get() == OVERFLOW
    assert box.empty()
    with pytest.raises(asyncio.QueueEmpty):
        box.get_nowait()


async def test_a_reader_cancelled_while_waiting_takes_nothing() -> None:
    box = Mailbox()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await box.get()
    box.put_nowait(None)
    assert box.qsize() == 1
    assert await box.get() is None


def test_an_idle_stream_queue_costs_a_fraction_of_an_asyncio_queue() -> None:
    def cost(make: Callable[[], object]) -> float:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        kept = [make() for _ in range(1000)]
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert len(kept) == 1000
        return (after - before) / 1000

    ours = cost(lambda: Listener("p", "a"))
    theirs = cost(asyncio.Queue)
    # An asyncio.Queue alone holds three deques (about 2.2 KiB); a whole listener holds none while idle.
    assert ours < theirs / 4, (ours, theirs)
