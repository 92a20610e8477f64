"""Connection guards below the app: a cap on one worker's connections and a deadline for request headers.

An SSE stream holds its connection (one file descriptor, about 21 KiB of a worker's memory
beside its 82 MiB at rest, measured by ``tests/bench/bench_realtime.py``) for as long as the
client stays. Nothing in uvicorn stops a worker from accepting connections until its descriptors
run out, and then every request fails, nor from waiting forever for headers a slow client
trickles in. So the HTTP protocol the servers run is uvicorn's own (httptools) with two
additions, answered before any app code runs:

- **Connection cap.** When a connection or a request arrives while its worker holds more than
  ``max_connections``, the connections that have waited longest for their request's headers,
  if they have waited :data:`EVICT_AFTER_S` or more, get ``408 REQUEST_TIMEOUT`` and are closed
  to make room: under a flood of slow clients, a request that arrives whole still gets in. Failing that, a request
  that arrives while the worker is over the cap gets ``503 SERVER_BUSY`` problem+json with
  ``Retry-After`` and the connection is closed, and connections past the cap by
  :data:`OVERFLOW` more are closed at once, unread, so descriptors never run out whatever
  arrives. The cap is never above the process's descriptor limit less
  :data:`RESERVED_DESCRIPTORS` (database pool, files, logs) and the overflow.
- **Header deadline.** A connection must deliver a request's complete headers within
  ``header_timeout_s`` of opening or of that request's first byte, however steadily they
  trickle, or it gets ``408 REQUEST_TIMEOUT`` and is closed. Idle keep-alive connections are
  uvicorn's business (``timeout_keep_alive``); request bodies are the app's (the CDN's upload
  deadline).

Both answers are written straight to the socket, so they appear in the warning log, not the
access log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import time
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("nexysync_server.connections")

#: Descriptors a worker keeps for itself beyond its connections: database pool, files, logs.
RESERVED_DESCRIPTORS = 256
#: Connections past the cap closed unread: beyond this many, not even a 503 is written.
OVERFLOW = 128
#: A connection still without its headers after this long is the first cut when the worker is full.
EVICT_AFTER_S = 1.0
#: The ``Retry-After`` of a 503 SERVER_BUSY, in seconds.
BUSY_RETRY_AFTER_S = 5
# At most one warning per kind per this many seconds: an attack must not flood the log.
_WARN_EVERY_S = 10.0


def connection_cap(wanted: int) -> int:
    """Return the connection cap a worker can really hold: ``wanted``, lowered to fit its descriptor limit."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - RESERVED_DESCRIPTORS - OVERFLOW))


def _problem(status: int, reason: str, code: str, detail: str, headers: dict[str, str]) -> bytes:
    """Return a whole HTTP/1.1 response carrying a problem+json body, closing the connection."""
    body = json.dumps(
        {
            "type": f"https://nexysync.dev/problems/{code.lower().replace('_', '-')}",
            "title": reason,
            "status": status,
            "detail": detail,
            "code": code,
        }
    ).encode()
    lines = [f"HTTP/1.1 {status} {reason}", "content-type: application/problem+json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"content-length: {len(body)}", "connection: close", "", ""]
    return "\r\n".join(lines).encode("ascii") + body


class _Throttled:
    """Count every refusal in the metrics; log one warning per kind at most every :data:`_WARN_EVERY_S`."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._count: dict[str, int] = {}

    def warn(self, kind: str, message: str) -> None:
        # Imported here, in the worker: the gunicorn master imports this module, and must not
        # import prometheus-client (its multiprocess mode is chosen at import; see metrics.py).
        from .metrics import CONNECTIONS_REFUSED

        CONNECTIONS_REFUSED.labels(kind).inc()
        self._count[kind] = self._count.get(kind, 0) + 1
        now = time.monotonic()
        if now - self._last.get(kind, -_WARN_EVERY_S) >= _WARN_EVERY_S:
            log.warning("%s (%d since the last such warning)", message, self._count[kind])
            self._last[kind] = now
            self._count[kind] = 0


_warnings = _Throttled()


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a per-worker connection cap and a request-header deadline.

    Configure it with :func:`guarded_protocol`, which binds the limits to a subclass with its own
    registry of connections waiting for headers; uvicorn builds one instance per connection and
    shares ``self.connections`` (the server's open connections) among them.
    """

    max_connections = 10_000
    overflow = OVERFLOW
    header_timeout_s = 10.0
    #: Connections waiting for a request's headers, oldest first, with when they started waiting.
    waiting: ClassVar[dict[GuardedHttpProtocol, float]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._make_room()
        if len(self.connections) > self.max_connections + self.overflow:
            limit = self.max_connections + self.overflow
            _warnings.warn("aborted", f"more than {limit} connections: closing new ones unread")
            self.connections.discard(self)
            transport.abort()
            return
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        self._make_room()
        if len(self.connections) > self.max_connections:
            _warnings.warn("busy", f"more than {self.max_connections} connections: answering 503 SERVER_BUSY")
            self._reply_and_close(
                _problem(
                    503,
                    "Service Unavailable",
                    "SERVER_BUSY",
                    f"This server holds its limit of connections; retry after {BUSY_RETRY_AFTER_S} s.",
                    {"retry-after": str(BUSY_RETRY_AFTER_S)},
                )
            )
            return
        super().on_headers_complete()

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)
            self.waiting[self] = time.monotonic()

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None
            self.waiting.pop(self, None)

    def _make_room(self) -> None:
        """While over the cap, cut the connections that have waited longest for headers, if long enough."""
        while len(self.connections) > self.max_connections and self.waiting:
            slowest, since = next(iter(self.waiting.items()))
            if time.monotonic() - since < EVICT_AFTER_S:
                return
            slowest._headers_too_slow()

    def _headers_too_slow(self) -> None:
        self._disarm_header_deadline()
        if self.transport.is_closing():
            return
        _warnings.warn("header_timeout", "request headers too slow: answering 408 REQUEST_TIMEOUT")
        self._reply_and_close(
            _problem(
                408,
                "Request Timeout",
                "REQUEST_TIMEOUT",
                f"The request's headers did not arrive in time (the limit is {self.header_timeout_s:g} s).",
                {},
            )
        )

    def _reply_and_close(self, response: bytes) -> None:
        # Whatever the client still sends is not ours to parse. A closing connection no longer
        # counts against the cap, though uvicorn forgets it only once the transport has closed.
        self.transport.pause_reading()
        self.transport.write(response)
        self.transport.close()
        self.connections.discard(self)


def guarded_protocol(max_connections: int, header_timeout_s: float) -> type[GuardedHttpProtocol]:
    """Return the HTTP protocol class for uvicorn's ``http=``, with these limits.

    Args:
        max_connections: The most connections a worker serves at once (lowered by
            :func:`connection_cap` to fit the descriptor limit).
        header_timeout_s: How long a request's headers may take to arrive.
    """
    cap = connection_cap(max_connections)
    if cap < max_connections:
        log.warning(
            "NEXYSYNC_MAX_CONNECTIONS_PER_WORKER=%d lowered to %d to fit this process's limit on open files "
            "(%d); raise it (LimitNOFILE= in systemd, --ulimit nofile= in Docker) to serve more streams",
            max_connections,
            cap,
            resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        )
    return type(
        "GuardedHttpProtocol",
        (GuardedHttpProtocol,),
        {"max_connections": cap, "header_timeout_s": header_timeout_s, "waiting": {}},
    )
