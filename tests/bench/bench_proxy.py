"""Benchmark: push latency through HAProxy with TLS beside the API reached directly, in one run.

Starts the live test's stack (tests/e2e/haproxy_support.py: Debian's HAProxy with
ops/haproxy/haproxy.cfg and TLS, blue and green ``nexysync-server serve`` with one worker each,
the CDN, one embedded database), then measures push latency two ways, interleaved message by
message so that the machine's noise falls on both alike:

- direct: ``POST /v1/messages`` to blue's own port, the recipient's ``GET /v1/stream`` on blue too;
- proxy: both through HAProxy's TLS port (HTTP/1.1 over TLS, keep-alive), which routes to blue.

Latency is the time from the start of the POST to the moment the ``new_message`` event is read on
the recipient's stream. Both use a bare asyncio HTTP/1.1 client (a full HTTP client library costs
more CPU than the server on a 2-core machine). Prints p50, p99 and mean for each, and the ratios.

Run: ``python tests/bench/bench_proxy.py [--messages 300]`` (or ``tox -e bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from haproxy_support import Stack
from realtime_support import Team

from nexysync_server.store.embedded import EmbeddedMongo

WARMUP = 20
EVENT_DEADLINE_S = 10.0


class Http:
    """One keep-alive HTTP/1.1 connection (plain or TLS), reading fixed-length and chunked bodies."""

    def __init__(self, port: int, context: ssl.SSLContext | None) -> None:
        self.port = port
        self.context = context
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> Http:
        """Connect (and handshake)."""
        self.reader, self.writer = await asyncio.open_connection(
            "127.0.0.1", self.port, ssl=self.context, server_hostname="localhost" if self.context else None
        )
        return self

    async def send_head(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> None:
        """Write a request."""
        assert self.writer is not None
        lines = [f"{method} {path} HTTP/1.1", "Host: localhost", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        await self.writer.drain()

    async def read_head(self) -> tuple[int, dict[str, str]]:
        """Read a response's status and headers."""
        assert self.reader is not None
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    async def read_body(self, headers: dict[str, str]) -> bytes:
        """Read a whole response body."""
        assert self.reader is not None
        if "content-length" in headers:
            return await self.reader.readexactly(int(headers["content-length"]))
        body = b""
        async for chunk in self.chunks():
            body += chunk
        return body

    async def chunks(self) -> Any:
        """Yield the chunks of a chunked body as they come."""
        assert self.reader is not None
        while True:
            size = int((await self.reader.readline()).split(b";")[0], 16)
            if size == 0:
                await self.reader.readline()
                return
            data = await self.reader.readexactly(size)
            await self.reader.readexactly(2)
            yield data

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
        """Send a request and read its whole answer."""
        await self.send_head(method, path, headers, body)
        status, response_headers = await self.read_head()
        return status, await self.read_body(response_headers)


class Route:
    """One way to the API: a sender's connection and a recipient's stream, and what arrived."""

    def __init__(self, name: str, port: int, context: ssl.SSLContext | None, team: Team, sender: str, to: str):
        self.name, self.port, self.context, self.team = name, port, context, team
        self.sender, self.to = sender, to
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self.latencies: list[float] = []

    async def start(self) -> None:
        """Open the sender's connection and the recipient's stream."""
        self.http = await Http(self.port, self.context).open()
        self.stream = await Http(self.port, self.context).open()
        await self.stream.send_head(
            "GET", "/v1/stream", {"Authorization": f"Bearer {self.team.keys[self.to]}", "Accept": "text/event-stream"}
        )
        status, _ = await self.stream.read_head()
        assert status == 200, f"{self.name}: stream answered {status}"
        self.reader = asyncio.create_task(self._read_events())

    async def _read_events(self) -> None:
        buffer = b""
        async for chunk in self.stream.chunks():
            buffer += chunk
            while b"\n\n" in buffer:
                frame, buffer = buffer.split(b"\n\n", 1)
                data = [line[5:].strip() for line in frame.split(b"\n") if line.startswith(b"data:")]
                if not data:
                    continue
                event = json.loads(b"\n".join(data))
                future = self.waiting.pop(event.get("data", {}).get("id", ""), None)
                if future is not None and not future.done():
                    future.set_result(time.perf_counter())

    async def one(self, record: bool) -> None:
        """Send one message and wait for its event."""
        body = self.team.body(self.to)
        arrived: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[body["id"]] = arrived
        headers = {"Authorization": f"Bearer {self.team.keys[self.sender]}", "Content-Type": "application/json"}
        started = time.perf_counter()
        status, answer = await self.http.request("POST", "/v1/messages", headers, json.dumps(body).encode())
        assert status == 201, f"{self.name}: send answered {status}: {answer[:200]!r}"
        done = await asyncio.wait_for(arrived, EVENT_DEADLINE_S)
        if record:
            self.latencies.append(done - started)


def _summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "p50": statistics.median(ordered) * 1000,
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "mean": statistics.fmean(ordered) * 1000,
    }


async def measure(stack: Stack, messages: int) -> None:
    """Measure both paths, interleaved, and print the figures."""
    team = Team(stack.direct_url("blue"), ["d-send", "d-recv", "p-send", "p-recv"])
    context = ssl.create_default_context(cafile=str(stack.tls.ca))
    context.set_alpn_protocols(["http/1.1"])
    direct = Route("direct", stack.ports["blue"], None, team, "d-send", "d-recv")
    proxy = Route("HAProxy TLS", stack.ports["https"], context, team, "p-send", "p-recv")
    for path in (direct, proxy):
        await path.start()
    for n in range(WARMUP + messages):
        # Alternate which goes first, so neither always follows the other's database write.
        for path in (direct, proxy) if n % 2 == 0 else (proxy, direct):
            await path.one(record=n >= WARMUP)
    figures = {path.name: _summary(path.latencies) for path in (direct, proxy)}
    print(f"push latency, POST -> event read, {messages} messages each, interleaved (ms):")
    for name, summary in figures.items():
        print(f"  {name:12s} p50 {summary['p50']:7.2f}   p99 {summary['p99']:7.2f}   mean {summary['mean']:7.2f}")
    for key in ("p50", "p99", "mean"):
        print(f"  ratio HAProxy TLS / direct, {key}: {figures['HAProxy TLS'][key] / figures['direct'][key]:.2f}x")
    for path in (direct, proxy):
        path.reader.cancel()


def main() -> None:
    """Start the stack, measure, stop."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=300, help="measured messages per path (default 300)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as temp, EmbeddedMongo(Path(temp) / "db") as mongo:
        stack = Stack(Path(temp) / "stack", mongo.uri, "bench_proxy")
        try:
            stack.start()
            asyncio.run(measure(stack, args.messages))
        finally:
            stack.close()


if __name__ == "__main__":
    main()
