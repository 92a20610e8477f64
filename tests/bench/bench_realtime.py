"""Benchmark: realtime push over ``GET /v1/stream``: latency, broadcast fan-out and idle streams.

Starts an embedded database and one API process (uvicorn, one worker), then measures:

(a) push latency: one open stream for the receiver; for each of N messages sent one after another,
    the time from the start of ``POST /v1/messages`` to the moment its ``new_message`` event is
    read on the stream (p50, p99, max);
(b) fan-out: M agents with an open stream each; one broadcast; the time from the start of the
    POST until the last of the M streams has read the event (5 repetitions and their median);
(c) idle streams: up to K streams against the one worker (restarted with a 2 s heartbeat); the
    worker's RSS growth per stream, then whether every stream got its heartbeats on time.

Streams and requests use a bare asyncio HTTP/1.1 client: a full HTTP client library costs more
CPU than the server on a 2-core machine, so it would be measuring itself.

Run: ``python tests/bench/bench_realtime.py [--latency-messages 500] [--fanout-agents 200]
[--idle-streams 5000]`` (or ``tox -e bench``); a count of 0 skips that phase.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from nexysync.crypto import KeyRing, new_key
from nexysync_server.ids import new_id
from nexysync_server.store.embedded import EmbeddedMongo, free_port

READY_DEADLINE_S = 60.0
STOP_DEADLINE_S = 20.0
EVENT_DEADLINE_S = 10.0
FANOUT_REPEATS = 5
IDLE_HEARTBEAT_S = 2.0
IDLE_WATCH_S = 10.0
OPEN_CONCURRENCY = 64
STREAMS_PER_AGENT = 500
JWT_SECRET = "bench-" + "x" * 32

# One key ring for the run: every message body is sealed like a real client's (ciphertext fields).
_RING = KeyRing([new_key()])


class BenchError(RuntimeError):
    """A phase could not run; the message says what went wrong."""


# --------------------------------------------------------------------------- the API process


def _raise_nofile() -> tuple[int, int]:
    """Raise this process's open-file limit to the hard limit; return the (soft, hard) in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _child_nofile() -> None:
    """``preexec_fn`` of the API process: the same raise, in the child before it runs Python."""
    _raise_nofile()


class Api:
    """One uvicorn process serving the API on a free loopback port.

    Args:
        mongo_uri: The database.
        log_path: Where the process's stdout and stderr go.
        extra_env: More ``NEXYSYNC_*`` settings for this process.
    """

    def __init__(self, mongo_uri: str, log_path: Path, extra_env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "NEXYSYNC_MONGODB_URI": mongo_uri,
            "NEXYSYNC_JWT_SECRET": JWT_SECRET,
            # Far above what the run sends, so that no quota ends a phase early.
            "NEXYSYNC_QUOTA_MESSAGES_PER_DAY": "10000000",
            "NEXYSYNC_QUOTA_AGENTS": "100000",
            "NEXYSYNC_RATE_LIMIT_PER_MINUTE": "100000000",
            "NEXYSYNC_MAX_STREAMS_PER_AGENT": "100000",
            **(extra_env or {}),
        }
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "nexysync_server.app:create_app",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--backlog",
            "4096",
            "--timeout-graceful-shutdown",
            "5",
        ]
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_child_nofile
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_DEADLINE_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(
                    f"the API exited with code {self.process.returncode} before it was ready:\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.base_url}/v1/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise BenchError(f"the API did not answer /v1/health/ready within {READY_DEADLINE_S:.0f} s")

    def check_alive(self) -> None:
        """Raise if the API process has exited."""
        if self.process.poll() is not None:
            raise BenchError(f"the API process exited with code {self.process.returncode}:\n{self.log_tail()}")

    def rss_kib(self) -> int:
        """Return the API process's resident set size (VmRSS) in KiB."""
        self.check_alive()
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise BenchError("VmRSS not found in /proc/<pid>/status")

    def nofile_limit(self) -> str:
        """Return the API process's 'Max open files' soft/hard limits as read from /proc."""
        for line in Path(f"/proc/{self.process.pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return f"{soft}/{hard}"
        return "?"

    def log_tail(self, lines: int = 20) -> str:
        """Return the last lines of the process's output."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no API log)"
        return "\n".join(text.splitlines()[-lines:]) or "(the API log is empty)"

    def log_errors(self) -> list[str]:
        """Return, for each ``ERROR:`` entry of the process's output, the exception that ended it."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        found: list[str] = []
        for index, line in enumerate(lines):
            if line.startswith("ERROR:") and index + 1 < len(lines) and lines[index + 1].startswith("Traceback"):
                following = lines[index + 2 :]
                found.append(next((t for t in following if t and not t.startswith(" ")), line).strip())
            elif line.startswith("ERROR:"):
                found.append(line.removeprefix("ERROR:").strip())
        return found

    def stop(self) -> None:
        """Terminate the process (SIGTERM, then SIGKILL if it lingers); say how long it took."""
        if self.process.poll() is not None:
            return
        started = time.perf_counter()
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            print(f"    the API did not stop within {STOP_DEADLINE_S:.0f} s of SIGTERM; killed")
            self.process.kill()
            self.process.wait(timeout=10)
        errors = self.log_errors()
        summary = ""
        if errors:
            kinds = sorted(set(errors))
            summary = f"; its log has {len(errors)} ERROR entries: " + "; ".join(
                f"{errors.count(k)}x '{k}'" for k in kinds[:3]
            )
        print(f"    API pid {self.process.pid} stopped {time.perf_counter() - started:.1f} s after SIGTERM{summary}")


@contextlib.contextmanager
def _api(mongo_uri: str, log_path: Path, extra_env: dict[str, str] | None = None) -> Iterator[Api]:
    """Start an API process for the duration of a ``with`` block."""
    api = Api(mongo_uri, log_path, extra_env)
    try:
        yield api
    finally:
        api.stop()


# --------------------------------------------------------------------------- seeding over HTTP


@dataclass
class Project:
    """A project made for one phase, with its agents' API keys by slug."""

    id: str
    keys: dict[str, str] = field(default_factory=dict)


def _user(base_url: str) -> httpx.Client:
    """Register a user; return a client that carries its access token."""
    http = httpx.Client(base_url=base_url, timeout=30)
    reply = http.post(
        "/v1/auth/register",
        json={
            "email": f"bench-{new_id().lower()}@example.test",
            "name": "Bench",
            "password": "benchmark!",
            "tos_accepted": True,
        },
    )
    if reply.status_code != 201:
        raise BenchError(f"registering the bench user failed: {reply.status_code} {reply.text[:300]}")
    http.headers["Authorization"] = f"Bearer {reply.json()['access_token']}"
    return http


def _project(base_url: str, name: str, slugs: list[str]) -> Project:
    """Create a project and one agent per slug."""
    http = _user(base_url)
    try:
        reply = http.post("/v1/projects", json={"name": name})
        if reply.status_code != 201:
            raise BenchError(f"creating project {name!r} failed: {reply.status_code} {reply.text[:300]}")
        project = Project(reply.json()["id"])
        for slug in slugs:
            reply = http.post(f"/v1/projects/{project.id}/agents", json={"slug": slug, "name": slug})
            if reply.status_code != 201:
                raise BenchError(f"creating agent {slug!r} failed: {reply.status_code} {reply.text[:300]}")
            project.keys[slug] = reply.json()["api_key"]
    finally:
        http.close()
    return project


def _message(project_id: str, *, to: str | None) -> dict[str, Any]:
    """Build a message body with ciphertext topic and payload: direct to ``to``, else a broadcast."""
    message_id = new_id()

    def seal(name: str, text: str) -> str:
        return _RING.encrypt(text.encode(), project_id=project_id, kind="message", record_id=message_id, field=name)

    body: dict[str, Any] = {
        "id": message_id,
        "type": "notification",
        "topic": seal("topic", "benchmark topic"),
        "payload": seal("payload", "x" * 200),
    }
    if to is None:
        body["broadcast"] = True
    else:
        body["to"] = to
    return body


# --------------------------------------------------------------------------- bare HTTP/1.1 + SSE


async def _read_head(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str]]:
    """Read a status line and headers; return the status line and lower-cased headers."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection before answering")
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return status_line, headers


class Sender:
    """One keep-alive HTTP/1.1 connection that POSTs messages as one agent."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, api_key: str) -> None:
        self._reader = reader
        self._writer = writer
        self._head = (
            f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {api_key}\r\n"
            "Content-Type: application/json\r\n"
        )

    @classmethod
    async def connect(cls, port: int, api_key: str) -> Sender:
        """Open the connection."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, api_key)

    def start(self, body: dict[str, Any]) -> None:
        """Write one request (the caller takes the start time just before)."""
        payload = json.dumps(body).encode()
        self._writer.write(f"{self._head}Content-Length: {len(payload)}\r\n\r\n".encode() + payload)

    async def finish(self) -> None:
        """Read the reply to the request written last; raise unless it is 201."""
        status_line, headers = await _read_head(self._reader)
        reply = await self._reader.readexactly(int(headers.get("content-length", "0")))
        if not status_line.startswith(b"HTTP/1.1 201"):
            raise BenchError(f"POST /v1/messages failed: {status_line.decode().strip()} {reply[:300]!r}")

    async def close(self) -> None:
        """Close the connection."""
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


# on_frame(kind, data, when): kind is the event type, or "" for a comment whose text is `data`.
FrameHandler = Callable[[str, bytes, float], None]


class SseStream:
    """One ``GET /v1/stream`` connection, its frames handed to ``on_frame`` as they are read.

    Parses chunked transfer coding (or a plain body) and splits SSE frames on blank lines; only
    the ``event:`` and ``data:`` fields are kept. ``when`` is ``time.perf_counter()`` at the read.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, chunked: bool) -> None:
        self._reader = reader
        self._writer = writer
        self._chunked = chunked
        self._task: asyncio.Task[None] | None = None
        self.closed_early = False
        self.error: BaseException | None = None

    @classmethod
    async def open(cls, port: int, api_key: str) -> SseStream:
        """Connect and read the response head; raise unless it is a 200 event stream."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                f"GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {api_key}\r\n"
                "Accept: text/event-stream\r\n\r\n".encode()
            )
            status_line, headers = await _read_head(reader)
            if not status_line.startswith(b"HTTP/1.1 200"):
                body = await asyncio.wait_for(reader.read(300), 2)
                raise BenchError(f"GET /v1/stream: {status_line.decode().strip()} {body!r}")
            if not headers.get("content-type", "").startswith("text/event-stream"):
                raise BenchError(f"GET /v1/stream answered content-type {headers.get('content-type')!r}")
        except BaseException:
            writer.close()
            raise
        return cls(reader, writer, headers.get("transfer-encoding", "").lower() == "chunked")

    def follow(self, on_frame: FrameHandler) -> None:
        """Start reading frames in the background."""
        self._task = asyncio.create_task(self._read(on_frame))

    async def _read(self, on_frame: FrameHandler) -> None:
        buffer = b""
        try:
            while True:
                if self._chunked:
                    size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    if size == 0:
                        break
                    chunk = (await self._reader.readexactly(size + 2))[:-2]
                else:
                    chunk = await self._reader.read(65536)
                    if not chunk:
                        break
                when = time.perf_counter()
                buffer += chunk
                while (end := buffer.find(b"\n\n")) >= 0:
                    _dispatch(buffer[:end], when, on_frame)
                    buffer = buffer[end + 2 :]
            self.closed_early = True
        except asyncio.CancelledError:
            raise
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            self.closed_early = True
            self.error = exc

    async def close(self) -> None:
        """Stop reading and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


def _dispatch(frame: bytes, when: float, on_frame: FrameHandler) -> None:
    """Hand one SSE frame to ``on_frame``: each comment line, then the event if it has data."""
    kind = "message"
    data: list[bytes] = []
    for line in frame.split(b"\n"):
        if line.startswith(b":"):
            on_frame("", line[1:].strip(), when)
        elif line.startswith(b"event:"):
            kind = line[6:].strip().decode()
        elif line.startswith(b"data:"):
            data.append(line[5:].removeprefix(b" "))
    if data:
        on_frame(kind, b"\n".join(data), when)


async def _open_streams(
    port: int, keys: list[str], handlers: list[FrameHandler], *, stop_on_error: bool
) -> tuple[list[SseStream], str | None]:
    """Open one stream per key (``OPEN_CONCURRENCY`` at a time) and start following each.

    Returns the streams opened, in order, and why opening stopped early (``None`` if it did not).
    The first failure ends the opening; with ``stop_on_error`` the streams opened are closed and
    :class:`BenchError` is raised, else the caller gets what was opened and the reason.
    """
    streams: list[SseStream | None] = [None] * len(keys)
    next_index = 0
    failure: str | None = None

    async def opener() -> None:
        nonlocal next_index, failure
        while failure is None and next_index < len(keys):
            index = next_index
            next_index += 1
            try:
                stream = await asyncio.wait_for(SseStream.open(port, keys[index]), 30)
            except (OSError, BenchError, TimeoutError, ConnectionError) as exc:
                failure = failure or f"stream {index + 1} of {len(keys)}: {exc!r}"
                return
            stream.follow(handlers[index])
            streams[index] = stream

    await asyncio.gather(*(opener() for _ in range(min(OPEN_CONCURRENCY, len(keys)))))
    opened = [s for s in streams if s is not None]
    if failure is not None and stop_on_error:
        await _close_all(opened)
        raise BenchError(f"opening a stream failed: {failure}")
    return opened, failure


async def _close_all(streams: list[SseStream]) -> None:
    """Close every stream, a few hundred at a time."""
    for start in range(0, len(streams), 500):
        await asyncio.gather(*(s.close() for s in streams[start : start + 500]))


def _percentile(values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


# --------------------------------------------------------------------------- (a) push latency


async def phase_latency(api: Api, count: int) -> None:
    """(a) Send ``count`` messages one after another; time POST start -> event read on the stream."""
    project = _project(api.base_url, "bench-latency", ["sender", "receiver"])
    waiting: dict[str, asyncio.Future[float]] = {}

    def on_frame(kind: str, data: bytes, when: float) -> None:
        if kind != "new_message":
            return
        future = waiting.get(json.loads(data)["data"]["id"])
        if future is not None and not future.done():
            future.set_result(when)

    streams, _ = await _open_streams(api.port, [project.keys["receiver"]], [on_frame], stop_on_error=True)
    sender = await Sender.connect(api.port, project.keys["sender"])
    loop = asyncio.get_running_loop()
    push_ms: list[float] = []
    post_ms: list[float] = []
    try:
        for number in range(-20, count):  # 20 warm-up messages first, not counted
            body = _message(project.id, to="receiver")
            future: asyncio.Future[float] = loop.create_future()
            waiting[body["id"]] = future
            started = time.perf_counter()
            sender.start(body)
            await sender.finish()
            replied = time.perf_counter()
            try:
                arrived = await asyncio.wait_for(future, EVENT_DEADLINE_S)
            except TimeoutError:
                api.check_alive()
                stream = streams[0]
                why = f" (stream closed: {stream.error!r})" if stream.closed_early else ""
                raise BenchError(
                    f"message {number + 21}: no new_message event on the stream within {EVENT_DEADLINE_S:.0f} s{why}"
                ) from None
            del waiting[body["id"]]
            if number >= 0:
                push_ms.append((arrived - started) * 1000)
                post_ms.append((replied - started) * 1000)
    finally:
        await sender.close()
        await _close_all(streams)
    before_reply = sum(1 for p, q in zip(push_ms, post_ms, strict=True) if p < q)
    print(f"(a) push latency, {count} messages sent one after another to one open stream")
    print(
        f"    POST start -> event read:  p50 {_percentile(push_ms, 0.50):7.2f} ms   "
        f"p99 {_percentile(push_ms, 0.99):7.2f} ms   max {max(push_ms):7.2f} ms"
    )
    print(
        f"    (POST round trip alone:    p50 {_percentile(post_ms, 0.50):7.2f} ms   "
        f"p99 {_percentile(post_ms, 0.99):7.2f} ms   max {max(post_ms):7.2f} ms;"
        f" event read before the 201 in {before_reply} of {count})"
    )


# --------------------------------------------------------------------------- (b) fan-out


async def phase_fanout(api: Api, agents: int) -> None:
    """(b) ``agents`` open streams, one broadcast; time POST start -> the last stream has it."""
    slugs = [f"a{i:04d}" for i in range(agents)]
    project = _project(api.base_url, "bench-fanout", ["sender", *slugs])
    arrivals: list[float | None] = [None] * agents
    target: list[str] = [""]  # the id of the broadcast being timed
    remaining = [0]
    all_in = asyncio.Event()
    last_frame = [time.perf_counter()]

    def handler(index: int) -> FrameHandler:
        def on_frame(kind: str, data: bytes, when: float) -> None:
            last_frame[0] = when
            if kind != "new_message" or arrivals[index] is not None:
                return
            if json.loads(data)["data"]["id"] == target[0]:
                arrivals[index] = when
                remaining[0] -= 1
                if remaining[0] == 0:
                    all_in.set()

        return on_frame

    opened_at = time.perf_counter()
    streams, _ = await _open_streams(
        api.port, [project.keys[s] for s in slugs], [handler(i) for i in range(agents)], stop_on_error=True
    )
    open_s = time.perf_counter() - opened_at
    # Each new agent online is a presence_change to everyone: let that wave pass before timing.
    quiet_deadline = time.perf_counter() + 15
    while time.perf_counter() - last_frame[0] < 0.5 and time.perf_counter() < quiet_deadline:
        await asyncio.sleep(0.1)
    sender = await Sender.connect(api.port, project.keys["sender"])
    last_ms: list[float] = []
    lines: list[str] = []
    try:
        for rep in range(-1, FANOUT_REPEATS):  # one warm-up broadcast first, not counted
            body = _message(project.id, to=None)
            target[0] = body["id"]
            arrivals[:] = [None] * agents
            remaining[0] = agents
            all_in.clear()
            started = time.perf_counter()
            sender.start(body)
            await sender.finish()
            replied = time.perf_counter()
            try:
                await asyncio.wait_for(all_in.wait(), EVENT_DEADLINE_S)
            except TimeoutError:
                api.check_alive()
                dead = sum(1 for s in streams if s.closed_early)
                raise BenchError(
                    f"broadcast {rep + 2}: {remaining[0]} of {agents} streams had no event after "
                    f"{EVENT_DEADLINE_S:.0f} s ({dead} streams closed by the server)"
                ) from None
            times = [t for t in arrivals if t is not None]
            if rep >= 0:
                last_ms.append((max(times) - started) * 1000)
                lines.append(
                    f"    broadcast {rep + 1}: last {last_ms[-1]:7.1f} ms"
                    f"   first {(min(times) - started) * 1000:6.1f} ms"
                    f"   median stream {(statistics.median(times) - started) * 1000:6.1f} ms"
                    f"   (201 after {(replied - started) * 1000:5.1f} ms)"
                )
            await asyncio.sleep(0.3)
    finally:
        await sender.close()
        await _close_all(streams)
    print(f"(b) fan-out: one broadcast to {agents} open streams ({agents} agents; streams opened in {open_s:.1f} s)")
    for line in lines:
        print(line)
    print(f"    median of {FANOUT_REPEATS}: POST start -> last stream has it: {statistics.median(last_ms):.1f} ms")


# --------------------------------------------------------------------------- (c) idle streams


async def phase_idle(api: Api, wanted: int, nofile: tuple[int, int]) -> None:
    """(c) Open up to ``wanted`` idle streams; RSS per stream; heartbeats late by > 2x the interval."""
    agent_count = max(1, -(-wanted // STREAMS_PER_AGENT))
    slugs = [f"idle{i:02d}" for i in range(agent_count)]
    project = _project(api.base_url, "bench-idle", slugs)
    # Leave room for the database client, the API's connections and stdio in this process.
    limit = max(0, nofile[0] - 100)
    target = min(wanted, limit)
    beats: list[list[float]] = [[] for _ in range(target)]
    recording = [False]

    def handler(index: int) -> FrameHandler:
        mine = beats[index]

        def on_frame(kind: str, data: bytes, when: float) -> None:
            if recording[0] and kind == "" and data == b"heartbeat":
                mine.append(when)

        return on_frame

    # Warm the code paths (and the allocator) with a few streams first, then take the baseline.
    warm, _ = await _open_streams(api.port, [project.keys[slugs[0]]] * 20, [lambda *_: None] * 20, stop_on_error=True)
    await _close_all(warm)
    await asyncio.sleep(IDLE_HEARTBEAT_S * 1.5 + 0.5)  # the server frees a closed stream at its next heartbeat
    rss_before = api.rss_kib()
    keys = [project.keys[slugs[i % agent_count]] for i in range(target)]
    opened_at = time.perf_counter()
    streams, failure = await _open_streams(api.port, keys, [handler(i) for i in range(target)], stop_on_error=False)
    open_s = time.perf_counter() - opened_at
    try:
        if not streams:
            raise BenchError(f"no idle stream could be opened: {failure}")
        await asyncio.sleep(1.0)
        rss_after = api.rss_kib()
        recording[0] = True
        watch_start = time.perf_counter()
        await asyncio.sleep(IDLE_WATCH_S)
        watch_end = time.perf_counter()
        recording[0] = False
        late = 0
        closed = 0
        gaps: list[float] = []
        for index, stream in enumerate(streams):
            times = [watch_start, *beats[index], watch_end]
            stream_gaps = [b - a for a, b in itertools.pairwise(times)]
            gaps.extend(stream_gaps[1:-1])  # whole intervals between two heartbeats
            if stream.closed_early:
                closed += 1
            if stream.closed_early or max(stream_gaps) > 2 * IDLE_HEARTBEAT_S:
                late += 1
        beat_count = sum(len(b) for b in beats[: len(streams)])
    finally:
        await _close_all(streams)
    why = f"; stopped early at {failure}" if failure else ""
    capped = f" (capped by RLIMIT_NOFILE {nofile[0]})" if target < wanted else ""
    print(
        f"(c) idle streams: {len(streams)} of {wanted} opened{capped} in {open_s:.1f} s "
        f"({len(streams) / open_s:.0f}/s) over {agent_count} agents{why}"
    )
    per_stream = (rss_after - rss_before) / len(streams)
    print(f"    API RSS {rss_before / 1024:.1f} MiB -> {rss_after / 1024:.1f} MiB: {per_stream:.1f} KiB per stream")
    expected = len(streams) * IDLE_WATCH_S / IDLE_HEARTBEAT_S
    gap_text = (
        f"gap p50 {statistics.median(gaps):.2f} s, p99 {_percentile(gaps, 0.99):.2f} s, max {max(gaps):.2f} s"
        if gaps
        else "no two heartbeats on any stream"
    )
    print(
        f"    heartbeats over {IDLE_WATCH_S:.0f} s at {IDLE_HEARTBEAT_S:.0f} s: {beat_count} read "
        f"(~{expected:.0f} due); {gap_text}"
    )
    print(
        f"    streams with a gap > {2 * IDLE_HEARTBEAT_S:.0f} s (late heartbeat): {late}"
        f" (of which closed by the server: {closed})"
    )


# --------------------------------------------------------------------------- main


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or "?"


def _new_loop() -> asyncio.AbstractEventLoop:
    """Use uvloop for the client side when installed (it costs less CPU than asyncio's loop)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main() -> None:
    """Run the three phases and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-messages", type=int, default=500)
    parser.add_argument("--fanout-agents", type=int, default=200)
    parser.add_argument("--idle-streams", type=int, default=5000)
    # `tox -e bench` hands the same arguments to every bench script: skip the other scripts' ones.
    args, unknown = parser.parse_known_args()
    if unknown:
        print(f"(ignoring arguments meant for other benchmarks: {' '.join(unknown)})")
    nofile = _raise_nofile()
    loop_name = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    print(
        f"machine: {os.cpu_count()} cores ({_cpu_model()}), Python {platform.python_version()}, "
        f"RLIMIT_NOFILE {nofile[0]}/{nofile[1]}"
    )
    print(
        f"settings: latency messages {args.latency_messages}, fan-out agents {args.fanout_agents}, "
        f"idle streams {args.idle_streams} (heartbeat {IDLE_HEARTBEAT_S:.0f} s, watched {IDLE_WATCH_S:.0f} s); "
        f"database nx-27017 (embedded, shared), API: 1 uvicorn worker; client loop: {loop_name}"
    )
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as tmp, EmbeddedMongo(Path(tmp) / "db") as mongo:
            if args.latency_messages > 0 or args.fanout_agents > 0:
                with _api(mongo.uri, Path(tmp) / "api-1.log") as api:
                    print(f"API pid {api.process.pid}, open files limit {api.nofile_limit()}")
                    with asyncio.Runner(loop_factory=_new_loop) as runner:
                        if args.latency_messages > 0:
                            runner.run(phase_latency(api, args.latency_messages))
                        if args.fanout_agents > 0:
                            runner.run(phase_fanout(api, args.fanout_agents))
            if args.idle_streams > 0:
                heartbeat = {"NEXYSYNC_HEARTBEAT_S": str(IDLE_HEARTBEAT_S)}
                with _api(mongo.uri, Path(tmp) / "api-2.log", heartbeat) as api:
                    print(f"API started with NEXYSYNC_HEARTBEAT_S={IDLE_HEARTBEAT_S:g} (pid {api.process.pid})")
                    with asyncio.Runner(loop_factory=_new_loop) as runner:
                        runner.run(phase_idle(api, args.idle_streams, nofile))
    except (BenchError, httpx.HTTPError, OSError) as exc:
        sys.exit(f"benchmark failed: {exc}")
    print(f"total time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
