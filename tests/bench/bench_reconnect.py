"""Benchmark: how fast ``client.stream()`` recovers when the API process dies, and that it loses nothing.

Starts an embedded database and one API process, opens an SDK stream as agent ``receiver``, and
then, round after round, kills the API (SIGKILL: no goodbye on the stream, as when a server
crashes or a load balancer drops the connection), starts it again on the same port, and sends
one message the moment it is ready. Prints, per round and as medians: the time from the API
being ready again to the stream delivering the message (the client's reconnect delay plus
the replay by ``Last-Event-ID``), the whole outage as the stream saw it, and how many messages
were lost or delivered twice over all rounds (both must be 0).

Run: ``python tests/bench/bench_reconnect.py [--rounds N]`` (or ``tox -e bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from _api import seed_keys, start_api

import nexysync
from nexysync.crypto import KeyRing, new_key
from nexysync_server.store.embedded import EmbeddedMongo, free_port


async def _collect(stream: nexysync.AsyncStream, arrived: dict[str, float], duplicates: list[str]) -> None:
    async for event in stream:
        if event.type == "new_message":
            message_id = event.data["id"]
            if message_id in arrived:
                duplicates.append(message_id)
            arrived.setdefault(message_id, time.perf_counter())


async def _until(condition: object, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("the stream did not deliver in time")
        await asyncio.sleep(0.005)


async def run(mongo_uri: str, rounds: int, retry_ms: int) -> None:
    """Kill and restart the API ``rounds`` times under an open stream; print the figures."""
    settings = {"NEXYSYNC_HEARTBEAT_S": "5", "NEXYSYNC_STREAM_RETRY_MS": str(retry_ms)}
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    api = await asyncio.to_thread(start_api, mongo_uri, port, **settings)
    project_id, keys = await asyncio.to_thread(seed_keys, base_url)
    ring = KeyRing([new_key()])
    common = {"base_url": base_url, "key_ring": ring, "project_id": project_id}
    arrived: dict[str, float] = {}
    duplicates: list[str] = []
    sent: list[str] = []
    after_ready: list[float] = []
    outage: list[float] = []
    async with (
        nexysync.AsyncClient(api_key=keys["sender"], **common) as sender,
        nexysync.AsyncClient(api_key=keys["receiver"], **common) as receiver,
        receiver.stream() as stream,
    ):
        await stream.open()
        collector = asyncio.create_task(_collect(stream, arrived, duplicates))
        first = await sender.messages.send("receiver", topic="bench", payload="before")
        sent.append(first.id)
        await _until(lambda: first.id in arrived, 10)
        for _ in range(rounds):
            killed = time.perf_counter()
            api.kill()
            await asyncio.to_thread(api.wait)
            api = await asyncio.to_thread(start_api, mongo_uri, port, **settings)
            ready = time.perf_counter()
            message = await sender.messages.send("receiver", topic="bench", payload="after restart")
            sent.append(message.id)
            await _until(lambda message_id=message.id: message_id in arrived, 60)
            after_ready.append(arrived[message.id] - ready)
            outage.append(arrived[message.id] - killed)
            print(
                f"  round {len(outage)}: delivered {after_ready[-1] * 1000:7.1f} ms after the API was ready, "
                f"{outage[-1]:5.2f} s after it died"
            )
        collector.cancel()
    api.terminate()
    await asyncio.to_thread(api.wait)
    lost = [message_id for message_id in sent if message_id not in arrived]
    print(f"rounds: {rounds}, database: nx-27017 (embedded), API workers: 1, kill: SIGKILL, retry hint: {retry_ms} ms")
    print(f"median delivery after the API is ready again: {statistics.median(after_ready) * 1000:7.1f} ms")
    print(f"median outage seen by the stream (kill -> delivered): {statistics.median(outage):5.2f} s")
    print(f"messages sent: {len(sent)}, lost: {len(lost)}, delivered twice: {len(duplicates)}")


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    # The stream waits about this long (jittered, doubling while it fails) before reconnecting.
    parser.add_argument("--retry-ms", type=int, default=2000, help="the server's SSE retry hint")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedMongo(Path(tmp) / "db") as mongo:
        asyncio.run(run(mongo.uri, args.rounds, args.retry_ms))


if __name__ == "__main__":
    main()
