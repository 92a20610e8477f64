"""The HTTP protocol's guards: the per-worker connection cap (503, eviction of slow clients) and the header deadline."""

from __future__ import annotations

import asyncio
import json
import resource
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import uvicorn
from metric_samples import sample

from nexysync_server import connections
from nexysync_server.connections import guarded_protocol

REQUEST = b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n"


Receive = Callable[[], Awaitable[Any]]
Send = Callable[..., Awaitable[None]]


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """``/hold`` keeps its response open (a stream); anything else answers 200 ``ok``."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    if scope["path"] == "/hold":
        await send({"type": "http.response.body", "body": b"open\n", "more_body": True})
        await asyncio.sleep(30)
    await send({"type": "http.response.body", "body": b"ok"})


class Running:
    def __init__(self, port: int) -> None:
        self.port = port

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def get(self, path: str = "/x") -> tuple[int, dict[str, str], bytes]:
        """One whole request on a fresh connection; return status, headers and body (until close or length)."""
        reader, writer = await self.open()
        writer.write(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        raw = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return parse(raw)


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(max_connections: int, header_timeout_s: float, overflow: int = 2) -> Running:
        protocol = guarded_protocol(max_connections, header_timeout_s)
        protocol.overflow = overflow
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(app, http=protocol, log_level="critical", lifespan="off")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        servers.append((server, task))
        return Running(sock.getsockname()[1])

    yield start
    for server, task in servers:
        server.should_exit = True
        server.force_exit = True
        await asyncio.wait_for(task, 10)


async def test_headers_that_never_finish_get_408_problem_json_and_the_connection_closes(serve: Any) -> None:
    counted = sample("nexysync_connections_refused_total", reason="header_timeout")
    running = await serve(max_connections=10, header_timeout_s=0.5)
    reader, writer = await running.open()
    writer.write(b"GET /x HTTP/1.1\r\nHost: t\r\n")
    started = time.monotonic()
    raw = await asyncio.wait_for(reader.read(), 5)
    status, headers, body = parse(raw)
    assert status == 408
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["code"] == "REQUEST_TIMEOUT"
    assert 0.4 < time.monotonic() - started < 2
    assert sample("nexysync_connections_refused_total", reason="header_timeout") == counted + 1


async def test_a_trickle_of_header_bytes_does_not_extend_the_deadline(serve: Any) -> None:
    running = await serve(max_connections=10, header_timeout_s=1.0)
    reader, writer = await running.open()
    started = time.monotonic()
    answer = asyncio.create_task(reader.read(65536))
    for byte in b"GET /x HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 100:
        if answer.done():
            break
        writer.write(bytes([byte]))
        await asyncio.sleep(0.1)
    raw = await asyncio.wait_for(answer, 5)
    assert parse(raw)[0] == 408
    assert time.monotonic() - started < 2.5


async def test_a_connection_that_sends_nothing_is_cut_too(serve: Any) -> None:
    running = await serve(max_connections=10, header_timeout_s=0.3)
    reader, _writer = await running.open()
    status, _headers, _body = parse(await asyncio.wait_for(reader.read(), 5))
    assert status == 408


async def test_beyond_the_cap_a_request_gets_503_server_busy_with_retry_after(serve: Any) -> None:
    running = await serve(max_connections=3, header_timeout_s=5)
    held = []
    for _ in range(3):
        reader, writer = await running.open()
        writer.write(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
        assert b"open" in await asyncio.wait_for(reader.readuntil(b"open\n"), 5)
        held.append(writer)
    counted = sample("nexysync_connections_refused_total", reason="busy")
    status, headers, body = await running.get()
    assert status == 503
    assert sample("nexysync_connections_refused_total", reason="busy") == counted + 1
    assert headers["retry-after"] == str(connections.BUSY_RETRY_AFTER_S)
    problem = json.loads(body)
    assert problem["code"] == "SERVER_BUSY" and problem["status"] == 503
    held.pop().close()
    await asyncio.sleep(0.2)
    assert (await running.get())[0] == 200


async def slow_clients(running: Running, count: int) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """Open ``count`` connections that send half a request line and stop (writers kept: a lost one closes)."""
    slow = []
    for _ in range(count):
        reader, writer = await running.open()
        writer.write(b"GET /x HTTP/1.1\r\n")
        slow.append((reader, writer))
    await asyncio.sleep(0.1)
    return slow


async def hold(running: Running) -> asyncio.StreamWriter:
    """Open a stream (a response that stays open) and return its writer once it has started."""
    reader, writer = await running.open()
    writer.write(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
    await asyncio.wait_for(reader.readuntil(b"open\n"), 5)
    return writer


async def test_when_full_of_slow_clients_whole_requests_still_get_in(serve: Any) -> None:
    running = await serve(max_connections=4, header_timeout_s=30)
    slow = await slow_clients(running, 4)
    await asyncio.sleep(connections.EVICT_AFTER_S)
    streams = [await hold(running) for _ in range(3)]  # each takes the place of the slowest
    cut = [parse(await asyncio.wait_for(reader.read(), 5))[0] for reader, _writer in slow[:3]]
    assert cut == [408, 408, 408]
    assert not slow[3][0].at_eof()
    assert len(streams) == 3


async def test_a_whole_request_makes_room_through_the_overflow_band_too(serve: Any) -> None:
    running = await serve(max_connections=4, header_timeout_s=30, overflow=2)
    slow = await slow_clients(running, 6)  # the cap and the whole band
    await asyncio.sleep(connections.EVICT_AFTER_S)
    assert (await running.get())[0] == 200
    cut = [parse(await asyncio.wait_for(reader.read(), 5))[0] for reader, _writer in slow[:3]]
    assert cut == [408, 408, 408]
    assert not any(reader.at_eof() for reader, _writer in slow[3:])


async def test_young_slow_clients_are_not_evicted_and_the_overflow_is_closed_unread(serve: Any) -> None:
    running = await serve(max_connections=2, header_timeout_s=30, overflow=1)
    slow = await slow_clients(running, 3)  # the cap, and one more in the overflow band
    reader, writer = await running.open()
    writer.write(REQUEST)
    assert await asyncio.wait_for(reader.read(), 5) == b""  # aborted: no answer, no descriptor held
    assert not any(r.at_eof() for r, _w in slow)
    # The one in the overflow band that completes its request is answered 503, not served.
    slow[2][1].write(b"Host: t\r\n\r\n")
    assert parse(await asyncio.wait_for(slow[2][0].read(), 5))[0] == 503


def test_the_cap_is_lowered_to_fit_the_descriptor_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connections.resource, "getrlimit", lambda _which: (1024, 4096))
    assert connections.connection_cap(10_000) == 1024 - connections.RESERVED_DESCRIPTORS - connections.OVERFLOW
    assert connections.connection_cap(100) == 100
    monkeypatch.setattr(connections.resource, "getrlimit", lambda _which: (resource.RLIM_INFINITY,) * 2)
    assert connections.connection_cap(10_000) == 10_000


def test_each_protocol_class_has_its_own_registry() -> None:
    first, second = guarded_protocol(10, 1.0), guarded_protocol(20, 2.0)
    assert first.waiting is not second.waiting
    assert (first.max_connections, second.header_timeout_s) == (10, 2.0)
