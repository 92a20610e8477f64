"""``client.stream()``: the caller's events over SSE, resuming, watched, and falling back to polling.

The stream never loses or repeats an event: it remembers the ``seq`` of the last event received
(:attr:`Stream.last_event_id`), sends it as ``Last-Event-ID`` on every reconnection, and drops any
event at or before it. Reconnections back off exponentially (0.5 s to 8 s, jittered; the server's
``retry:`` hint replaces the 0.5 s), a connection on which nothing at all (not even a heartbeat)
arrives for ``watchdog_s`` is dropped and reopened, and when the stream cannot connect
``fallback_after`` times in a row the events are polled from ``GET /v1/events`` until the stream is
tried again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from nexysync._errors import APIConnectionError, APIError, error_from_response
from nexysync._operations import decrypt_record
from nexysync._transport import INITIAL_RETRY_DELAY, MAX_RETRY_DELAY, should_retry
from nexysync.types import Message

if TYPE_CHECKING:
    from nexysync._client import AsyncClient, Client
    from nexysync.crypto import KeyRing
    from nexysync_generated.models import EventPage

__all__ = [
    "DEFAULT_FALLBACK_AFTER",
    "DEFAULT_POLL_INTERVAL_S",
    "DEFAULT_STREAM_RETRY_S",
    "DEFAULT_WATCHDOG_S",
    "AsyncStream",
    "AsyncStreamEvent",
    "Stream",
    "StreamEvent",
]

DEFAULT_WATCHDOG_S = 60.0
DEFAULT_POLL_INTERVAL_S = 2.0
DEFAULT_FALLBACK_AFTER = 3
DEFAULT_STREAM_RETRY_S = 30.0
CONNECT_TIMEOUT_S = 10.0
#: ``after`` beyond any real ``seq``: the events endpoint then answers with the current position.
_FAR_FUTURE_SEQ = 999_999_999_999_999
_POLL_LIMIT = 200


def _retryable(error: APIError) -> bool:
    """Tell whether a failed request may succeed later, by the SDK's one retry policy."""
    if isinstance(error, APIConnectionError):
        return True
    return error.status is not None and should_retry(error.status, error.code)


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.now(UTC)


@dataclass(frozen=True)
class _EventBase:
    """Fields of an event of the stream (see the spec's ``Event``).

    Attributes:
        seq: Position in the project's event log (the value to resume after).
        type: ``new_message``, ``message_acked``, ``message_receipt``, ``presence_change``, ``kv_update``,
            ``new_ref``, ``new_file`` or ``reset``
            (a ``reset`` says events were lost: re-list the inbox).
        created_at: When the event happened.
        data: The event's routing data (never encrypted content).
    """

    seq: int
    type: str
    created_at: datetime
    data: dict[str, Any]

    @classmethod
    def _from_json(cls, raw: dict[str, Any], client: Any) -> Any:
        return cls(
            seq=int(raw["seq"]),
            type=str(raw["type"]),
            created_at=_parse_time(raw.get("created_at")),
            data=dict(raw.get("data") or {}),
            _client=client,  # type: ignore[call-arg]
        )

    def _message_id(self) -> str:
        if self.type != "new_message":
            raise ValueError(f"a {self.type} event carries no message")
        return str(self.data["id"])

    def carried(self, key_ring: KeyRing | None) -> Message | None:
        """Return the message a ``new_message`` event carries whole, decrypted; None when it must be fetched.

        The server puts a small message (its sealed content up to 8 KiB by default) in its event;
        a larger one, or an event from an older server, has only the routing.

        Raises:
            ValueError: the event is not a ``new_message``.
            DecryptionError: the content does not decrypt with ``key_ring``.
        """
        self._message_id()
        if "payload" not in self.data or key_ring is None:
            return None
        plain = decrypt_record(key_ring, str(self.data["project_id"]), "Message", self.data)
        return Message.model_validate(plain)


def _as_read(message: Message) -> Message:
    return message.model_copy(update={"status": type(message.status)("read")})


@dataclass(frozen=True)
class StreamEvent(_EventBase):
    """An event from :meth:`Client.stream`; ``message()`` fetches the message it announces."""

    _client: Client | None = field(default=None, repr=False, compare=False)

    def message(self, *, mark_read: bool = True) -> Message:
        """Return the message of a ``new_message`` event, decrypted: the one it carries, else fetched.

        Marking it read is then ``POST /v1/messages/read`` (a carried message) or the fetch itself.

        Args:
            mark_read: Mark it read for the caller; a consumer that only caches or shows it to
                someone else (a push cache, a terminal tail) passes False so it stays unread.

        Raises:
            ValueError: the event is not a ``new_message``.
            APIError: the fetch failed.
        """
        message_id = self._message_id()
        if self._client is None:
            raise ValueError("this event is not bound to a client")
        message = self.carried(self._client.key_ring)
        if message is None:
            return self._client.messages.get(message_id, mark_read=mark_read)
        if not mark_read:
            return message
        self._client.messages.mark_read([message_id])
        return _as_read(message)


@dataclass(frozen=True)
class AsyncStreamEvent(_EventBase):
    """An event from :meth:`AsyncClient.stream`; ``await message()`` fetches its message."""

    _client: AsyncClient | None = field(default=None, repr=False, compare=False)

    async def message(self, *, mark_read: bool = True) -> Message:
        """Fetch and decrypt the message of a ``new_message`` event (see :meth:`StreamEvent.message`).

        Raises:
            ValueError: the event is not a ``new_message``.
            APIError: the fetch failed.
        """
        message_id = self._message_id()
        if self._client is None:
            raise ValueError("this event is not bound to a client")
        message = self.carried(self._client.key_ring)
        if message is None:
            return await self._client.messages.get(message_id, mark_read=mark_read)
        if not mark_read:
            return message
        await self._client.messages.mark_read([message_id])
        return _as_read(message)


class _SSEDecoder:
    """Turn SSE lines into ``(event type, id, data)`` frames; remembers the ``retry:`` hint.

    As the SSE standard says, the id is the *last event id*: it stays what the last ``id:`` line
    set (across frames) until another sets it; only the event type and data are per frame.
    """

    def __init__(self) -> None:
        self.retry_ms: int | None = None
        self._event = ""
        self._id: str | None = None
        self._data: list[str] = []

    def feed(self, line: str) -> tuple[str, str | None, str] | None:
        """Take one line; return a complete frame with data, else None (comments give None)."""
        if line == "":
            frame = (self._event or "message", self._id, "\n".join(self._data)) if self._data else None
            self._event, self._data = "", []
            return frame
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None


class _Core:
    """Configuration and state shared by the sync and async streams."""

    def __init__(
        self,
        *,
        last_event_id: int | str | None,
        watchdog_s: float,
        poll_interval_s: float,
        fallback_after: int,
        stream_retry_s: float,
        timeout: float | None,
        clock: Callable[[], float],
        rand: Callable[[], float],
    ) -> None:
        self._last = None if last_event_id is None else int(last_event_id)
        self.watchdog_s = watchdog_s
        self.poll_interval_s = poll_interval_s
        self.fallback_after = fallback_after
        self.stream_retry_s = stream_retry_s
        self._clock = clock
        self._rand = rand
        self._retry_hint_s: float | None = None
        self._failures = 0
        self._connect_failures = 0
        self._poll_until: float | None = None
        self._closed = False
        #: The ``clock()`` value past which iterating raises TimeoutError (from ``timeout``).
        self._deadline: float | None = None if timeout is None else clock() + timeout
        #: How the events arrive now: ``"stream"`` or ``"polling"``.
        self.mode = "stream"

    @property
    def last_event_id(self) -> int | None:
        """The ``seq`` of the last event received: pass it as ``last_event_id`` to resume elsewhere."""
        return self._last

    def _delay(self) -> float:
        base = self._retry_hint_s if self._retry_hint_s is not None else INITIAL_RETRY_DELAY
        delay = min(base * 2.0**self._failures, max(MAX_RETRY_DELAY, base))
        self._failures += 1
        return delay * (1 - 0.25 * self._rand())

    def _bounded(self, delay: float) -> float:
        if self._deadline is not None:
            return max(0.0, min(delay, self._deadline - self._clock()))
        return delay

    def _check_deadline(self) -> None:
        if self._deadline is not None and self._clock() >= self._deadline:
            raise TimeoutError("no matching event before the deadline")

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self._last is not None:
            headers["Last-Event-ID"] = str(self._last)
        return headers

    def _params(self) -> dict[str, str]:
        if self._deadline is None:
            return {}
        # The server ends the stream at the deadline, so a blocked read returns in time.
        return {"max_duration_s": f"{max(0.1, self._deadline - self._clock()):.3f}"}

    def _timeout(self) -> httpx.Timeout:
        read = self.watchdog_s
        if self._deadline is not None:
            read = max(0.05, min(read, self._deadline - self._clock() + 1.0))
        return httpx.Timeout(CONNECT_TIMEOUT_S, read=read)

    def _connected(self, response: httpx.Response) -> bool:
        """Judge the stream's answer (an error's body already read): True when open; False when worth retrying.

        Raises:
            APIStatusError: a refusal no retry can cure (a bad key, ...).
        """
        if response.status_code == 200:
            self._connect_failures = 0
            self._poll_until = None
            self.mode = "stream"
            return True
        error = error_from_response(response)
        if should_retry(error.status, error.code):
            return False
        raise error

    def _connect_failed(self) -> None:
        self._connect_failures += 1
        if self._connect_failures >= self.fallback_after:
            self.mode = "polling"
            self._poll_until = self._clock() + self.stream_retry_s

    def _polling_now(self) -> bool:
        return self._poll_until is not None and self._clock() < self._poll_until

    def _accept(self, raw: dict[str, Any]) -> bool:
        """Tell whether an event is new (and move the position); a reset always passes."""
        seq = int(raw["seq"])
        if raw.get("type") == "reset":
            self._last = seq
            return True
        if self._last is not None and seq <= self._last:
            return False
        self._last = seq
        return True

    def _frame_event(self, frame: tuple[str, str | None, str]) -> dict[str, Any] | None:
        _, event_id, data = frame
        try:
            raw = json.loads(data)
        except ValueError:
            return None
        if not isinstance(raw, dict) or "seq" not in raw:
            if event_id is None or not event_id.isdigit() or not isinstance(raw, dict):
                return None
            raw = {"seq": int(event_id), "type": frame[0], "created_at": None, "data": raw}
        return raw if self._accept(raw) else None

    def _pin(self, page: EventPage) -> None:
        """Take the position from an ``after=<far future>`` page, if none was known."""
        if self._last is None:
            self._last = page.data[0].seq - 1 if page.data else page.last_seq

    def _page_events(self, page: EventPage, after: int) -> list[dict[str, Any]]:
        """Turn a polled page into new events (a synthetic ``reset`` first when events expired)."""
        raws: list[dict[str, Any]] = []
        if page.reset:
            seq = min(page.data[0].seq - 1, page.last_seq) if page.data else page.last_seq
            now = datetime.now(UTC).isoformat()
            raws.append(
                {"seq": seq, "type": "reset", "created_at": now, "data": {"oldest_seq": None, "latest_seq": seq}}
            )
        raws.extend(event.model_dump(mode="json") for event in page.data)
        accepted = [raw for raw in raws if self._accept(raw)]
        if self._last is None or page.last_seq > self._last:
            self._last = max(page.last_seq, after)
        return accepted


class Stream(_Core):
    """The caller's events, as a blocking iterator (from :meth:`Client.stream`).

    Iterate it (``for event in client.stream(): ...``); it reconnects by itself and stops only
    when closed (``close()``, or leaving its ``with`` block) or on a non-retryable error.

    Args:
        client: The client whose credentials and connection pool it uses.
        last_event_id: Resume after this ``seq`` (e.g. a saved :attr:`last_event_id`); by default
            from now.
        watchdog_s: Reconnect when nothing (not even a heartbeat) arrived for this long.
        poll_interval_s: Time between polls of ``GET /v1/events`` in the fallback.
        fallback_after: Failed stream connections in a row before falling back to polling.
        stream_retry_s: How long to poll before trying the stream again.
        timeout: Seconds from now after which iterating raises :class:`TimeoutError` (the server
            is asked to end the stream then, so a blocked read returns in time); none by default.
        sleep: How to wait between attempts (injectable for tests).
        clock: A monotonic clock (injectable for tests).
        rand: Jitter source in ``[0, 1)``.
    """

    def __init__(
        self,
        client: Client,
        *,
        last_event_id: int | str | None = None,
        watchdog_s: float = DEFAULT_WATCHDOG_S,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        fallback_after: int = DEFAULT_FALLBACK_AFTER,
        stream_retry_s: float = DEFAULT_STREAM_RETRY_S,
        timeout: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        super().__init__(
            last_event_id=last_event_id,
            watchdog_s=watchdog_s,
            poll_interval_s=poll_interval_s,
            fallback_after=fallback_after,
            stream_retry_s=stream_retry_s,
            timeout=timeout,
            clock=clock,
            rand=rand,
        )
        self._client = client
        self._sleep = sleep
        self._response: httpx.Response | None = None
        self._opened = False
        self._open_failed = False
        self._iterator: Iterator[StreamEvent] | None = None

    def open(self) -> Stream:
        """Fix the position now (so nothing sent from here on is missed) and try to connect once.

        Iterating opens the stream too; call this to be sure of the position before acting (as
        ``messages.wait`` does). A failed connection is left for the iteration to retry.

        Raises:
            APIStatusError: the server refused the stream (bad key, ...).
        """
        if self._opened:
            return self
        self._opened = True
        if self._last is None:
            try:
                self._pin(self._client.events.list(after=_FAR_FUTURE_SEQ, limit=1))
            except APIError as error:
                if not _retryable(error):
                    raise
        self._response = self._connect()
        # A failed first attempt counts (and backs off) when the iteration starts.
        self._open_failed = self._response is None
        return self

    def _connect(self) -> httpx.Response | None:
        try:
            response = self._client.open_stream(
                "/v1/stream", params=self._params(), headers=self._headers(), timeout=self._timeout()
            )
        except APIConnectionError:
            return None
        if response.status_code == 200:
            self._connected(response)
            return response
        try:
            response.read()
            self._connected(response)
        except httpx.TransportError:
            pass
        finally:
            response.close()
        return None

    def _read(self, response: httpx.Response) -> Iterator[StreamEvent]:
        decoder = _SSEDecoder()
        started = self._clock()
        try:
            for line in response.iter_lines():
                if self._closed:
                    return
                frame = decoder.feed(line)
                if decoder.retry_ms is not None:
                    self._retry_hint_s = decoder.retry_ms / 1000
                if frame is not None and (raw := self._frame_event(frame)) is not None:
                    self._failures = 0
                    yield StreamEvent._from_json(raw, self._client)
                self._check_deadline()
        except httpx.TransportError:
            # A dropped connection, or the watchdog (read timeout): reconnect.
            pass
        finally:
            response.close()
        if self._clock() - started > MAX_RETRY_DELAY:
            self._failures = 0

    def _poll(self) -> Iterator[StreamEvent]:
        after = self._last
        try:
            if after is None:
                self._pin(self._client.events.list(after=_FAR_FUTURE_SEQ, limit=1))
                after = self._last
            page = self._client.events.list(after=after, limit=_POLL_LIMIT)
        except APIError as error:
            if not _retryable(error):
                raise
            self._sleep(self._bounded(self._delay()))
            return
        self._failures = 0
        for raw in self._page_events(page, after or 0):
            yield StreamEvent._from_json(raw, self._client)
        if not page.data and (after is None or page.last_seq <= after):
            self._sleep(self._bounded(self.poll_interval_s))

    def _run(self) -> Iterator[StreamEvent]:
        self.open()
        while not self._closed:
            self._check_deadline()
            if self._polling_now():
                yield from self._poll()
                continue
            response, self._response = self._response, None
            if response is None and not self._open_failed:
                response = self._connect()
            self._open_failed = False
            if response is None:
                self._connect_failed()
                if not self._polling_now():
                    self._sleep(self._bounded(self._delay()))
                continue
            self._response = response
            yield from self._read(response)
            self._response = None
            if self._closed:
                return
            self._check_deadline()
            self._sleep(self._bounded(self._delay()))

    def __iter__(self) -> Iterator[StreamEvent]:
        return self

    def __next__(self) -> StreamEvent:
        if self._iterator is None:
            self._iterator = self._run()
        return next(self._iterator)

    def close(self) -> None:
        """End the stream: iteration stops and the connection is released."""
        self._closed = True
        response, self._response = self._response, None
        if response is not None:
            response.close()
        if self._iterator is not None:
            iterator, self._iterator = self._iterator, None
            # Closed from another thread while it runs (ValueError): it stops at its next line.
            with contextlib.suppress(ValueError):
                iterator.close()  # type: ignore[attr-defined]

    def __enter__(self) -> Stream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncStream(_Core):
    """The caller's events, as an async iterator (from :meth:`AsyncClient.stream`).

    Takes the arguments of :class:`Stream` (``sleep`` is a coroutine function). Use
    ``async for event in client.stream(): ...`` or ``async with client.stream() as stream:``.
    """

    def __init__(
        self,
        client: AsyncClient,
        *,
        last_event_id: int | str | None = None,
        watchdog_s: float = DEFAULT_WATCHDOG_S,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        fallback_after: int = DEFAULT_FALLBACK_AFTER,
        stream_retry_s: float = DEFAULT_STREAM_RETRY_S,
        timeout: float | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        super().__init__(
            last_event_id=last_event_id,
            watchdog_s=watchdog_s,
            poll_interval_s=poll_interval_s,
            fallback_after=fallback_after,
            stream_retry_s=stream_retry_s,
            timeout=timeout,
            clock=clock,
            rand=rand,
        )
        self._client = client
        self._sleep = sleep
        self._response: httpx.Response | None = None
        self._opened = False
        self._open_failed = False
        self._iterator: AsyncIterator[AsyncStreamEvent] | None = None

    async def open(self) -> AsyncStream:
        """Fix the position now and try to connect once, as :meth:`Stream.open`.

        Raises:
            APIStatusError: the server refused the stream (bad key, ...).
        """
        if self._opened:
            return self
        self._opened = True
        if self._last is None:
            try:
                self._pin(await self._client.events.list(after=_FAR_FUTURE_SEQ, limit=1))
            except APIError as error:
                if not _retryable(error):
                    raise
        self._response = await self._connect()
        # A failed first attempt counts (and backs off) when the iteration starts.
        self._open_failed = self._response is None
        return self

    async def _connect(self) -> httpx.Response | None:
        try:
            response = await self._client.open_stream(
                "/v1/stream", params=self._params(), headers=self._headers(), timeout=self._timeout()
            )
        except APIConnectionError:
            return None
        if response.status_code == 200:
            self._connected(response)
            return response
        try:
            await response.aread()
            self._connected(response)
        except httpx.TransportError:
            pass
        finally:
            await response.aclose()
        return None

    async def _read(self, response: httpx.Response) -> AsyncIterator[AsyncStreamEvent]:
        decoder = _SSEDecoder()
        started = self._clock()
        try:
            async for line in response.aiter_lines():
                if self._closed:
                    return
                frame = decoder.feed(line)
                if decoder.retry_ms is not None:
                    self._retry_hint_s = decoder.retry_ms / 1000
                if frame is not None and (raw := self._frame_event(frame)) is not None:
                    self._failures = 0
                    yield AsyncStreamEvent._from_json(raw, self._client)
                self._check_deadline()
        except httpx.TransportError:
            pass
        finally:
            await response.aclose()
        if self._clock() - started > MAX_RETRY_DELAY:
            self._failures = 0

    async def _poll(self) -> AsyncIterator[AsyncStreamEvent]:
        after = self._last
        try:
            if after is None:
                self._pin(await self._client.events.list(after=_FAR_FUTURE_SEQ, limit=1))
                after = self._last
            page = await self._client.events.list(after=after, limit=_POLL_LIMIT)
        except APIError as error:
            if not _retryable(error):
                raise
            await self._sleep(self._bounded(self._delay()))
            return
        self._failures = 0
        for raw in self._page_events(page, after or 0):
            yield AsyncStreamEvent._from_json(raw, self._client)
        if not page.data and (after is None or page.last_seq <= after):
            await self._sleep(self._bounded(self.poll_interval_s))

    async def _run(self) -> AsyncIterator[AsyncStreamEvent]:
        await self.open()
        while not self._closed:
            self._check_deadline()
            if self._polling_now():
                async for event in self._poll():
                    yield event
                continue
            response, self._response = self._response, None
            if response is None and not self._open_failed:
                response = await self._connect()
            self._open_failed = False
            if response is None:
                self._connect_failed()
                if not self._polling_now():
                    await self._sleep(self._bounded(self._delay()))
                continue
            self._response = response
            async for event in self._read(response):
                yield event
            self._response = None
            if self._closed:
                return
            self._check_deadline()
            await self._sleep(self._bounded(self._delay()))

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> AsyncStreamEvent:
        if self._iterator is None:
            self._iterator = self._run()
        return await self._iterator.__anext__()

    async def aclose(self) -> None:
        """End the stream: iteration stops and the connection is released."""
        self._closed = True
        response, self._response = self._response, None
        if response is not None:
            await response.aclose()
        if self._iterator is not None:
            iterator, self._iterator = self._iterator, None
            await iterator.aclose()  # type: ignore[attr-defined]

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
