"""Benchmark: the bus at scale: 10,000 streams on 1, 2 and 4 workers and on two servers behind HAProxy.

For each layout (``nexysync-server serve --workers 1|2|4``, and two ``serve --workers 2``
behind a plain-HTTP HAProxy with ``balance leastconn``), on one embedded database:

1. **Streams.** ``--streams`` SSE streams (100 agents, each holding many) opened by
   ``--clients`` client processes; a stream refused with 503 ``SERVER_BUSY`` (its worker is at
   ``NEXYSYNC_MAX_STREAMS_PER_WORKER``) is opened again, as a client would. Memory per stream is
   the growth of the server processes' summed RSS over the streams opened.
2. **Broadcast.** ``--broadcasts`` broadcasts, one after another: the time from the start of the
   POST to the moment the last stream read it (p50, p99 over the broadcasts), and whether every
   stream got every broadcast.
3. **Heartbeats.** Idle for ``--idle-s`` with a 5 s heartbeat: each stream's longest silence;
   a heartbeat is late when the silence passed 5 s by more than 1 s.
4. **Sustained sends.** 32 senders POST direct messages as fast as they are answered for
   ``--sustain-s``: messages per second, and whether each reached its recipient's streams.

Then, on the layout given by ``--steady-layout``: ``--steady-agents`` agents (one stream
each) message each other at ``--steady-rate`` messages per second for ``--steady-s``: delivery
p50/p99 (POST start to the recipient's stream) and the count lost. With ``--profile`` py-spy
records one worker during the broadcasts and the top entries are printed.

Times cross processes through ``time.monotonic()`` (CLOCK_MONOTONIC, one clock per machine).
Run: ``tox -e scale`` (or ``python tests/bench/scale.py --help``). Not a ``bench_*.py`` script:
``tox -e bench`` does not run it (it takes about 20 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import multiprocessing.connection
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from bench_realtime import (
    JWT_SECRET,
    BenchError,
    Sender,
    SseStream,
    _cpu_model,
    _message,
    _new_loop,
    _percentile,
    _project,
)

from nexysync_server.store.embedded import EmbeddedMongo, free_port

HEARTBEAT_S = 5.0
AGENTS = 100
READY_DEADLINE_S = 60.0
BROADCAST_DEADLINE_S = 30.0
OPEN_CONCURRENCY = 32
SENDERS = 32
NEXYSYNC_BIN = str(Path(sys.executable).with_name("nexysync-server"))


#: Descriptors the run wants: 10,000 streams are 10,000 sockets in a worker, as many in the clients,
#: and twice as many in HAProxy.
WANTED_DESCRIPTORS = 131_072


def _raise_nofile() -> tuple[int, int]:
    """Raise this process's open-file limit (the hard one too, as root) for the children to inherit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for wanted in ((WANTED_DESCRIPTORS, max(hard, WANTED_DESCRIPTORS)), (hard, hard)):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, wanted)
            break
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _rss_kib(pid: int) -> int:
    """Return a process's resident memory in KiB (0 when it is gone)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _cpu_s(pid: int) -> float:
    """Return a process's user + system CPU time so far, in seconds (0 when it is gone)."""
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def _children(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


def _sockets(pid: int) -> int:
    """Count a process's open sockets (a worker's streams, give or take its database pool)."""
    count = 0
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    return count


# --------------------------------------------------------------------------- servers


class Serve:
    """One ``nexysync-server serve --workers N`` on a free loopback port."""

    def __init__(self, mongo_uri: str, workers: int, log: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        full_env = {key: value for key, value in os.environ.items() if not key.startswith("NEXYSYNC_")}
        full_env |= {
            "NEXYSYNC_MONGODB_URI": mongo_uri,
            "NEXYSYNC_JWT_SECRET": JWT_SECRET,
            "NEXYSYNC_QUOTA_MESSAGES_PER_DAY": "100000000",
            "NEXYSYNC_QUOTA_MESSAGE_MB_PER_DAY": "1000000",
            "NEXYSYNC_QUOTA_AGENTS": "100000",
            "NEXYSYNC_RATE_LIMIT_PER_MINUTE": "100000000",
            "NEXYSYNC_HUMAN_RATE_LIMIT_PER_MINUTE": "100000000",
            "NEXYSYNC_MAX_STREAMS_PER_AGENT": "1000000",
            "NEXYSYNC_HEARTBEAT_S": str(HEARTBEAT_S),
            "NEXYSYNC_LOG_LEVEL": "warning",
            **env,
        }
        command = [NEXYSYNC_BIN, "serve", "--workers", str(workers), "--bind", f"127.0.0.1:{self.port}"]
        with log.open("wb") as out:
            self.process = subprocess.Popen(command, env=full_env, stdout=out, stderr=subprocess.STDOUT)
        self.log = log
        _wait_ready(self.base_url, self.process, log)

    def pids(self) -> list[int]:
        """The master and its workers."""
        return [self.process.pid, *_children(self.process.pid)]

    def workers(self) -> list[int]:
        """The worker processes."""
        return _children(self.process.pid)

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _wait_ready(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{base_url} exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/v1/health/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise BenchError(f"{base_url} was not ready in {READY_DEADLINE_S:.0f} s")


_HAPROXY_CFG = """
global
    maxconn {maxconn}
defaults
    mode http
    timeout connect 5s
    timeout client 3700s
    timeout server 3700s
    timeout http-keep-alive 60s
    retries 3
    option redispatch 1
frontend api
    bind 127.0.0.1:{port}
    default_backend api
backend api
    balance leastconn
    # Events are small writes: without this HAProxy may hold them back for more (MSG_MORE).
    option http-no-delay
    acl sse path /v1/stream
    retry-on conn-failure 503
    http-request disable-l7-retry unless sse
    server a 127.0.0.1:{a}
    server b 127.0.0.1:{b}
"""


class Haproxy:
    """Debian's HAProxy in plain HTTP, ``leastconn`` over two servers (503s retried, as ops/ does for streams)."""

    def __init__(self, a: int, b: int, workdir: Path) -> None:
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(binary).exists():
            raise BenchError("haproxy is not installed (apt-get install haproxy)")
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = workdir / "haproxy.cfg"
        # Two descriptors per proxied connection, within what this process may open.
        maxconn = (resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 200) // 2
        #: The most connections it can proxy at once (its descriptors allow no more).
        self.maxconn = maxconn
        config.write_text(_HAPROXY_CFG.format(port=self.port, a=a, b=b, maxconn=maxconn))
        log = workdir / "haproxy.log"
        with log.open("wb") as out:
            self.process = subprocess.Popen([binary, "-f", str(config)], stdout=out, stderr=subprocess.STDOUT)
        _wait_ready(self.base_url, self.process, log)  # type: ignore[arg-type]

    def stop(self) -> None:
        """Stop it."""
        self.process.terminate()
        self.process.wait(10)


# --------------------------------------------------------------------------- client processes


def _client(conn: multiprocessing.connection.Connection) -> None:
    """A client process: opens streams, records every new_message read and each stream's silences."""
    with asyncio.Runner(loop_factory=_new_loop) as runner:
        runner.run(_client_loop(conn))


async def _client_loop(conn: multiprocessing.connection.Connection) -> None:
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[Any] = asyncio.Queue()

    def receive() -> None:
        try:
            commands.put_nowait(conn.recv())
        except EOFError:  # the benchmark is gone: so is this client
            loop.remove_reader(conn.fileno())
            commands.put_nowait(("close",))

    loop.add_reader(conn.fileno(), receive)

    def reply(answer: Any) -> None:
        # The loop made the pipe non-blocking for add_reader: a large answer would stop half-way.
        os.set_blocking(conn.fileno(), True)
        conn.send(answer)

    streams: list[SseStream] = []
    arrivals: dict[str, list[float]] = defaultdict(list)
    last: list[float] = []
    longest: list[float] = []

    def handler(index: int) -> Any:
        def on_frame(kind: str, data: bytes, when: float) -> None:
            now = time.monotonic()
            longest[index] = max(longest[index], now - last[index])
            last[index] = now
            if kind == "new_message":
                arrivals[json.loads(data)["data"]["id"]].append(now)

        return on_frame

    while True:
        command, *args = await commands.get()
        if command == "open":
            port, keys = args
            refused = await _open_all(port, keys, streams, handler, last, longest)
            reply((len(streams), refused))
        elif command == "arrivals":
            reply(dict(arrivals))
            arrivals.clear()
        elif command == "quiet_since":
            reply(max(last) if last else 0.0)
        elif command == "silences":
            now = time.monotonic()
            for index in range(len(last)):
                longest[index], last[index] = 0.0, now
            await asyncio.sleep(args[0])
            reply(
                (
                    [max(gap, time.monotonic() - seen) for gap, seen in zip(longest, last, strict=True)],
                    sum(s.closed_early for s in streams),
                )
            )
        elif command == "close":
            for start in range(0, len(streams), 500):
                await asyncio.gather(*(s.close() for s in streams[start : start + 500]))
            with contextlib.suppress(OSError):
                reply("closed")
            return


async def _open_all(
    port: int, keys: list[str], streams: list[SseStream], handler: Any, last: list[float], longest: list[float]
) -> int:
    """Open one stream per key, ``OPEN_CONCURRENCY`` at a time; a 503 is retried. Return the 503 count."""
    pending = list(enumerate(keys))
    refused = 0

    async def opener() -> None:
        nonlocal refused
        while pending:
            _, key = pending.pop()
            for _ in range(200):
                try:
                    stream = await asyncio.wait_for(SseStream.open(port, key), 30)
                    break
                except BenchError as exc:
                    if " 503 " not in str(exc):
                        raise
                    refused += 1
                    await asyncio.sleep(0.05)
            else:
                raise BenchError("a stream was refused 200 times")
            index = len(streams)
            streams.append(stream)
            last.append(time.monotonic())
            longest.append(0.0)
            stream.follow(handler(index))

    await asyncio.gather(*(opener() for _ in range(OPEN_CONCURRENCY)))
    return refused


class Clients:
    """``count`` client processes, each with its share of the streams."""

    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.seen: dict[str, list[float]] = defaultdict(list)
        self._conns = []
        self._processes = []
        for _ in range(count):
            parent, child = context.Pipe()
            process = context.Process(target=_client, args=(child,), daemon=True)
            process.start()
            self._conns.append(parent)
            self._processes.append(process)

    def _ask(self, *messages: Any) -> list[Any]:
        for conn, message in zip(self._conns, messages, strict=True):
            conn.send(message)
        return [conn.recv() for conn in self._conns]

    def open(self, port: int, keys: list[str]) -> tuple[int, int]:
        """Open a stream per key, spread over the clients; return (opened, refused with 503)."""
        shares = [keys[index :: len(self._conns)] for index in range(len(self._conns))]
        replies = self._ask(*(("open", port, share) for share in shares))
        return sum(opened for opened, _ in replies), sum(refused for _, refused in replies)

    def collect(self) -> None:
        """Fetch every new_message read since the last call into :attr:`seen` (by message id: read times)."""
        for reply in self._ask(*([("arrivals",)] * len(self._conns))):
            for message_id, times in reply.items():
                self.seen[message_id].extend(times)

    def wait_quiet(self, quiet_s: float = 1.0, limit_s: float = 60.0) -> None:
        """Wait until no stream has read anything for ``quiet_s`` (the presence wave has passed)."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if time.monotonic() - max(self._ask(*([("quiet_since",)] * len(self._conns)))) > quiet_s:
                return
            time.sleep(0.3)

    def silences(self, watch_s: float) -> tuple[list[float], int]:
        """Each stream's longest silence over ``watch_s``, and how many streams the server closed."""
        replies = self._ask(*([("silences", watch_s)] * len(self._conns)))
        return [gap for gaps, _ in replies for gap in gaps], sum(closed for _, closed in replies)

    def close(self) -> None:
        """Close every stream and end the processes."""
        with contextlib.suppress(OSError, EOFError):
            self._ask(*([("close",)] * len(self._conns)))
        for process in self._processes:
            process.join(10)


# --------------------------------------------------------------------------- phases


def phase_broadcast(port: int, project: Any, clients: Clients, streams: int, count: int) -> dict[str, Any]:
    """Send ``count`` broadcasts one after another (after a warm-up); time each to its last stream."""

    async def send_all() -> list[tuple[str, float]]:
        sender = await Sender.connect(port, project.keys["sender"])
        sent = []
        try:
            for _ in range(count + 1):
                body = _message(project.id, to=None)
                started = time.monotonic()
                sender.start(body)
                await sender.finish()
                sent.append((body["id"], started))
                deadline = time.monotonic() + BROADCAST_DEADLINE_S
                while len(clients.seen[body["id"]]) < streams and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                    clients.collect()
        finally:
            await sender.close()
        return sent

    with asyncio.Runner(loop_factory=_new_loop) as runner:
        sent = runner.run(send_all())
    clients.collect()
    to_last, first = [], []
    missing = 0
    for index, (message_id, started) in enumerate(sent):
        times = clients.seen.pop(message_id, [])
        missing += streams - len(times)
        if index and times:
            to_last.append((max(times) - started) * 1000)
            first.append((min(times) - started) * 1000)
    return {"to_last_ms": to_last, "first_ms": first, "missing": missing}


def phase_sustained(port: int, project: Any, clients: Clients, seconds: float, per_agent: int) -> dict[str, Any]:
    """``SENDERS`` senders POST direct messages back to back for ``seconds``; count them and their deliveries."""
    slugs = [slug for slug in project.keys if slug != "sender"]

    async def run() -> list[tuple[str, float]]:
        sent: list[tuple[str, float]] = []
        stop_at = time.monotonic() + seconds

        async def one(index: int) -> None:
            sender = await Sender.connect(port, project.keys[slugs[index % len(slugs)]])
            try:
                while time.monotonic() < stop_at:
                    body = _message(project.id, to=random.choice(slugs))
                    started = time.monotonic()
                    sender.start(body)
                    await sender.finish()
                    sent.append((body["id"], started))
            finally:
                await sender.close()

        await asyncio.gather(*(one(index) for index in range(SENDERS)))
        return sent

    with asyncio.Runner(loop_factory=_new_loop) as runner:
        sent = runner.run(run())
    time.sleep(3)
    clients.collect()
    delays = []
    missing = 0
    for message_id, started in sent:
        times = clients.seen.pop(message_id, [])
        missing += per_agent - len(times)
        delays.extend((t - started) * 1000 for t in times)
    return {"rate": len(sent) / seconds, "sent": len(sent), "missing": missing, "delays": delays}


def phase_steady(port: int, project: Any, clients: Clients, rate: float, seconds: float) -> dict[str, Any]:
    """Every agent messages a random other at a steady total ``rate`` for ``seconds``; delivery and losses."""
    slugs = [slug for slug in project.keys if slug != "sender"]

    async def run() -> tuple[list[tuple[str, float]], int]:
        sent: list[tuple[str, float]] = []
        failed = 0
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        # A pool of connections, each POSTing as the agent whose turn it is.
        senders = [await Sender.connect(port, project.keys[slug]) for slug in slugs[:SENDERS]]

        async def worker(sender: Sender) -> None:
            nonlocal failed
            while (to := await queue.get()) is not None:
                body = _message(project.id, to=to)
                started = time.monotonic()
                sender.start(body)
                try:
                    await sender.finish()
                    sent.append((body["id"], started))
                except BenchError:
                    failed += 1

        tasks = [asyncio.create_task(worker(sender)) for sender in senders]
        interval = 1 / rate
        next_at = time.monotonic()
        stop_at = next_at + seconds
        while next_at < stop_at:
            queue.put_nowait(random.choice(slugs))
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        for _ in tasks:
            queue.put_nowait(None)
        await asyncio.gather(*tasks)
        for sender in senders:
            await sender.close()
        return sent, failed

    with asyncio.Runner(loop_factory=_new_loop) as runner:
        sent, failed = runner.run(run())
    time.sleep(3)
    clients.collect()
    delays = []
    lost = 0
    for message_id, started in sent:
        times = clients.seen.pop(message_id, [])
        if not times:
            lost += 1
        delays.extend((t - started) * 1000 for t in times)
    return {"sent": len(sent), "failed": failed, "lost": lost, "delays": delays}


def _profile(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        print("    (py-spy is not installed: no profile)")
        return None
    command = [spy, "record", "--pid", str(pid), "-r", "200", "-d", str(int(seconds)), "-f", "raw", "-o", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# --------------------------------------------------------------------------- layouts


def _fmt(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"p50 {_percentile(values, 0.5):7.1f} ms  p99 {_percentile(values, 0.99):7.1f} ms  max {max(values):7.1f} ms"


def run_layout(
    name: str, servers: list[Serve], port: int, streams: int, args: argparse.Namespace, workdir: Path
) -> None:
    """Open ``streams`` streams, then broadcast, idle and sustained sends on one layout; print its figures."""
    print(f"\n== {name}: {streams} streams, {args.clients} client processes ==")
    slugs = [f"a{index:03d}" for index in range(AGENTS)]
    project = _project(servers[0].base_url, f"scale-{name}", ["sender", *slugs])
    keys = [project.keys[slugs[index % AGENTS]] for index in range(streams)]
    rss_before = sum(_rss_kib(pid) for server in servers for pid in server.pids())
    clients = Clients(args.clients)
    try:
        started = time.monotonic()
        opened, refused = clients.open(port, keys)
        open_s = time.monotonic() - started
        clients.wait_quiet()
        rss_after = sum(_rss_kib(pid) for server in servers for pid in server.pids())
        per_worker = [_sockets(pid) for server in servers for pid in server.workers()]
        per_stream = (rss_after - rss_before) / max(1, opened)
        print(
            f"  opened {opened} streams in {open_s:.1f} s ({refused} refused with 503 and opened again); "
            f"sockets per worker {per_worker}"
        )
        print(
            f"  memory: servers' RSS {rss_before / 1024:.0f} MiB -> {rss_after / 1024:.0f} MiB, "
            f"{per_stream:.1f} KiB per stream; load {os.getloadavg()[0]:.2f}"
        )
        worker = servers[0].workers()[0]
        spy = _profile(worker, 8, workdir / f"{name}.raw") if args.profile else None
        result = phase_broadcast(port, project, clients, opened, args.broadcasts)
        print(
            f"  broadcast x{args.broadcasts}: to the last stream {_fmt(result['to_last_ms'])}; "
            f"first stream p50 {_percentile(result['first_ms'], 0.5):.1f} ms; "
            f"deliveries missing {result['missing']}; load {os.getloadavg()[0]:.2f}"
        )
        if spy is not None:
            spy.wait(60)
            print(f"  profile of worker {worker} during the broadcasts:")
            subprocess.run(
                [sys.executable, str(Path(__file__).with_name("profile_top.py")), str(workdir / f"{name}.raw")]
            )
        silences, closed = clients.silences(args.idle_s)
        late = sum(gap > HEARTBEAT_S + 1 for gap in silences)
        print(
            f"  idle {args.idle_s:.0f} s, heartbeat {HEARTBEAT_S:.0f} s: longest silence "
            f"p50 {_percentile(silences, 0.5):.2f} s, max {max(silences):.2f} s; {late} streams late by > 1 s; "
            f"{closed} closed by the server"
        )
        per_agent = streams // AGENTS
        sustained = phase_sustained(port, project, clients, args.sustain_s, per_agent)
        print(
            f"  sustained, {SENDERS} senders for {args.sustain_s:.0f} s: {sustained['rate']:.0f} messages/s "
            f"({sustained['sent']} sent, each to {per_agent} streams); delivery {_fmt(sustained['delays'])}; "
            f"deliveries missing {sustained['missing']}; load {os.getloadavg()[0]:.2f}"
        )
    finally:
        clients.close()


def run_steady(server: Serve, args: argparse.Namespace) -> None:
    """``--steady-agents`` agents, one stream each, messaging each other at a steady rate."""
    print(
        f"\n== steady: {args.steady_agents} agents (one stream each) at {args.steady_rate:g} messages/s "
        f"for {args.steady_s:.0f} s, on {args.steady_layout} =="
    )
    slugs = [f"s{index:04d}" for index in range(args.steady_agents)]
    project = _project(server.base_url, "scale-steady", ["sender", *slugs])
    clients = Clients(args.clients)
    try:
        clients.open(server.port, [project.keys[slug] for slug in slugs])
        clients.wait_quiet(limit_s=120)
        result = phase_steady(server.port, project, clients, args.steady_rate, args.steady_s)
        print(
            f"  sent {result['sent']} ({result['failed']} refused), lost {result['lost']}; "
            f"delivery {_fmt(result['delays'])}; load {os.getloadavg()[0]:.2f}"
        )
    finally:
        clients.close()


def _layouts(mongo_uri: str, workdir: Path, args: argparse.Namespace) -> Iterator[tuple[str, list[Serve], int, int]]:
    cap = {"NEXYSYNC_MAX_CONNECTIONS_PER_WORKER": str(args.streams + 1000)}
    for workers in args.workers:
        # One worker must hold every stream: its cap is lifted (the point is to measure it).
        env = cap | ({"NEXYSYNC_MAX_STREAMS_PER_WORKER": "0"} if workers == 1 else {})
        server = Serve(mongo_uri, workers, workdir / f"serve-{workers}.log", env)
        try:
            yield f"serve --workers {workers}", [server], server.port, args.streams
        finally:
            server.stop()
    if args.haproxy:
        a = Serve(mongo_uri, 2, workdir / "serve-a.log", cap)
        b = Serve(mongo_uri, 2, workdir / "serve-b.log", cap)
        proxy = Haproxy(a.port, b.port, workdir)
        # HAProxy holds two descriptors per stream: within this machine's limit, it may hold fewer.
        streams = min(args.streams, (proxy.maxconn - 200) // AGENTS * AGENTS)
        try:
            yield "2 x serve --workers 2 behind HAProxy", [a, b], proxy.port, streams
        finally:
            proxy.stop()
            a.stop()
            b.stop()


def main() -> None:
    """Run every layout, then the steady phase; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--haproxy", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--broadcasts", type=int, default=10)
    parser.add_argument("--idle-s", type=float, default=20.0)
    parser.add_argument("--sustain-s", type=float, default=10.0)
    parser.add_argument("--steady-agents", type=int, default=1000)
    parser.add_argument("--steady-rate", type=float, default=100.0)
    parser.add_argument("--steady-s", type=float, default=300.0)
    parser.add_argument("--steady-layout", default="serve --workers 2")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    nofile = _raise_nofile()
    print(
        f"machine: {os.cpu_count()} cores ({_cpu_model()}), RLIMIT_NOFILE {nofile[0]}/{nofile[1]}, "
        f"load {os.getloadavg()[0]:.2f}; database nx-27017 (embedded); servers, clients and database share the cores"
    )
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory() as tmp, EmbeddedMongo(Path(tmp) / "db") as mongo:
            workdir = Path(tmp)
            for name, servers, port, streams in _layouts(mongo.uri, workdir, args):
                run_layout(name, servers, port, streams, args, workdir)
            if args.steady_s > 0:
                workers = int(args.steady_layout.rsplit(" ", 1)[-1])
                server = Serve(mongo.uri, workers, workdir / "serve-steady.log", {})
                try:
                    run_steady(server, args)
                finally:
                    server.stop()
    except (BenchError, httpx.HTTPError, OSError) as exc:
        sys.exit(f"benchmark failed: {exc}")
    print(f"\ntotal time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
