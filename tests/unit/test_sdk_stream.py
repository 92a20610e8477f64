"""Unit tests of ``client.stream()``: SSE served by a mocked transport, a fake clock, a stalling socket."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from nexysync import AsyncClient, AuthenticationError, Client, KeyRing, StreamEvent
from nexysync._stream import _SSEDecoder
from nexysync.crypto import new_key

PROJECT = "01JAAAAAAAAAAAAAAAAAAAAAAA"
NOW = "2026-01-01T00:00:00Z"
CONNECTED = b": connected\nretry: 2000\n\n"


def frame(seq: int, type: str = "new_message", **data: Any) -> bytes:
    """Return one SSE event frame as the server writes it."""
    body = {"seq": seq, "type": type, "created_at": NOW, "data": data or {"id": f"m{seq}"}}
    return f"event: {type}\nid: {seq}\ndata: {json.dumps(body)}\n\n".encode()


def dropped(*chunks: bytes) -> Iterator[bytes]:
    """Yield the chunks, then fail as a cut connection does."""
    yield from chunks
    raise httpx.ReadError("connection reset")


async def adropped(*chunks: bytes) -> AsyncIterator[bytes]:
    """Async twin of :func:`dropped`."""
    for chunk in chunks:
        yield chunk
    raise httpx.ReadError("connection reset")


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


class Script:
    """Serve ``/v1/stream`` answers from a list (then 503s) and ``/v1/events`` pages from another."""

    def __init__(self, streams: list[Any], pages: list[dict[str, Any]] | None = None) -> None:
        self.streams = list(streams)
        self.pages = list(pages or [])
        self.requests: list[httpx.Request] = []

    def stream_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == "/v1/stream"]

    def resumed_from(self) -> list[str | None]:
        return [r.headers.get("Last-Event-ID") for r in self.stream_requests()]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/v1/events":
            if request.url.params.get("after") == "999999999999999":
                return httpx.Response(200, json={"data": [], "last_seq": 41, "reset": True})
            if self.pages:
                return httpx.Response(200, json=self.pages.pop(0))
            return httpx.Response(200, json={"data": [], "last_seq": int(request.url.params["after"]), "reset": False})
        if request.url.path == "/v1/stream":
            answer = self.streams.pop(0) if self.streams else 503
            if isinstance(answer, Exception):
                raise answer
            if isinstance(answer, bytes):
                return httpx.Response(200, headers={"Content-Type": "text/event-stream"}, content=answer)
            if isinstance(answer, int):
                return httpx.Response(answer, json={"status": answer, "code": "X", "detail": "no"})
            return httpx.Response(200, headers={"Content-Type": "text/event-stream"}, content=answer)
        return httpx.Response(404)


def make_client(handler: Callable[[httpx.Request], httpx.Response]) -> Client:
    return Client(
        base_url="http://api.test",
        api_key="k",
        key_ring=KeyRing([new_key()]),
        project_id=PROJECT,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        sleep=lambda _: None,
    )


def take(stream: Any, count: int) -> list[StreamEvent]:
    return [next(stream) for _ in range(count)]


def test_a_dropped_stream_resumes_after_the_last_seq_without_duplicates() -> None:
    script = Script(
        [
            dropped(CONNECTED, frame(1), frame(2)),
            dropped(CONNECTED, frame(2), frame(3)),  # the server repeats 2: dropped by the client
            iter([CONNECTED, frame(3), frame(4)]),  # ends cleanly (a stopping server)
            iter([CONNECTED, frame(5)]),
        ]
    )
    clock = FakeClock()
    client = make_client(script)
    with client.stream(last_event_id=0, sleep=clock.sleep, clock=clock, rand=lambda: 0.0) as stream:
        events = take(stream, 5)
        assert stream.last_event_id == 5
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert script.resumed_from() == ["0", "2", "3", "4"]
    # The server's ``retry: 2000`` is the initial delay; each healthy connection resets the backoff.
    assert clock.sleeps == [2.0, 2.0, 2.0]
    assert events[0].type == "new_message" and events[0].data == {"id": "m1"}
    assert events[0].created_at.year == 2026


def test_without_a_position_the_stream_pins_the_current_one_first() -> None:
    script = Script([dropped(CONNECTED), iter([CONNECTED, frame(42)])])
    client = make_client(script)
    with client.stream(sleep=lambda _: None) as stream:
        assert next(stream).seq == 42
    assert script.requests[0].url.path == "/v1/events"
    # Even the first connection resumes from the pinned position, so a drop before any event loses nothing.
    assert script.resumed_from() == ["41", "41"]


def test_a_saved_position_resumes_in_a_new_stream() -> None:
    script = Script([iter([CONNECTED, frame(8), frame(9)]), iter([CONNECTED, frame(10)])])
    client = make_client(script)
    with client.stream(last_event_id=7, sleep=lambda _: None) as first:
        take(first, 1)
        saved = first.last_event_id
    with client.stream(last_event_id=saved, sleep=lambda _: None) as second:
        assert next(second).seq == 10
    assert script.resumed_from() == ["7", "8"]


def test_a_reset_event_is_passed_through_and_moves_the_position() -> None:
    reset = frame(3, "reset", oldest_seq=None, latest_seq=3)
    script = Script([iter([CONNECTED, reset, frame(4)]), iter([CONNECTED, frame(5)])])
    client = make_client(script)
    with client.stream(last_event_id=90, sleep=lambda _: None) as stream:
        events = take(stream, 3)
    # An id from the future gets a reset to an earlier seq: it must not be dropped as a duplicate.
    assert [(e.type, e.seq) for e in events] == [("reset", 3), ("new_message", 4), ("new_message", 5)]
    assert script.resumed_from() == ["90", "4"]
    with pytest.raises(ValueError, match="carries no message"):
        events[0].message()


def test_connection_failures_back_off_exponentially_up_to_eight_seconds() -> None:
    failures: list[Any] = [httpx.ConnectError("refused")] * 7
    script = Script([*failures, iter([CONNECTED, frame(1)])])
    clock = FakeClock()
    client = make_client(script)
    with client.stream(last_event_id=0, fallback_after=100, sleep=clock.sleep, clock=clock, rand=lambda: 0.0) as s:
        assert next(s).seq == 1
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_backoff_is_jittered_by_up_to_a_quarter() -> None:
    script = Script([httpx.ConnectError("refused"), iter([CONNECTED, frame(1)])])
    clock = FakeClock()
    client = make_client(script)
    with client.stream(last_event_id=0, sleep=clock.sleep, clock=clock, rand=lambda: 1.0) as stream:
        next(stream)
    assert clock.sleeps == [0.375]


def test_the_watchdog_is_the_read_timeout_of_the_stream() -> None:
    script = Script([dropped(CONNECTED), iter([CONNECTED, frame(1)])])
    client = make_client(script)
    with client.stream(last_event_id=0, watchdog_s=7.5, sleep=lambda _: None) as stream:
        next(stream)
    for request in script.stream_requests():
        assert request.extensions["timeout"]["read"] == 7.5


def test_a_read_timeout_reconnects_from_the_last_seq() -> None:
    def stalls() -> Iterator[bytes]:
        yield CONNECTED
        yield frame(1)
        raise httpx.ReadTimeout("nothing for 60 s")

    script = Script([stalls(), iter([CONNECTED, frame(2)])])
    client = make_client(script)
    with client.stream(last_event_id=0, sleep=lambda _: None) as stream:
        assert [e.seq for e in take(stream, 2)] == [1, 2]
    assert script.resumed_from() == ["0", "1"]


class StallingServer:
    """A raw HTTP server: the first stream sends ``: connected`` and then nothing; later ones an event."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.heads: list[str] = []
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.heads.append("")
            threading.Thread(target=self._answer, args=(conn, len(self.heads) - 1), daemon=True).start()

    def _answer(self, conn: socket.socket, index: int) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(4096)
            self.heads[index] = head.decode()
            status = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
            if index == 0:
                conn.sendall(status + CONNECTED)
                self.release.wait(30)  # stall: no heartbeat, no close
                return
            conn.sendall(status + CONNECTED + frame(7))

    def close(self) -> None:
        self.release.set()
        self.sock.close()


@pytest.fixture
def stalling_server() -> Iterator[StallingServer]:
    server = StallingServer()
    yield server
    server.close()


def test_a_silent_connection_is_dropped_by_the_watchdog(stalling_server: StallingServer) -> None:
    client = Client(base_url=f"http://127.0.0.1:{stalling_server.port}", api_key="k", project_id=PROJECT)
    started = time.monotonic()
    with client.stream(last_event_id=6, watchdog_s=0.3, sleep=lambda _: None) as stream:
        event = next(stream)
    assert event.seq == 7
    assert 0.25 < time.monotonic() - started < 10
    assert len(stalling_server.heads) == 2
    assert "last-event-id: 6" in stalling_server.heads[1].lower()
    client.close()


async def test_the_async_watchdog_drops_a_silent_connection(stalling_server: StallingServer) -> None:
    client = AsyncClient(base_url=f"http://127.0.0.1:{stalling_server.port}", api_key="k", project_id=PROJECT)

    async def noop(_: float) -> None:
        return None

    async with client.stream(last_event_id=6, watchdog_s=0.3, sleep=noop) as stream:
        event = await asyncio.wait_for(stream.__anext__(), 10)
    assert event.seq == 7
    assert "last-event-id: 6" in stalling_server.heads[1].lower()
    await client.aclose()


def test_polls_the_event_log_when_the_stream_cannot_connect_then_retries_the_stream() -> None:
    pages = [
        {"data": [json.loads(frame(6)[frame(6).index(b"data: ") + 6 :])], "last_seq": 6, "reset": False},
        {"data": [], "last_seq": 9, "reset": False},  # events for others: the position still moves
    ]
    script = Script([503, httpx.ConnectError("refused"), 502, iter([CONNECTED, frame(10)])], pages)
    clock = FakeClock()
    client = make_client(script)
    options: dict[str, Any] = {"poll_interval_s": 1.0, "stream_retry_s": 5.0, "fallback_after": 3}
    with client.stream(last_event_id=5, sleep=clock.sleep, clock=clock, rand=lambda: 0.0, **options) as stream:
        first = next(stream)
        assert stream.mode == "polling"
        second = next(stream)
        assert stream.mode == "stream"
    assert [first.seq, second.seq] == [6, 10]
    polls = [r.url.params["after"] for r in script.requests if r.url.path == "/v1/events"]
    assert polls[:3] == ["5", "6", "9"]
    assert script.resumed_from() == ["5", "5", "5", "9"]
    assert script.pages == []


def test_polling_passes_a_reset_on() -> None:
    pages = [{"data": [], "last_seq": 50, "reset": True}]
    script = Script([503, 503, 503, iter([CONNECTED, frame(51)])], pages)
    clock = FakeClock()
    client = make_client(script)
    with client.stream(last_event_id=5, sleep=clock.sleep, clock=clock, stream_retry_s=1.0) as stream:
        events = take(stream, 2)
    assert [(e.type, e.seq) for e in events] == [("reset", 50), ("new_message", 51)]


def test_a_refused_key_raises_instead_of_retrying() -> None:
    script = Script([401])
    client = make_client(script)
    with client.stream(last_event_id=0) as stream, pytest.raises(AuthenticationError):
        next(stream)


def test_close_ends_the_iteration() -> None:
    script = Script([iter([CONNECTED, frame(1), frame(2)])])
    client = make_client(script)
    stream = client.stream(last_event_id=0)
    assert next(stream).seq == 1
    stream.close()
    with pytest.raises(StopIteration):
        next(stream)


def test_the_decoder_reads_multiline_data_comments_and_the_retry_hint() -> None:
    decoder = _SSEDecoder()
    lines = [": heartbeat", "", "retry: 1500", "event: kv_update", "id: 3", "data: {", 'data: "a": 1}', ""]
    frames = [f for line in lines if (f := decoder.feed(line)) is not None]
    assert frames == [("kv_update", "3", '{\n"a": 1}')]
    assert decoder.retry_ms == 1500


def test_the_decoder_keeps_the_last_event_id_until_a_new_one_arrives() -> None:
    # The SSE standard's "last event ID buffer": a frame without an id: line keeps the last one;
    # an id with a NUL is ignored; an empty id: line clears it.
    decoder = _SSEDecoder()
    lines = ["id: 7", "data: a", "", "data: b", "", "id: 8\0x", "data: c", "", "id:", "data: d", ""]
    frames = [f for line in lines if (f := decoder.feed(line)) is not None]
    assert [frame[1] for frame in frames] == ["7", "7", "7", ""]


def test_a_stream_with_a_timeout_raises_timeout_error_and_asks_the_server_to_end_in_time() -> None:
    script = Script([httpx.ConnectError("refused")] * 3)
    clock = FakeClock()
    client = make_client(script)
    stream = client.stream(timeout=3.0, sleep=clock.sleep, clock=clock, poll_interval_s=1.0)
    with pytest.raises(TimeoutError):
        next(stream)
    assert clock.now == pytest.approx(1003.0)
    assert float(script.stream_requests()[0].url.params["max_duration_s"]) == pytest.approx(3.0)


async def test_the_async_stream_resumes_after_a_drop_without_duplicates() -> None:
    streams: list[Any] = [adropped(CONNECTED, frame(1), frame(2)), adropped(CONNECTED, frame(2), frame(3))]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/stream":
            seen.append(request.headers.get("Last-Event-ID"))
            return httpx.Response(200, content=streams.pop(0)) if streams else httpx.Response(503)
        return httpx.Response(404)

    seen: list[str | None] = []
    clock = FakeClock()
    client = AsyncClient(
        base_url="http://api.test",
        api_key="k",
        project_id=PROJECT,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    )
    async with client.stream(last_event_id=0, sleep=clock.asleep, clock=clock, rand=lambda: 0.0) as stream:
        events = [await stream.__anext__() for _ in range(3)]
    assert [e.seq for e in events] == [1, 2, 3]
    assert seen == ["0", "2"]
    assert clock.sleeps == [2.0]


def make_async_client(handler: Callable[[httpx.Request], httpx.Response]) -> AsyncClient:
    async def noop(_: float) -> None:
        return None

    return AsyncClient(
        base_url="http://api.test",
        api_key="k",
        project_id=PROJECT,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        sleep=noop,
    )


async def test_the_async_stream_falls_back_to_polling_and_back() -> None:
    event6 = {"seq": 6, "type": "kv_update", "created_at": NOW, "data": {"key": "k"}}
    pages = [{"data": [event6], "last_seq": 7, "reset": False}]
    script = Script([503, 503, httpx.ConnectError("refused"), CONNECTED + frame(8)], pages)
    clock = FakeClock()
    client = make_async_client(script)
    options: dict[str, Any] = {"poll_interval_s": 1.0, "stream_retry_s": 3.0, "rand": lambda: 0.0}
    async with client.stream(last_event_id=5, sleep=clock.asleep, clock=clock, **options) as stream:
        first = await stream.__anext__()
        assert stream.mode == "polling"
        second = await stream.__anext__()
        assert stream.mode == "stream"
        assert stream.last_event_id == 8
    assert [(first.type, first.seq), (second.type, second.seq)] == [("kv_update", 6), ("new_message", 8)]
    with pytest.raises(ValueError, match="carries no message"):
        await first.message()
    assert script.resumed_from() == ["5", "5", "5", "7"]


async def test_the_async_stream_pins_its_position_and_raises_on_a_refused_key() -> None:
    script = Script([401])
    client = make_async_client(script)
    stream = client.stream()
    with pytest.raises(AuthenticationError):
        await stream.__anext__()
    assert stream.last_event_id == 41
    assert script.resumed_from() == ["41"]


def test_wait_gives_up_at_its_deadline_with_timeout_error() -> None:
    script = Script([httpx.ConnectError("refused")] * 3)  # then 503s: it ends up polling
    clock = FakeClock()
    client = make_client(script)
    with pytest.raises(TimeoutError):
        client.messages.wait(from_="alice", timeout=5.0, sleep=clock.sleep, clock=clock, poll_interval_s=2.0)
    assert clock.now == pytest.approx(1005.0)
    # The server is asked to end the stream at the deadline, so a blocked read cannot outlast it.
    assert float(script.stream_requests()[0].url.params["max_duration_s"]) == pytest.approx(5.0)
    assert any(r.url.path == "/v1/events" and r.url.params["after"] == "41" for r in script.requests)


def test_wait_returns_the_first_matching_message_from_the_stream() -> None:
    ring = KeyRing([new_key()])
    stored: dict[str, Any] = {}

    def message_json(message_id: str) -> dict[str, Any]:
        def seal(field: str) -> str:
            return ring.encrypt(b"ok", project_id=PROJECT, kind="message", record_id=message_id, field=field)

        return {
            "id": message_id,
            "project_id": PROJECT,
            "from": "alice",
            "to": "bob",
            "broadcast": False,
            "type": "response",
            "priority": "normal",
            "reply_to": "01JCCCCCCCCCCCCCCCCCCCCCCC",
            "topic": seal("topic"),
            "payload": seal("payload"),
            "metadata": None,
            "status": "sent",
            "pinned": False,
            "reactions": [],
            "created_at": NOW,
            "expires_at": NOW,
        }

    wanted = "01JDDDDDDDDDDDDDDDDDDDDDDD"
    stored[wanted] = message_json(wanted)
    other = frame(42, id="01JEEEEEEEEEEEEEEEEEEEEEEE", **{"from": "carol", "reply_to": None})
    match = frame(43, id=wanted, **{"from": "alice", "reply_to": None})
    script = Script([iter([CONNECTED, other, match])])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == f"/v1/messages/{wanted}":
            return httpx.Response(200, json=stored[wanted])
        return script(request)

    client = Client(
        base_url="http://api.test",
        api_key="k",
        key_ring=ring,
        project_id=PROJECT,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    got = client.messages.wait(from_="alice", timeout=5)
    assert (got.id, got.payload) == (wanted, "ok")
