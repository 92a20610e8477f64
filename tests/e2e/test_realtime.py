"""Realtime delivery with real processes: live push, resume, ordering, fan-out, heartbeats, presence."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from realtime_support import EventStream, Team, no_more_receipts, receipt_events

pytestmark = pytest.mark.e2e


async def test_a_message_is_pushed_to_its_recipient_live(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice", "bob"])
    async with EventStream(dev_server.base_url, team.keys["bob"]) as bob, httpx.AsyncClient() as http:
        first = await bob.frame()
        assert first.kind == "comment"  # the stream opens with its retry hint
        body = team.body("bob")
        assert (
            await http.post(f"{dev_server.base_url}/v1/messages", json=body, headers=team.auth("alice"))
        ).status_code == 201
        sent = body["id"]
        (event,) = await bob.messages(1)
        assert event.data is not None
        assert event.data["data"]["id"] == sent
        assert event.data["data"]["from"] == "alice"
        assert event.id == event.data["seq"]
        # A small message comes whole, as GET /v1/messages/{id} shows it before it is read,
        # its content sealed exactly as sent.
        shown = (
            await http.get(f"{dev_server.base_url}/v1/messages/{sent}?mark_read=false", headers=team.auth("bob"))
        ).json()
        assert event.data["data"] == {key: value for key, value in shown.items() if key != "receipts"}
        assert event.data["data"]["payload"] == body["payload"] and event.data["data"]["status"] == "unread"


async def test_resume_after_a_drop_has_no_gap_and_no_duplicate(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice", "bob"])
    async with httpx.AsyncClient() as http:
        async with EventStream(dev_server.base_url, team.keys["bob"]) as bob:
            before = [await team.send(http, "alice", "bob") for _ in range(5)]
            got = await bob.messages(5)
            last_id = got[-1].id
        missed = [await team.send(http, "alice", "bob") for _ in range(7)]
        async with EventStream(dev_server.base_url, team.keys["bob"], last_event_id=last_id) as bob:
            replayed = await bob.messages(7)
            live = await team.send(http, "alice", "bob")
            (after,) = await bob.messages(1)
    assert [f.data["data"]["id"] for f in got] == before  # type: ignore[index]
    assert [f.data["data"]["id"] for f in replayed] == missed  # type: ignore[index]
    assert after.data["data"]["id"] == live  # type: ignore[index]
    seqs = [f.id for f in [*replayed, after]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


async def test_events_are_only_for_their_recipients_and_project(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice", "bob", "carol"])
    other = Team(dev_server.base_url, ["mallory"])
    async with (
        httpx.AsyncClient() as http,
        EventStream(dev_server.base_url, team.keys["carol"]) as carol,
        EventStream(dev_server.base_url, other.keys["mallory"]) as mallory,
        EventStream(dev_server.base_url, team.keys["bob"]) as bob,
    ):
        await team.send(http, "alice", "bob")  # direct: bob only
        broadcast = await team.send(http, "alice", None)  # everyone but alice
        bob_ids = [f.data["data"]["id"] for f in await bob.messages(2)]  # type: ignore[index]
        assert bob_ids[1] == broadcast
        (carol_event,) = await carol.messages(1)
        assert carol_event.data["data"]["id"] == broadcast  # type: ignore[index]
        with pytest.raises(TimeoutError):
            await mallory.messages(1, timeout=1.5)
        with pytest.raises(TimeoutError):
            await carol.messages(1, timeout=1.0)


async def test_twenty_concurrent_senders_arrive_once_each_in_seq_order(dev_server: Any) -> None:
    senders = [f"s{i:02d}" for i in range(20)]
    team = Team(dev_server.base_url, ["sink", *senders])
    per_sender = 10
    async with EventStream(dev_server.base_url, team.keys["sink"]) as sink, httpx.AsyncClient() as http:

        async def burst(slug: str) -> list[str]:
            return [await team.send(http, slug, "sink") for _ in range(per_sender)]

        sent = await asyncio.gather(*(burst(slug) for slug in senders))
        got = await sink.messages(len(senders) * per_sender, timeout=60)
    ids = [f.data["data"]["id"] for f in got]  # type: ignore[index]
    assert sorted(ids) == sorted(i for batch in sent for i in batch)
    seqs = [f.id for f in got]
    assert seqs == sorted(seqs), "a later seq overtook an earlier one"
    for slug, batch in zip(senders, sent, strict=True):
        from_slug = [f.data["data"]["id"] for f in got if f.data["data"]["from"] == slug]  # type: ignore[index]
        assert from_slug == batch, f"{slug}'s messages arrived out of their send order"


async def test_two_thousand_sends_with_random_drops_arrive_all_in_order_exactly_once(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice", "bob"])
    total = 2000
    rng = random.Random(4)
    received: list[tuple[int, str]] = []
    done_sending = asyncio.Event()
    sent: list[str] = []

    async def send_all() -> None:
        async with httpx.AsyncClient() as http:
            for _ in range(total):
                sent.append(await team.send(http, "alice", "bob"))
        done_sending.set()

    async def receive_with_drops() -> None:
        last: int | None = None
        drops = 0
        while len(received) < total:
            async with EventStream(dev_server.base_url, team.keys["bob"], last_event_id=last) as bob:
                if last is None:
                    await bob.frame()  # connected: only now may sending start
                    starter.set()
                take = rng.randint(20, 300)
                for _ in range(take):
                    if len(received) >= total:
                        break
                    (frame,) = await bob.messages(1, timeout=60)
                    received.append((frame.id, frame.data["data"]["id"]))  # type: ignore[arg-type,index]
                    last = frame.id
            drops += 1
        assert drops > 3

    starter = asyncio.Event()
    receiver = asyncio.create_task(receive_with_drops())
    await asyncio.wait_for(starter.wait(), 10)
    await asyncio.gather(send_all(), receiver)
    assert [message_id for _, message_id in received] == sent
    seqs = [seq for seq, _ in received]
    assert seqs == sorted(seqs) and len(set(seqs)) == total


async def test_polling_sees_the_same_events_as_the_stream(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice", "bob"])
    async with EventStream(dev_server.base_url, team.keys["bob"]) as bob, httpx.AsyncClient() as http:
        ids = [await team.send(http, "alice", "bob") for _ in range(4)]
        streamed = await bob.messages(4)
        page = (
            await http.get(
                f"{dev_server.base_url}/v1/events",
                params={"after": 0},
                headers={"Authorization": f"Bearer {team.keys['bob']}"},
            )
        ).json()
    polled = [e for e in page["data"] if e["type"] == "new_message"]
    assert [e["data"]["id"] for e in polled] == ids
    assert [e["seq"] for e in polled] == [f.id for f in streamed]
    assert page["last_seq"] >= streamed[-1].id and page["reset"] is False


async def test_an_unknown_future_id_gets_a_reset_event(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice", "bob"])
    async with EventStream(dev_server.base_url, team.keys["bob"], last_event_id=999_999) as bob:
        event = await bob.event()
    assert event.event == "reset"


async def test_heartbeats_come_every_second_when_configured(dev_servers: Callable[..., Any], tmp_path: Path) -> None:
    server = dev_servers(tmp_path / "data", {"NEXYSYNC_HEARTBEAT_S": "1"})
    team = Team(server.base_url, ["bob"])
    async with EventStream(server.base_url, team.keys["bob"]) as bob:
        beats = []
        while len(beats) < 3:
            frame = await bob.frame(timeout=3)
            if frame.kind == "comment" and frame.comment == "heartbeat":
                beats.append(frame.at)
    gaps = [b - a for a, b in itertools.pairwise(beats)]
    assert all(0.5 < gap < 2.0 for gap in gaps), gaps


async def test_presence_follows_streams_once_per_transition(dev_servers: Callable[..., Any], tmp_path: Path) -> None:
    # A closed stream is noticed at its next heartbeat, so offline comes after heartbeat + grace.
    server = dev_servers(tmp_path / "data", {"NEXYSYNC_PRESENCE_GRACE_S": "0.5", "NEXYSYNC_HEARTBEAT_S": "0.5"})
    team = Team(server.base_url, ["alice", "bob"])
    headers = {"Authorization": f"Bearer {team.keys['alice']}"}

    async def bob_presence(stream: EventStream, timeout: float) -> dict[str, Any]:
        while True:
            frame = await stream.event(timeout)
            if frame.event == "presence_change":
                for change in frame.data["data"]["changes"]:  # type: ignore[index]
                    if change["agent"] == "bob":
                        return change  # type: ignore[no-any-return]

    async with EventStream(server.base_url, team.keys["alice"]) as alice, httpx.AsyncClient() as http:
        async with EventStream(server.base_url, team.keys["bob"]), EventStream(server.base_url, team.keys["bob"]):
            online = await bob_presence(alice, 10)
            listed = (await http.get(f"{server.base_url}/v1/presence", headers=headers)).json()["data"]
            bob = next(p for p in listed if p["agent"] == "bob")
            assert bob["via"] == "stream"
        offline = await bob_presence(alice, 10)
        with pytest.raises(TimeoutError):
            await bob_presence(alice, 1.5)  # two streams closing made one offline, not two
        listed = (await http.get(f"{server.base_url}/v1/presence", headers=headers)).json()["data"]
    assert online == {"agent": "bob", "online": True}
    assert offline == {"agent": "bob", "online": False}
    # Bob still counts as seen through his requests (the stream requests themselves).
    assert [p["via"] for p in listed if p["agent"] == "bob"] in ([], ["request"])


async def test_resume_after_a_server_restart(dev_servers: Callable[..., Any], tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = dev_servers(data_dir)
    team = Team(server.base_url, ["alice", "bob"])
    async with httpx.AsyncClient() as http:
        async with EventStream(server.base_url, team.keys["bob"]) as bob:
            await team.send(http, "alice", "bob")
            (seen,) = await bob.messages(1)
        assert server.stop(signal.SIGTERM) == 0
        server = dev_servers(data_dir)
        team.base_url = server.base_url
        missed = [await team.send(http, "alice", "bob") for _ in range(3)]
        async with EventStream(server.base_url, team.keys["bob"], last_event_id=seen.id) as bob:
            got = await bob.messages(3)
    assert [f.data["data"]["id"] for f in got] == missed  # type: ignore[index]


async def test_two_servers_on_one_database_deliver_to_each_other(server_processes: Callable[[list[str]], str]) -> None:
    first = server_processes(["serve", "--workers", "1"])
    second = server_processes(["serve", "--workers", "1"])
    team = Team(first, ["alice", "bob"])
    async with EventStream(first, team.keys["bob"]) as bob, httpx.AsyncClient() as http:
        team.base_url = second  # alice talks to the other server
        sent = [await team.send(http, "alice", "bob") for _ in range(10)]
        got = await bob.messages(10, timeout=30)
    assert [f.data["data"]["id"] for f in got] == sent  # type: ignore[index]


async def test_two_workers_deliver_every_event_to_every_stream_once(
    server_processes: Callable[[list[str]], str],
) -> None:
    base_url = server_processes(["serve", "--workers", "2"])
    team = Team(base_url, ["alice", "bob", "carol"])
    async with httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0)) as http:
        streams = [EventStream(base_url, team.keys[slug]) for slug in ("bob", "bob", "carol", "carol")]
        for stream in streams:
            await stream.__aenter__()
        try:
            # A new connection per send spreads the sends over both workers.
            sent = [await team.send(http, "alice", None) for _ in range(20)]
            for stream in streams:
                got = await stream.messages(20, timeout=30)
                assert [f.data["data"]["id"] for f in got] == sent  # type: ignore[index]
                with pytest.raises(TimeoutError):
                    await stream.messages(1, timeout=0.5)
        finally:
            for stream in streams:
                await stream.__aexit__()


async def test_receipts_across_two_workers_tell_each_step_once(server_processes: Callable[[list[str]], str]) -> None:
    base_url = server_processes(["serve", "--workers", "2"])
    team = Team(base_url, ["alice", "bob", "carol"])
    # A new connection per request spreads bob's fetches, reads and acks over both workers.
    async with (
        httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0)) as http,
        EventStream(base_url, team.keys["alice"]) as alice,
    ):
        sent = [await team.send(http, "alice", None) for _ in range(4)]
        bob = {"Authorization": f"Bearer {team.keys['bob']}"}
        for message_id in sent:
            await http.get(f"{base_url}/v1/messages/{message_id}?mark_read=false", headers=bob)
            await http.get(f"{base_url}/v1/messages/{message_id}", headers=bob)
            await http.get(f"{base_url}/v1/messages", headers=bob)
        await http.post(f"{base_url}/v1/messages/ack", json={"ids": sent}, headers=bob)
        steps = await receipt_events(alice, 12, timeout=30)
        await no_more_receipts(alice, team, http)
    assert sorted((s["message_id"], s["state"]) for s in steps) == sorted(
        (message_id, state) for message_id in sent for state in ("delivered", "read", "acked")
    )
    assert {s["agent"] for s in steps} == {"bob"}


async def test_a_stopping_server_ends_streams_so_clients_resume_elsewhere(
    server_processes: Callable[[list[str]], str],
) -> None:
    old = server_processes(["serve", "--workers", "1"])
    new = server_processes(["serve", "--workers", "1"])
    team = Team(old, ["alice", "bob"])
    async with httpx.AsyncClient() as http:
        async with EventStream(old, team.keys["bob"]) as bob:
            first = await team.send(http, "alice", "bob")
            (seen,) = await bob.messages(1)
            started = time.monotonic()
            os.kill(server_processes.pids[old], signal.SIGTERM)  # type: ignore[attr-defined]
            with pytest.raises(EOFError):
                await bob.messages(1, timeout=20)
            ended_after = time.monotonic() - started
        team.base_url = new
        later = await team.send(http, "alice", "bob")
        async with EventStream(new, team.keys["bob"], last_event_id=seen.id) as bob:
            (resumed,) = await bob.messages(1)
    assert seen.data["data"]["id"] == first  # type: ignore[index]
    assert resumed.data["data"]["id"] == later  # type: ignore[index]
    assert ended_after < 10, f"the stream stayed open {ended_after:.1f} s after SIGTERM"


async def test_the_sender_hears_of_an_ack_once(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice", "bob"])
    bob_headers = {"Authorization": f"Bearer {team.keys['bob']}"}
    async with EventStream(dev_server.base_url, team.keys["alice"]) as alice, httpx.AsyncClient() as http:
        sent = [await team.send(http, "alice", "bob") for _ in range(2)]
        for _ in range(2):  # the second ack of the same ids changes nothing and tells nothing
            response = await http.post(
                f"{dev_server.base_url}/v1/messages/ack", json={"ids": sent}, headers=bob_headers
            )
            assert response.json()["acked"] == sent

        async def next_ack(timeout: float) -> dict[str, Any]:
            while True:
                frame = await alice.event(timeout)
                if frame.event == "message_acked":
                    return frame.data["data"]  # type: ignore[index,return-value]

        assert await next_ack(10) == {"ids": sent, "by": "bob"}
        with pytest.raises(TimeoutError):
            await next_ack(1.0)


def _worker_pids(master_pid: int) -> list[int]:
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return [int(pid) for pid in children]


async def test_a_worker_killed_outright_does_not_leave_its_agents_online(
    server_processes: Callable[..., str],
) -> None:
    short_leases = {"NEXYSYNC_PRESENCE_LEASE_S": "2"}
    doomed = server_processes(["serve", "--workers", "1"], short_leases)
    survivor = server_processes(["serve", "--workers", "1"], short_leases)
    team = Team(survivor, ["alice", "bob"])

    async def bob_presence(stream: EventStream, timeout: float) -> bool:
        while True:
            frame = await stream.event(timeout)
            if frame.event == "presence_change":
                for change in frame.data["data"]["changes"]:  # type: ignore[index]
                    if change["agent"] == "bob":
                        return bool(change["online"])

    async with EventStream(survivor, team.keys["alice"]) as alice:
        bob = EventStream(doomed, team.keys["bob"])
        await bob.__aenter__()
        assert await bob_presence(alice, 10) is True
        (worker,) = _worker_pids(server_processes.pids[doomed])  # type: ignore[attr-defined]
        os.kill(worker, signal.SIGKILL)  # no cleanup, no lease release
        started = time.monotonic()
        assert await bob_presence(alice, 20) is False
        assert time.monotonic() - started < 15
        with contextlib.suppress(Exception):
            await bob.__aexit__()


async def test_a_message_handed_over_whole_is_delivered_without_a_fetch(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice", "bob", "carol"])
    base = dev_server.base_url
    async with EventStream(base, team.keys["alice"]) as alice, httpx.AsyncClient() as http:
        async with EventStream(base, team.keys["bob"]) as bob:
            small = await team.send(http, "alice", "bob")
            (pushed,) = await bob.messages(1)
            assert pushed.data["data"]["payload"]  # type: ignore[index]
            (step,) = await receipt_events(alice, 1)
            assert (step["message_id"], step["agent"], step["state"]) == (small, "bob", "delivered")
            # A broadcast's copies handed over by two streams: recorded together, each told once.
            async with EventStream(base, team.keys["carol"]) as carol:
                everyone = await team.send(http, "alice", None)
                await bob.messages(1)
                await carol.messages(1)
                steps = await receipt_events(alice, 2)
                await no_more_receipts(alice, team, http)
        assert sorted((s["message_id"], s["agent"], s["state"]) for s in steps) == [
            (everyone, "bob", "delivered"),
            (everyone, "carol", "delivered"),
        ]

        # Polled whole, the same.
        polled = await team.send(http, "alice", "carol")
        events = (await http.get(f"{base}/v1/events", headers=team.auth("carol"))).json()["data"]
        # (The broadcast carol's stream delivered comes again; its copy is delivered already.)
        assert [event["data"]["id"] for event in events if event["type"] == "new_message"] == [everyone, polled]
        (step,) = await receipt_events(alice, 1)
        assert (step["message_id"], step["agent"], step["state"]) == (polled, "carol", "delivered")

        # Too big to carry: the event has the routing only, and nothing is delivered until fetched.
        big = team.body("bob")
        big["payload"] = team.ring.encrypt(
            b"x" * 9000, project_id=team.project_id, kind="message", record_id=big["id"], field="payload"
        )
        async with EventStream(base, team.keys["bob"]) as bob:
            assert (await http.post(f"{base}/v1/messages", json=big, headers=team.auth("alice"))).status_code == 201
            (pushed,) = await bob.messages(1)
            assert "payload" not in pushed.data["data"]  # type: ignore[index]
            await no_more_receipts(alice, team, http)
            await http.get(f"{base}/v1/messages/{big['id']}?mark_read=false", headers=team.auth("bob"))
            (step,) = await receipt_events(alice, 1)
        assert (step["message_id"], step["state"]) == (big["id"], "delivered")
        receipts = (await http.get(f"{base}/v1/messages/{small}/receipts", headers=team.auth("alice"))).json()
        assert [(r["agent"], r["state"]) for r in receipts["data"]] == [("bob", "delivered")]
