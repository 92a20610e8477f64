"""Slow clients against ``serve``: a flood of half-sent requests cannot starve a worker of descriptors."""

from __future__ import annotations

import resource
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import pytest

pytestmark = pytest.mark.e2e

#: systemd's default limit on open files, which the finding was made with.
SYSTEMD_DEFAULT_DESCRIPTORS = 1024
SLOW_CLIENTS = 1100


def _raise_own_descriptor_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def _outcome(sock: socket.socket) -> str:
    """What a slow client ends up with: an HTTP status, "closed" unanswered, or "open"."""
    sock.settimeout(0)
    try:
        data = sock.recv(4096)
    except BlockingIOError:
        return "open"
    except ConnectionResetError:
        return "closed"
    return data.split(b" ", 2)[1].decode() if data else "closed"


def test_half_sent_requests_cannot_starve_a_worker(server_processes: Callable[..., str]) -> None:
    # At 23a9449, 1,100 slow connections to `serve --workers 1` under a 1,024-descriptor limit
    # made 15 of 15 legitimate requests fail. Now the worker caps its connections below its
    # descriptor limit and, when full, cuts the slowest clients to let whole requests in.
    base_url = server_processes(["serve", "--workers", "1"], descriptors=SYSTEMD_DEFAULT_DESCRIPTORS)
    _raise_own_descriptor_limit(SLOW_CLIENTS + 200)
    parts = urlsplit(base_url)
    slow: list[socket.socket] = []
    try:
        for _ in range(SLOW_CLIENTS):
            sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
            sock.sendall(b"GET /v1/health/live HTTP/1.1\r\n")
            slow.append(sock)
        time.sleep(1.5)  # past the age at which a client without its headers is the first cut
        statuses = []
        for _ in range(15):
            answer = httpx.get(f"{base_url}/v1/health/live", headers={"Connection": "close"}, timeout=10)
            statuses.append(answer.status_code)
        assert statuses == [200] * 15
        outcomes = [_outcome(sock) for sock in slow]
        # Cut ones were told why (408) or closed unread past the cap; none got served.
        assert set(outcomes) <= {"408", "closed", "open"}, set(outcomes)
        assert outcomes.count("408") >= 15
    finally:
        for sock in slow:
            sock.close()
