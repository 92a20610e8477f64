"""Benchmark: messages sent through the API against raw pymongo inserts into the same database.

Starts an embedded database and one API process (uvicorn, one worker), then, side by side in
one run and at each concurrency level, (a) sends N messages through ``POST /v1/messages`` and
(b) inserts N comparable documents with raw pymongo. Prints both rates and their ratio, and the CPU
time each process spent per message: the database, the API, and the load generator (this process).
On a small machine they share the cores, so that split says where the time goes. Last, (c) raw
pymongo making the writes a send makes (the seq counter, the message and its event-log entry, in
one bulkWrite), and the API's rate against that: what the API costs beyond the design's writes.

Run: ``python tests/bench/bench_send.py [--messages N] [--concurrency 8,32,64]`` (or ``tox -e bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import time

from _api import cpu_seconds, running_api, seed
from pymongo import AsyncMongoClient, InsertOne, UpdateOne

from nexysync.crypto import KeyRing, new_key
from nexysync_server.ids import new_id


def _bodies(project_id: str, count: int) -> list[dict[str, str]]:
    ring = KeyRing([new_key()])
    bodies = []
    for _ in range(count):
        message_id = new_id()
        seal = lambda field, text, mid=message_id: ring.encrypt(  # noqa: E731
            text.encode(), project_id=project_id, kind="message", record_id=mid, field=field
        )
        bodies.append(
            {
                "id": message_id,
                "to": "receiver",
                "type": "request",
                "topic": seal("topic", "benchmark topic"),
                "payload": seal("payload", "x" * 200),
            }
        )
    return bodies


async def _post_all(port: int, api_key: str, bodies: list[dict[str, str]]) -> None:
    """POST each body over one keep-alive HTTP/1.1 connection with a bare asyncio client.

    A full HTTP client library costs more CPU per request than the API itself; on a 2-core
    machine it would be measuring the client. This one only frames requests and reads replies.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {api_key}\r\n"
    try:
        for body in bodies:
            payload = json.dumps(body).encode()
            writer.write(
                f"{head}Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n".encode() + payload
            )
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            reply = await reader.readexactly(length)
            if not status_line.startswith(b"HTTP/1.1 201"):
                raise RuntimeError(f"send failed: {status_line!r} {reply[:300]!r}")
    finally:
        writer.close()


async def _run_api(port: int, api_key: str, bodies: list[dict[str, str]], concurrency: int) -> float:
    shares = [bodies[i::concurrency] for i in range(concurrency)]
    started = time.perf_counter()
    await asyncio.gather(*(_post_all(port, api_key, share) for share in shares))
    return time.perf_counter() - started


async def _run_raw(uri: str, project_id: str, bodies: list[dict[str, str]], concurrency: int) -> float:
    client: AsyncMongoClient = AsyncMongoClient(uri)
    col = client["bench_raw"]["messages"]
    docs = [{"_id": f"{project_id}:{b['id']}", "project_id": project_id, **b} for b in bodies]
    queue = list(reversed(docs))

    async def worker() -> None:
        while queue:
            await col.insert_one(queue.pop())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await client.close()
    return elapsed


async def _run_raw_send_writes(uri: str, project_id: str, bodies: list[dict[str, str]], concurrency: int) -> float:
    """Write what a send writes, as the server does: the seq counter, the message and its event in one bulkWrite.

    The server takes the seq in that command when it can tell the counter's value (it wrote the
    project's last event); here each send's seq is counted locally, which the database cannot tell apart.
    """
    client: AsyncMongoClient = AsyncMongoClient(uri)
    # Own collection names: nx-27017 keeps every database in one file, so the API's ``events``
    # would be these ``events``.
    db = client["bench_raw"]
    counters, messages, events = db["send_counters"], db["send_messages"], db["send_events"]
    queue = list(reversed(bodies))
    seqs = itertools.count(1)
    run = new_id()  # each concurrency level writes its own events

    async def worker() -> None:
        while queue:
            body = queue.pop()
            seq = next(seqs)
            message = {"_id": f"{project_id}:{body['id']}", "project_id": project_id, "seq": seq, **body}
            event = {"_id": f"{run}:{seq:015d}", "project_id": project_id, "seq": seq, "type": "new_message"}
            event["data"] = {"id": body["id"], "to": body["to"], "type": body["type"]}
            await client.bulk_write(
                [
                    UpdateOne({"_id": project_id}, {"$inc": {"seq": 1}}, upsert=True, namespace=counters.full_name),
                    InsertOne(message, namespace=messages.full_name),
                    InsertOne(event, namespace=events.full_name),
                ]
            )

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await client.close()
    return elapsed


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    # Several levels: the API batches the database commands of concurrent sends, raw insert_one
    # cannot, so the ratio depends on how many senders there are; one number would hide that.
    parser.add_argument("--concurrency", default="8,32,64", help="comma-separated concurrency levels")
    args = parser.parse_args()
    levels = [int(level) for level in args.concurrency.split(",")]
    print(f"messages: {args.messages} per run, database: nx-27017 (embedded), API workers: 1")
    print(f"{'concurrency':>11}  {'API msg/s':>10}  {'raw doc/s':>10}  {'ratio API / raw':>15}", end="")
    print("   CPU ms per message, API run (db / api / client) and raw run (db / client)")
    with running_api() as api:
        port = api.port
        project_id, api_key = seed(api.base_url)
        warmup = _bodies(project_id, 50)
        asyncio.run(_run_api(port, api_key, warmup, levels[0]))

        def cpu() -> tuple[float, float, float]:
            return cpu_seconds(api.mongo_pid), cpu_seconds(api.api_pid), cpu_seconds(os.getpid())

        writes: dict[int, tuple[float, float]] = {}
        for concurrency in levels:
            before = cpu()
            api_s = asyncio.run(_run_api(port, api_key, _bodies(project_id, args.messages), concurrency))
            middle = cpu()
            raw_s = asyncio.run(_run_raw(api.mongo_uri, project_id, _bodies(project_id, args.messages), concurrency))
            after = cpu()
            writes_s = asyncio.run(
                _run_raw_send_writes(api.mongo_uri, project_id, _bodies(project_id, args.messages), concurrency)
            )
            api_rate, raw_rate = args.messages / api_s, args.messages / raw_s
            api_cpu = " / ".join(f"{(b - a) / args.messages * 1e3:.2f}" for a, b in zip(before, middle, strict=True))
            raw_db, _, raw_client = ((b - a) / args.messages * 1e3 for a, b in zip(middle, after, strict=True))
            print(f"{concurrency:>11}  {api_rate:>10.1f}  {raw_rate:>10.1f}  {api_rate / raw_rate:>15.2f}", end="")
            print(f"   {api_cpu}   {raw_db:.2f} / {raw_client:.2f}")
            writes[concurrency] = (api_rate, args.messages / writes_s)
    # What the design itself costs: a send takes a seq, then writes a message and its event-log entry.
    print("raw pymongo making a send's writes, one bulkWrite per send (seq counter, message, event):")
    for concurrency, (api_rate, writes_rate) in writes.items():
        print(f"{concurrency:>11}  {writes_rate:>10.1f} msg/s   ratio API / these writes {api_rate / writes_rate:5.2f}")


if __name__ == "__main__":
    main()
