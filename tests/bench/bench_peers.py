"""Benchmark: NexySync side by side with NATS JetStream and Redis Streams, in one run, interleaved.

Each system is durable in its usual way: NATS JetStream with file storage (publish waits for the
ack), Redis Streams with AOF (``appendfsync always``, then ``everysec``), NexySync ``dev`` on its
embedded database (a send is answered once stored). Each round starts every system afresh, one
after another, and runs the same workloads with a 1 KiB payload:

- **round trip**: one message at a time, send start -> the receiver's subscription has it (p50,
  p99); NexySync's stream event carries no payload, so "in hand" adds its GET and decryption;
- **throughput**: ``--senders`` senders, each to its own receiver, as fast as acknowledged, for
  ``--throughput-s``: messages stored and delivered per second, delivery p99, server CPU per
  message (the server's processes, the embedded database included);
- **broadcast** to each of ``--broadcast-sizes`` subscribers: send -> the last one has it (p50);
- **subscribers**: opening ``--subscribers`` of them (time, and events delivered while opening),
  then idle for ``--idle-s``: server CPU per second and memory per subscriber.

Every message must arrive, or the table says how many did not. The client is one asyncio process;
its own CPU is printed, so a figure bound by the client shows. Ratios are NexySync / peer.

Run: ``tox -e peers`` (or ``python tests/bench/bench_peers.py --help``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from bench_realtime import (
    JWT_SECRET,
    BenchError,
    Sender,
    SseStream,
    _cpu_model,
    _percentile,
    _project,
    _raise_nofile,
)
from scale import _children, _cpu_s, _rss_kib

from nexysync.crypto import KeyRing, new_key
from nexysync_server.ids import new_id
from nexysync_server.store.embedded import free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from debian_packages import debian_binary

PAYLOAD_BYTES = 1024
START_DEADLINE_S = 60.0
DELIVERY_GRACE_S = 10.0
BIN = Path(sys.executable).parent

#: on_message(key, when): ``key`` identifies the message (its number, or NexySync's message id).
OnMessage = Callable[[str, float], None]


def _tree_pids(pid: int) -> list[int]:
    """A process and all its descendants."""
    pids = [pid]
    for parent in pids:
        pids += _children(parent)
    return pids


def _cpu_total_s(pids: list[int]) -> float:
    return sum(map(_cpu_s, pids))


def _rss_total_kib(pids: list[int]) -> int:
    return sum(map(_rss_kib, pids))


async def _wait_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"server exited: {log.read_text()[-1500:]}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.1)
    raise BenchError(f"nothing listened on {port} within {START_DEADLINE_S:.0f} s")


class System:
    """One system under test: a server process and the client operations the workloads use."""

    name = ""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self._closers: list[Callable[[], Awaitable[Any]]] = []

    def _spawn(self, command: list[str], env: dict[str, str] | None = None) -> None:
        log = self.workdir / "server.log"
        with log.open("wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)

    def pids(self) -> list[int]:
        return _tree_pids(self.process.pid) if self.process else []

    async def start(self) -> None: ...

    async def prepare(self, agents: int) -> None:
        """Make ``agents`` receivers (and as many senders) exist."""

    async def subscribe(self, agent: int, on_message: OnMessage) -> None: ...

    async def subscribe_all(self, agent: int, on_message: OnMessage) -> None: ...

    async def subscribe_idle(self, agent: int) -> None:
        """Open a subscription that is only held (the idle workload)."""
        await self.subscribe(agent, lambda key, when: None)

    async def send(self, sender: int, to: int, key: str) -> str:
        """Send one message; return its key once it is acknowledged (stored)."""
        raise NotImplementedError

    async def broadcast(self, sender: int, key: str) -> str:
        raise NotImplementedError

    async def in_hand(self, agent: int, key: str) -> None:
        """Get the payload of a message the subscription announced (peers: it came with it)."""

    async def unsubscribe_all(self) -> None:
        for close in reversed(self._closers):
            with contextlib.suppress(Exception):
                await close()
        self._closers.clear()

    async def stop(self) -> None:
        await self.unsubscribe_all()
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, 20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _payload(key: str) -> bytes:
    return key.encode().ljust(PAYLOAD_BYTES, b".")


class Nats(System):
    name = "NATS JetStream (file)"

    async def start(self) -> None:
        import nats

        self.port = free_port()
        binary = shutil.which("nats-server", path=str(BIN)) or "nats-server"
        command = [binary, "-js", "-sd", str(self.workdir / "js"), "-a", "127.0.0.1", "-p", str(self.port)]
        self._spawn(command)
        await _wait_port(self.port, self.process, self.workdir / "server.log")  # type: ignore[arg-type]
        self.nc = await nats.connect(f"nats://127.0.0.1:{self.port}")
        self.js = self.nc.jetstream()
        from nats.js.api import StorageType

        # A stream's default limit is 1,000 consumers (-1 means that default): say how many.
        await self.js.add_stream(name="BENCH", subjects=["bench.>"], storage=StorageType.FILE, max_consumers=100_000)

    async def stop(self) -> None:
        await self.unsubscribe_all()
        with contextlib.suppress(Exception):
            await self.nc.close()  # before the server stops, or it tries to reconnect
        await super().stop()

    async def _subscribe(self, subject: str, on_message: OnMessage) -> None:
        import nats

        nc = await nats.connect(f"nats://127.0.0.1:{self.port}")

        async def handler(msg: Any) -> None:
            on_message(msg.data[:40].rstrip(b".").decode(), time.perf_counter())

        # An ordered consumer: ephemeral, flow-controlled, no acks; nats-py's fast way to follow a subject.
        sub = await nc.jetstream().subscribe(subject, cb=handler, deliver_policy="new", ordered_consumer=True)

        async def close() -> None:
            # Deletes the consumer at once: closing the connection alone leaves it until it times out,
            # and the next workload's 1,000 would meet the server's limit on consumers.
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            await nc.close()

        self._closers.append(close)

    async def subscribe(self, agent: int, on_message: OnMessage) -> None:
        await self._subscribe(f"bench.to.{agent}", on_message)

    async def subscribe_all(self, agent: int, on_message: OnMessage) -> None:
        await self._subscribe("bench.all", on_message)

    async def send(self, sender: int, to: int, key: str) -> str:
        await self.js.publish(f"bench.to.{to}", _payload(key))
        return key

    async def broadcast(self, sender: int, key: str) -> str:
        await self.js.publish("bench.all", _payload(key))
        return key


class Redis(System):
    def __init__(self, workdir: Path, fsync: str) -> None:
        super().__init__(workdir)
        self.fsync = fsync
        self.name = f"Redis Streams (AOF {fsync})"

    async def start(self) -> None:
        import redis.asyncio as redis

        self.port = free_port()
        binary = debian_binary("redis-server", "redis-server")
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir)]
        command += ["--appendonly", "yes", "--appendfsync", self.fsync, "--save", ""]
        self._spawn(command)
        await _wait_port(self.port, self.process, self.workdir / "server.log")  # type: ignore[arg-type]
        self._redis = redis
        self.senders: dict[int, Any] = {}

    async def _client(self) -> Any:
        client = self._redis.Redis(port=self.port, single_connection_client=True)
        self._closers.append(client.aclose)
        return client

    async def _subscribe(self, stream: str, on_message: OnMessage) -> None:
        client = await self._client()
        last = (await client.xinfo_stream(stream))["last-generated-id"] if await client.exists(stream) else "0-0"

        async def follow() -> None:
            nonlocal last
            while True:
                for _, entries in await client.xread({stream: last}, block=0):
                    for entry_id, fields in entries:
                        last = entry_id
                        on_message(fields[b"p"][:40].rstrip(b".").decode(), time.perf_counter())

        task = asyncio.create_task(follow())

        async def cancel() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

        self._closers.append(cancel)

    async def subscribe(self, agent: int, on_message: OnMessage) -> None:
        await self._subscribe(f"to:{agent}", on_message)

    async def subscribe_all(self, agent: int, on_message: OnMessage) -> None:
        await self._subscribe("all", on_message)

    async def _sender(self, sender: int) -> Any:
        if sender not in self.senders:
            self.senders[sender] = await self._client()
        return self.senders[sender]

    async def send(self, sender: int, to: int, key: str) -> str:
        await (await self._sender(sender)).xadd(f"to:{to}", {"p": _payload(key)})
        return key

    async def broadcast(self, sender: int, key: str) -> str:
        await (await self._sender(sender)).xadd("all", {"p": _payload(key)})
        return key

    async def unsubscribe_all(self) -> None:
        await super().unsubscribe_all()
        self.senders.clear()


class NexySync(System):
    name = "NexySync dev"

    async def start(self) -> None:
        self.port = free_port()
        env = {key: value for key, value in os.environ.items() if not key.startswith("NEXYSYNC_")}
        env |= {
            "NEXYSYNC_JWT_SECRET": JWT_SECRET,
            "NEXYSYNC_QUOTA_MESSAGES_PER_DAY": "100000000",
            "NEXYSYNC_QUOTA_MESSAGE_MB_PER_DAY": "1000000",
            "NEXYSYNC_QUOTA_AGENTS": "100000",
            "NEXYSYNC_RATE_LIMIT_PER_MINUTE": "100000000",
            "NEXYSYNC_HUMAN_RATE_LIMIT_PER_MINUTE": "100000000",
            "NEXYSYNC_LOG_LEVEL": "warning",
        }
        command = [str(BIN / "nexysync-server"), "dev", "--port", str(self.port)]
        command += ["--cdn-port", str(free_port()), "--data-dir", str(self.workdir / "data")]
        self._spawn(command, env)
        await _wait_port(self.port, self.process, self.workdir / "server.log")  # type: ignore[arg-type]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.ring = KeyRing([new_key()])
        self.senders: dict[int, Sender] = {}
        self.readers: dict[int, httpx.AsyncClient] = {}
        self.carried = {}

    async def prepare(self, agents: int) -> None:
        slugs = [f"r{i}" for i in range(agents)] + [f"s{i}" for i in range(agents)]
        self.project = await asyncio.to_thread(_project, self.base_url, f"peers-{new_id()}", slugs)

    def _key(self, slug: str) -> str:
        return self.project.keys[slug]

    async def _subscribe(self, slug: str, on_message: OnMessage, types: tuple[str, ...]) -> None:
        stream = await SseStream.open(self.port, self._key(slug))

        def on_frame(kind: str, data: bytes, when: float) -> None:
            self.frames += 1
            if kind in types:
                message = json.loads(data)["data"]
                if "payload" in message:  # a small message comes whole in its event
                    self.carried[message["id"]] = message
                on_message(message["id"], when)

        stream.follow(on_frame)
        self._closers.append(stream.close)

    frames = 0
    carried: dict[str, dict[str, Any]]

    async def subscribe(self, agent: int, on_message: OnMessage) -> None:
        await self._subscribe(f"r{agent}", on_message, ("new_message",))

    async def subscribe_all(self, agent: int, on_message: OnMessage) -> None:
        await self._subscribe(f"r{agent}", on_message, ("new_message",))

    async def subscribe_idle(self, agent: int) -> None:
        # The senders' identities, which no stream has used: each one comes online here, as a
        # team's agents do when they start, rather than within the grace of an earlier workload.
        await self._subscribe(f"s{agent}", lambda key, when: None, ())

    def _body(self, key: str, to: str | None) -> dict[str, Any]:
        message_id = new_id()
        sealed = {
            name: self.ring.encrypt(value, project_id=self.project.id, kind="message", record_id=message_id, field=name)
            for name, value in (("topic", b"peers"), ("payload", _payload(key)))
        }
        body: dict[str, Any] = {"id": message_id, "type": "notification", **sealed}
        return body | ({"broadcast": True} if to is None else {"to": to})

    async def _post(self, sender: int, body: dict[str, Any]) -> str:
        if sender not in self.senders:
            self.senders[sender] = await Sender.connect(self.port, self._key(f"s{sender}"))
            self._closers.append(self.senders[sender].close)
        post = self.senders[sender]
        post.start(body)
        await post.finish()
        return str(body["id"])

    async def send(self, sender: int, to: int, key: str) -> str:
        return await self._post(sender, self._body(key, f"r{to}"))

    async def broadcast(self, sender: int, key: str) -> str:
        return await self._post(sender, self._body(key, None))

    async def in_hand(self, agent: int, key: str) -> None:
        # In hand from the event when it came whole (marking it read is a later request, off
        # this path, as the SDK's and MCP server's consumers do); else fetched.
        message = self.carried.pop(key, None)
        if message is not None:
            self.ring.decrypt(
                message["payload"], project_id=self.project.id, kind="message", record_id=key, field="payload"
            )
            return
        if agent not in self.readers:
            self.readers[agent] = httpx.AsyncClient(
                base_url=self.base_url, headers={"Authorization": f"Bearer {self._key(f'r{agent}')}"}
            )
            self._closers.append(self.readers[agent].aclose)
        reply = await self.readers[agent].get(f"/v1/messages/{key}")
        if reply.status_code != 200:
            raise BenchError(f"GET /v1/messages/{key}: {reply.status_code} {reply.text[:200]}")
        self.ring.decrypt(
            reply.json()["payload"], project_id=self.project.id, kind="message", record_id=key, field="payload"
        )

    async def unsubscribe_all(self) -> None:
        await super().unsubscribe_all()
        self.senders.clear()
        self.readers.clear()


# --------------------------------------------------------------------------- workloads


class Arrivals:
    """When each message (by key) reached each subscription."""

    def __init__(self) -> None:
        self.at: dict[str, list[float]] = defaultdict(list)
        self.events: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.wanted: dict[str, int] = defaultdict(lambda: 1)

    def __call__(self, key: str, when: float) -> None:
        self.at[key].append(when)
        if len(self.at[key]) >= self.wanted[key]:
            self.events[key].set()

    async def wait(self, key: str, count: int = 1, timeout: float = DELIVERY_GRACE_S) -> bool:
        self.wanted[key] = count
        event = self.events[key]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while len(self.at[key]) < count:
                    event.clear()  # set by an earlier arrival, when one was wanted
                    await event.wait()
        return len(self.at[key]) >= count


async def round_trip(system: System, count: int) -> dict[str, Any]:
    arrivals = Arrivals()
    await system.subscribe(0, arrivals)
    await asyncio.sleep(0.2)
    trips: list[float] = []
    hands: list[float] = []
    lost = 0
    for n in range(count):
        started = time.perf_counter()
        key = await system.send(0, 0, f"rt-{n}")
        if not await arrivals.wait(key):
            lost += 1
            continue
        trips.append((arrivals.at[key][0] - started) * 1000)
        await system.in_hand(0, key)
        hands.append((time.perf_counter() - started) * 1000)
    await system.unsubscribe_all()
    return {
        "rt_p50": _percentile(trips, 0.5),
        "rt_p99": _percentile(trips, 0.99),
        "hand_p50": _percentile(hands, 0.5),
        "rt_lost": lost,
    }


async def throughput(system: System, senders: int, seconds: float) -> dict[str, Any]:
    arrivals = Arrivals()
    for agent in range(senders):
        await system.subscribe(agent, arrivals)
    await asyncio.sleep(0.5)
    started_at: dict[str, float] = {}
    stop_at = time.perf_counter() + seconds
    pids = system.pids()
    cpu_before, client_before = _cpu_total_s(pids), time.process_time()

    async def sender(index: int) -> None:
        n = 0
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            key = await system.send(index, index, f"t{index}-{n}")
            started_at[key] = started
            n += 1

    began = time.perf_counter()
    await asyncio.gather(*(sender(index) for index in range(senders)))
    elapsed = time.perf_counter() - began
    cpu, client_cpu = _cpu_total_s(pids) - cpu_before, time.process_time() - client_before
    missing = [key for key in started_at if not await arrivals.wait(key, timeout=0.01)]
    if missing:
        await asyncio.sleep(DELIVERY_GRACE_S)
        missing = [key for key in started_at if not arrivals.at[key]]
    delays = [(arrivals.at[key][0] - started_at[key]) * 1000 for key in started_at if arrivals.at[key]]
    await system.unsubscribe_all()
    sent = len(started_at)
    return {
        "thr": (sent - len(missing)) / elapsed,
        "thr_p99": _percentile(delays, 0.99),
        "cpu_ms": 1000 * cpu / max(1, sent),
        "thr_client_cpu": 100 * client_cpu / elapsed,
        "thr_lost": len(missing),
    }


async def broadcasts(system: System, size: int, count: int) -> dict[str, Any]:
    arrivals = Arrivals()
    for agent in range(size):
        await system.subscribe_all(agent, arrivals)
    await asyncio.sleep(1.0)
    lasts: list[float] = []
    lost = 0
    for n in range(count):
        started = time.perf_counter()
        key = await system.broadcast(0, f"b{size}-{n}")
        if not await arrivals.wait(key, size, timeout=30):
            lost += size - len(arrivals.at[key])
            continue
        lasts.append((max(arrivals.at[key]) - started) * 1000)
    await system.unsubscribe_all()
    return {f"bc{size}_p50": _percentile(lasts, 0.5) if lasts else float("nan"), f"bc{size}_lost": lost}


async def subscribers(system: System, count: int, idle_s: float) -> dict[str, Any]:
    pids = system.pids()
    rss_before = _rss_total_kib(pids)
    frames_before = getattr(system, "frames", 0)
    started = time.perf_counter()
    await asyncio.gather(*(system.subscribe_idle(agent) for agent in range(count)))
    opened_s = time.perf_counter() - started
    await asyncio.sleep(2.0)
    rss_after = _rss_total_kib(pids)
    cpu_before = _cpu_total_s(pids)
    await asyncio.sleep(idle_s)
    idle_cpu = _cpu_total_s(pids) - cpu_before
    # Every frame from the first open to the end of the idle phase: what opening set off, however
    # long it took to arrive (the events are announcements, none of them a message).
    storm = getattr(system, "frames", 0) - frames_before
    await system.unsubscribe_all()
    return {
        "open_s": opened_s,
        "open_frames": storm if isinstance(system, NexySync) else None,
        "idle_cpu_ms_per_s": 1000 * idle_cpu / idle_s,
        "kib_per_sub": (rss_after - rss_before) / count,
    }


async def run_system(system: System, args: argparse.Namespace) -> dict[str, Any]:
    await system.start()
    try:
        await system.prepare(max(args.subscribers, *args.broadcast_sizes, args.senders))
        result = await round_trip(system, args.roundtrips)
        result |= await throughput(system, args.senders, args.throughput_s)
        for size in args.broadcast_sizes:
            result |= await broadcasts(system, size, args.broadcasts)
        result |= await subscribers(system, args.subscribers, args.idle_s)
        result["load"] = os.getloadavg()[0]
        return result
    finally:
        await system.stop()


# --------------------------------------------------------------------------- table

ROWS = [
    ("round trip p50", "rt_p50", "ms"),
    ("round trip p99", "rt_p99", "ms"),
    ("payload in hand p50", "hand_p50", "ms"),
    ("senders: stored and delivered", "thr", "/s"),
    ("delivery p99 under that load", "thr_p99", "ms"),
    ("server CPU per message", "cpu_ms", "ms"),
    ("client CPU during throughput", "thr_client_cpu", "%"),
    ("open subscribers", "open_s", "s"),
    ("events delivered, opening and idle", "open_frames", ""),
    ("server CPU, subscribers idle", "idle_cpu_ms_per_s", "ms/s"),
    ("memory per idle subscriber", "kib_per_sub", "KiB"),
]


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:,}"


def print_table(results: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> None:
    names = list(results)
    ours = "NexySync dev"
    rows = ROWS[:6] + [
        (f"broadcast to {size}, send -> last p50", f"bc{size}_p50", "ms") for size in args.broadcast_sizes
    ]
    rows += ROWS[6:]
    print()
    print(
        "| workload | "
        + " | ".join(names)
        + " | "
        + " | ".join(
            f"ratio to {n.split(' (')[0]}{' ' + n.split(' (')[1][:-1] if '(' in n else ''}" for n in names if n != ours
        )
        + " |"
    )
    print("|---" * (1 + len(names) + len(names) - 1) + "|")
    for label, field, unit in rows:
        last = {name: runs[-1].get(field) for name, runs in results.items()}
        cells = []
        for name in names:
            values = [run.get(field) for run in results[name] if run.get(field) is not None]
            spread = f" ({_fmt(min(values))} to {_fmt(max(values))})" if len(values) > 1 else ""
            cells.append(f"{_fmt(last[name])} {unit}{spread}" if last[name] is not None else "-")
        ratios = []
        for name in names:
            if name == ours:
                continue
            mine, theirs = last.get(ours), last.get(name)
            ratios.append(f"{mine / theirs:.2f}x" if mine is not None and theirs else "-")
        print(f"| {label} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    lost = {
        name: {key: total for key in runs[0] if key.endswith("_lost") if (total := sum(run[key] for run in runs))}
        for name, runs in results.items()
    }
    print("\nlost, all rounds: " + "; ".join(f"{name} {found or 0}" for name, found in lost.items()))
    bound = [name for name, runs in results.items() if runs[-1]["thr_client_cpu"] >= 85]
    if bound:
        print(f"client-bound throughput (the benchmark's one process at >= 85 % CPU): {', '.join(bound)}")
    print("loads: " + ", ".join(f"{name} {runs[-1]['load']:.2f}" for name, runs in results.items()))


async def main_async(args: argparse.Namespace) -> None:
    results: dict[str, list[dict[str, Any]]] = defaultdict(list)
    systems: dict[str, Callable[[Path], System]] = {
        "nexysync": NexySync,
        "nats": Nats,
        "redis-always": lambda path: Redis(path, "always"),
        "redis-everysec": lambda path: Redis(path, "everysec"),
    }
    makers = [systems[name] for name in args.systems]
    for round_number in range(1, args.rounds + 1):
        for make in makers:
            with tempfile.TemporaryDirectory() as tmp:
                system = make(Path(tmp))
                began = time.perf_counter()
                results[system.name].append(await run_system(system, args))
                print(f"round {round_number}: {system.name} in {time.perf_counter() - began:.0f} s", flush=True)
    print_table(results, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--roundtrips", type=int, default=300)
    parser.add_argument("--senders", type=int, default=32)
    parser.add_argument("--throughput-s", type=float, default=10.0)
    parser.add_argument("--broadcast-sizes", type=lambda text: [int(n) for n in text.split(",")], default=[200, 1000])
    parser.add_argument("--broadcasts", type=int, default=10)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument(
        "--systems",
        type=lambda text: text.split(","),
        default=["nexysync", "nats", "redis-always", "redis-everysec"],
        help="comma-separated, from nexysync, nats, redis-always, redis-everysec",
    )
    args = parser.parse_args()
    nofile = _raise_nofile()
    print(
        f"bench_peers: {_cpu_model()}, {os.cpu_count()} CPUs, RLIMIT_NOFILE {nofile[0]}, "
        f"load {os.getloadavg()[0]:.2f}; "
        f"payload {PAYLOAD_BYTES} B; {args.rounds} interleaved rounds, figures from the last, ranges over all"
    )
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
