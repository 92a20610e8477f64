"""``client.stream()`` and ``messages.wait`` against real ``nexysync-server dev`` processes."""

from __future__ import annotations

import asyncio
import secrets
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexysync import AsyncClient, AsyncStream, AsyncStreamEvent, Client, KeyRing, Stream, StreamEvent
from nexysync.crypto import new_key

pytestmark = pytest.mark.e2e


class Agents:
    """A fresh project on one server with agents alice, bob and carol sharing one key ring."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.ring = KeyRing([new_key()])
        with Client(base_url=base_url) as owner:
            owner.auth.register(
                email=f"stream-{secrets.token_hex(5)}@example.test", name="Stream owner", password="stream-password"
            )
            self.project_id = owner.projects.create(name="sdk stream").id
            self.keys = {
                slug: owner.project_agents.create(self.project_id, slug=slug, name=slug).api_key
                for slug in ("alice", "bob", "carol")
            }

    def client(self, slug: str) -> Client:
        return Client(base_url=self.base_url, api_key=self.keys[slug], key_ring=self.ring, project_id=self.project_id)

    def async_client(self, slug: str) -> AsyncClient:
        return AsyncClient(
            base_url=self.base_url, api_key=self.keys[slug], key_ring=self.ring, project_id=self.project_id
        )


async def next_message(stream: AsyncStream, timeout: float = 10.0) -> AsyncStreamEvent:
    """Return the stream's next ``new_message`` event (presence and other events are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        event = await asyncio.wait_for(stream.__anext__(), max(0.01, deadline - time.monotonic()))
        if event.type == "new_message":
            return event


def next_message_sync(pool: ThreadPoolExecutor, stream: Stream, timeout: float = 10.0) -> StreamEvent:
    """Return the sync stream's next ``new_message`` event, read in ``pool`` with a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        event = pool.submit(next, stream).result(timeout=max(0.01, deadline - time.monotonic()))
        if event.type == "new_message":
            return event


def streaming(client: Client, slug: str, deadline_s: float = 10.0) -> None:
    """Return once ``slug`` shows as online through a stream (poll with a deadline)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if any(p.agent == slug and p.via == "stream" for p in client.presence.list().data):
            return
        time.sleep(0.05)
    pytest.fail(f"{slug} never showed as streaming")


async def test_a_live_event_fetches_its_decrypted_message(dev_server: Any) -> None:
    agents = Agents(dev_server.base_url)
    with agents.client("alice") as alice:
        async with agents.async_client("bob") as bob, bob.stream() as stream:
            await stream.open()
            sent = alice.messages.send("bob", topic="live", payload="secret payload")
            event = await next_message(stream)
            assert event.type == "new_message"
            assert event.data["id"] == sent.id and event.data["from"] == "alice"
            message = await event.message()
            assert stream.last_event_id == event.seq
    assert (message.topic, message.payload) == ("live", "secret payload")


def test_the_sync_stream_yields_live_events_with_their_messages(dev_server: Any) -> None:
    agents = Agents(dev_server.base_url)
    with agents.client("alice") as alice, agents.client("bob") as bob, ThreadPoolExecutor(1) as pool:
        with bob.stream() as stream:
            stream.open()
            sent = [alice.messages.send("bob", topic="t", payload=f"p{i}").id for i in range(3)]
            events = [next_message_sync(pool, stream) for _ in range(3)]
        assert [e.data["id"] for e in events] == sent
        assert [e.message().payload for e in events] == ["p0", "p1", "p2"]
        # A new process resumes from the saved id: nothing again, then only what is new.
        later = alice.messages.send("bob", topic="t", payload="later").id
        with bob.stream(last_event_id=events[-1].seq) as resumed:
            assert next_message_sync(pool, resumed).data["id"] == later


async def test_a_stream_survives_a_server_restart(dev_servers: Callable[..., Any], tmp_path: Path) -> None:
    server = dev_servers(tmp_path / "data", {"NEXYSYNC_HEARTBEAT_S": "0.5"})
    agents = Agents(server.base_url)
    with agents.client("alice") as alice:
        async with agents.async_client("bob") as bob, bob.stream(poll_interval_s=0.2, stream_retry_s=1.0) as stream:
            await stream.open()
            first = alice.messages.send("bob", topic="t", payload="before").id
            seen = [await next_message(stream)]
            assert await asyncio.to_thread(server.stop, signal.SIGTERM) == 0
            # Same data dir, same port: the client's own reconnection must find it again.
            await asyncio.to_thread(server.start)
            missed = [alice.messages.send("bob", topic="t", payload=f"after {i}").id for i in range(3)]
            while len(seen) < 4:
                seen.append(await next_message(stream, 60))
            assert [(await e.message()).payload for e in seen[1:]] == ["after 0", "after 1", "after 2"]
    assert [e.data["id"] for e in seen] == [first, *missed]
    assert [e.seq for e in seen] == sorted({e.seq for e in seen})


def test_wait_returns_the_reply_sent_by_another_agent(dev_server: Any) -> None:
    agents = Agents(dev_server.base_url)
    with agents.client("alice") as alice, agents.client("bob") as bob, ThreadPoolExecutor(1) as pool:
        request = bob.messages.send("alice", topic="review", payload="please", type="request")
        waiting = pool.submit(bob.messages.wait, reply_to=request.id, timeout=30)
        streaming(alice, "bob")
        alice.messages.send("bob", topic="unrelated", payload="noise")
        reply = alice.messages.send("bob", topic="re: review", payload="approved", type="response", reply_to=request.id)
        got = waiting.result(timeout=30)
    assert (got.id, got.from_, got.payload) == (reply.id, "alice", "approved")


def test_wait_finds_a_reply_that_arrived_before_the_call(dev_server: Any) -> None:
    agents = Agents(dev_server.base_url)
    with agents.client("alice") as alice, agents.client("bob") as bob:
        request = bob.messages.send("alice", topic="q", payload="?", type="request")
        reply = alice.messages.send("bob", topic="a", payload="!", type="response", reply_to=request.id)
        got = bob.messages.wait(reply_to=request.id, from_="alice", timeout=10)
    assert got.id == reply.id and got.payload == "!"


def test_wait_times_out_on_time(dev_server: Any) -> None:
    agents = Agents(dev_server.base_url)
    with agents.client("bob") as bob:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            bob.messages.wait(from_="alice", timeout=1.0)
        # The server's heartbeat is 25 s here: the stream's max duration ends the wait on time.
        assert time.monotonic() - started < 5


async def test_async_wait_returns_the_reply_from_the_stream(dev_server: Any) -> None:
    agents = Agents(dev_server.base_url)
    with agents.client("alice") as alice:
        async with agents.async_client("bob") as bob:
            request = await bob.messages.send("alice", topic="q", payload="?", type="request")
            waiting = asyncio.create_task(bob.messages.wait(reply_to=request.id, from_="alice", timeout=30))
            await asyncio.to_thread(streaming, alice, "bob")
            reply = alice.messages.send("bob", topic="a", payload="async!", type="response", reply_to=request.id)
            got = await asyncio.wait_for(waiting, 30)
            with pytest.raises(TimeoutError):
                await bob.messages.wait(reply_to=reply.id, timeout=0.5)
    assert (got.id, got.payload) == (reply.id, "async!")


def test_wait_for_returns_once_the_recipient_has_read_the_message(dev_server: Any) -> None:
    agents = Agents(dev_server.base_url)
    with agents.client("alice") as alice, agents.client("bob") as bob, ThreadPoolExecutor(1) as pool:
        sent = alice.messages.send("bob", topic="receipt", payload="read me")
        assert sent.receipts is not None and sent.receipts.queued == 1
        assert [(r.agent, str(r.state)) for r in alice.messages.receipts(sent.id).data] == [("bob", "queued")]
        waiting = pool.submit(alice.messages.wait_for, sent.id, state="read", timeout=30)
        streaming(bob, "alice")
        assert bob.messages.get(sent.id, mark_read=False).payload == "read me"
        assert not waiting.done() or str(waiting.result().data[0].state) == "read"
        bob.messages.get(sent.id)
        (receipt,) = waiting.result(timeout=30).data
        assert (receipt.agent, str(receipt.state)) == ("bob", "read")
        assert receipt.delivered_at is not None and receipt.read_at is not None
        # Already past "delivered": returns at once, from the first read of the receipts.
        assert str(alice.messages.wait_for(sent.id, state="delivered", timeout=5).data[0].state) == "read"
        with pytest.raises(ValueError, match="state must be one of"):
            alice.messages.wait_for(sent.id, state="seen")


async def test_async_wait_for_an_ack_of_one_recipient_and_its_timeout(dev_server: Any) -> None:
    agents = Agents(dev_server.base_url)
    with agents.client("bob") as bob, agents.client("carol"):
        async with agents.async_client("alice") as alice:
            sent = await alice.messages.send(topic="all", payload="ack me", broadcast=True)
            with pytest.raises(TimeoutError):
                await alice.messages.wait_for(sent.id, state="acked", agent="bob", timeout=0.5)
            waiting = asyncio.create_task(alice.messages.wait_for(sent.id, state="acked", agent="bob", timeout=30))
            await asyncio.to_thread(streaming, bob, "alice")
            await asyncio.to_thread(bob.messages.ack, [sent.id])
            receipts = await asyncio.wait_for(waiting, 30)
    states = {r.agent: str(r.state) for r in receipts.data}
    assert states == {"bob": "acked", "carol": "queued"}


async def test_a_small_message_comes_whole_in_its_event_and_is_marked_read_without_a_fetch(dev_server: Any) -> None:
    agents = Agents(dev_server.base_url)
    requests: list[tuple[str, str]] = []

    async def record(request: httpx.Request) -> None:
        requests.append((request.method, request.url.path))

    recording = httpx.AsyncClient(event_hooks={"request": [record]})
    with agents.client("alice") as alice:
        async with (
            AsyncClient(
                base_url=agents.base_url,
                api_key=agents.keys["bob"],
                key_ring=agents.ring,
                project_id=agents.project_id,
                http_client=recording,
            ) as bob,
            bob.stream() as stream,
        ):
            await stream.open()
            small = alice.messages.send("bob", topic="live", payload="secret payload")
            event = await next_message(stream)
            assert event.data["payload"] not in ("", "secret payload")  # sealed, as stored
            requests.clear()
            unread = await event.message(mark_read=False)
            assert (unread.id, unread.topic, unread.payload, unread.status.value) == (
                small.id,
                "live",
                "secret payload",
                "unread",
            )
            assert requests == []  # in hand from the event alone
            read = await event.message()
            assert read.status.value == "read" and requests == [("POST", "/v1/messages/read")]

            # Too big for an event (sealed content over 8 KiB): routing only, the message is fetched.
            big = alice.messages.send("bob", topic="big", payload="x" * 9000)
            event = await next_message(stream)
            assert event.data["id"] == big.id and "payload" not in event.data
            requests.clear()
            assert (await event.message()).payload == "x" * 9000
            assert requests == [("GET", f"/v1/messages/{big.id}")]
        receipts = {
            message_id: httpx.get(
                f"{agents.base_url}/v1/messages/{message_id}/receipts",
                headers={"Authorization": f"Bearer {agents.keys['alice']}"},
            ).json()["data"][0]["state"]
            for message_id in (small.id, big.id)
        }
    assert receipts == {small.id: "read", big.id: "read"}
    # Only a recipient marks a message read; the sender, or an unknown id, is told not found.
    with agents.client("alice") as alice:
        marked = alice.messages.mark_read([small.id, "01ARZ3NDEKTSV4RRFFQ69G5FAV"])
    assert (marked.read, marked.not_found) == ([], [small.id, "01ARZ3NDEKTSV4RRFFQ69G5FAV"])
