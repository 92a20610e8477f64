"""Benchmark: what a server pays to follow the whole event log while it holds streams of one project.

Every server process follows every project's events and drops those of projects it holds no
stream for (issue 29, item 5). This measures that cost. One ``nexysync-server serve --workers 1``
(server A) holds one stream of project P. A writer process appends events to the log as another
server would (the server's own ``EventStore.append``), at a set rate in 1,000 other projects, and
ten times a second one in P. For each rate, over ``--window-s``:

- A's worker CPU (``/proc``), the database's CPU, and the worker's CPU per foreign event;
- the events A's watcher read and dropped (``nexysync_watcher_polls_total{result="seen"}``);
- the delay of P's events from stored to A's stream (p50, p99), and probes lost: only A's
  watcher brings them.

Then the same with 4 and 8 such servers following the log at once (``--watchers``), each with a
stream of P: the cost to the workers in total and to the database grows with processes x events.

Run: ``python tests/bench/bench_watcher.py [--rates 0,100,300,1000,2000] [--watchers 1,4,8]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import multiprocessing.synchronize
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from bench_realtime import SseStream, _cpu_model, _percentile, _project
from scale import Serve, _cpu_s

from nexysync_server.ids import new_id
from nexysync_server.settings import Settings
from nexysync_server.store import Store
from nexysync_server.store.embedded import EmbeddedMongo
from nexysync_server.store.events import EVERYONE

METRICS_TOKEN = "bench-watcher-metrics-token"
FOREIGN_PROJECTS = 1000
PROBES_PER_S = 10
TICK_S = 0.02
_NOISE: tuple[str, list[str], dict[str, Any]] = ("bench.noise", [EVERYONE], {})


def _seen(base_url: str) -> float:
    """The events A's watcher read for projects it holds no stream for, so far."""
    text = httpx.get(f"{base_url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    match = re.search(r'^nexysync_watcher_polls_total\{result="seen"\} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def _writer(mongo_uri: str, project_id: str, rate: float, seconds: float, done: Any) -> None:
    """Append ``rate`` foreign events per second and :data:`PROBES_PER_S` probes in P; report both."""
    asyncio.run(_write(mongo_uri, project_id, rate, seconds, done))


async def _write(mongo_uri: str, project_id: str, rate: float, seconds: float, done: Any) -> None:
    store = Store(Settings.from_env({"NEXYSYNC_MONGODB_URI": mongo_uri}))
    foreign = [new_id() for _ in range(FOREIGN_PROJECTS)]
    events = store.events
    written = probes = 0
    owed = 0.0
    next_probe = 0.0
    started = time.monotonic()
    tick = 0
    try:
        while (now := time.monotonic()) - started < seconds:
            owed += rate * TICK_S
            batch = int(owed)
            owed -= batch
            appends = [
                events.append(foreign[(written + i) % FOREIGN_PROJECTS], "bench.noise", [EVERYONE], {})
                for i in range(batch)
            ]
            if now >= next_probe:
                appends.append(events.append(project_id, "bench.probe", [EVERYONE], {"t": now}))
                next_probe = now + 1 / PROBES_PER_S
                probes += 1
            await asyncio.gather(*appends)
            written += batch
            tick += 1
            await asyncio.sleep(max(0.0, started + tick * TICK_S - time.monotonic()))
    finally:
        done.send((written / (time.monotonic() - started), probes))
        await store.close()


async def _measure(
    mongo: EmbeddedMongo, servers: list[Serve], project_id: str, api_key: str, rate: float, window_s: float
) -> dict[str, Any]:
    """Hold one stream of P on each of ``servers`` (so each one's watcher runs) while the writer writes."""
    delays: list[float] = []

    def on_frame(kind: str, data: bytes, when: float) -> None:
        if kind == "bench.probe":
            delays.append((when - json.loads(data)["data"]["t"]) * 1000)

    streams = [await SseStream.open(server.port, api_key) for server in servers]
    for stream in streams:
        stream.follow(on_frame)
    workers = [worker for server in servers for worker in server.workers()]
    spawn = multiprocessing.get_context("spawn")  # not a fork of this running event loop
    receive, send = spawn.Pipe(duplex=False)
    writer = spawn.Process(target=_writer, args=(mongo.uri, project_id, rate, window_s, send))
    seen_before = sum([await asyncio.to_thread(_seen, server.base_url) for server in servers])
    cpu_before = sum(map(_cpu_s, workers)), _cpu_s(mongo.pid or 0)
    writer.start()
    await asyncio.to_thread(writer.join)
    cpu_after = sum(map(_cpu_s, workers)), _cpu_s(mongo.pid or 0)
    await asyncio.sleep(0.5)  # the last probes
    seen = sum([await asyncio.to_thread(_seen, server.base_url) for server in servers]) - seen_before
    achieved, probes = receive.recv()
    for stream in streams:
        await stream.close()
    return {
        "watchers": len(servers),
        "rate": rate,
        "achieved": achieved,
        "worker_cpu_s": cpu_after[0] - cpu_before[0],
        "db_cpu_s": cpu_after[1] - cpu_before[1],
        "seen_per_s": seen / window_s,
        # Every probe written must reach every stream: the watcher drops nothing of a project it holds.
        "probes_lost": probes * len(servers) - len(delays),
        "p50_ms": _percentile(delays, 0.5) if delays else float("nan"),
        "p99_ms": _percentile(delays, 0.99) if delays else float("nan"),
    }


def _print(rows: list[dict[str, Any]], window_s: float) -> None:
    print(
        f"{'watchers':>8} {'foreign ev/s':>12} {'achieved':>8} {'workers CPU':>11} {'per event':>9} "
        f"{'seen/s':>7} {'DB CPU':>7} {'P delay p50':>11} {'p99':>7} {'lost':>4}"
    )
    idle = {row["watchers"]: row for row in rows if row["rate"] == 0}
    for row in rows:
        base = idle.get(row["watchers"])
        events = row["achieved"] * window_s * row["watchers"]
        per_event = f"{1e6 * (row['worker_cpu_s'] - base['worker_cpu_s']) / events:.0f} us" if base and events else "-"
        print(
            f"{row['watchers']:>8} {row['rate']:>12.0f} {row['achieved']:>8.0f} "
            f"{100 * row['worker_cpu_s'] / window_s:>10.1f}% {per_event:>9} {row['seen_per_s']:>7.0f} "
            f"{100 * row['db_cpu_s'] / window_s:>6.1f}% {row['p50_ms']:>9.1f}ms {row['p99_ms']:>5.1f}ms "
            f"{row['probes_lost']:>4}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="0,100,300,1000,2000", help="foreign events/s with one watcher")
    parser.add_argument("--watchers", default="1,4,8", help="processes following the log, at --watchers-rate")
    parser.add_argument("--watchers-rate", type=float, default=1000.0)
    parser.add_argument("--window-s", type=float, default=15.0)
    args = parser.parse_args()
    plan = [(1, float(rate)) for rate in args.rates.split(",")]
    for count in (int(count) for count in args.watchers.split(",")):
        plan += [(count, 0.0), (count, args.watchers_rate)]
    print(f"bench_watcher: {_cpu_model()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp, EmbeddedMongo(Path(tmp) / "db") as mongo:
        env = {"NEXYSYNC_METRICS_TOKEN": METRICS_TOKEN}
        servers = [Serve(mongo.uri, 1, Path(tmp) / f"serve-{i}.log", env) for i in range(max(n for n, _ in plan))]
        try:
            project = _project(servers[0].base_url, "watcher", ["a"])
            rows = []
            for count, rate in dict.fromkeys(plan):
                rows.append(
                    asyncio.run(_measure(mongo, servers[:count], project.id, project.keys["a"], rate, args.window_s))
                )
        finally:
            for server in servers:
                server.stop()
    _print(rows, args.window_s)


if __name__ == "__main__":
    main()
