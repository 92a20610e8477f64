"""CDN uploads that cannot pile up: one in flight per file, stalled ones cut, no signature in the logs."""

from __future__ import annotations

import re
import select
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from realtime_support import Team

from nexysync_server.ids import new_id

pytestmark = pytest.mark.e2e

SIZE = 100_000


@pytest.fixture(scope="module")
def server(module_dev_servers: Callable[..., Any]) -> Any:
    # A whole upload of SIZE bytes must end within 1 + SIZE / 50,000 = 3 s.
    return module_dev_servers({"NEXYSYNC_CDN_BODY_TIMEOUT_S": "1", "NEXYSYNC_CDN_MIN_UPLOAD_BYTES_PER_S": "50000"})


def _announce(team: Team) -> str:
    file_id = new_id()
    name = team.ring.encrypt(b"f.bin", project_id=team.project_id, kind="file", record_id=file_id, field="name")
    created = httpx.post(
        f"{team.base_url}/v1/files",
        json={"id": file_id, "name": name, "size": SIZE},
        headers={"Authorization": f"Bearer {team.keys['alice']}"},
    )
    assert created.status_code == 201, created.text
    return str(created.json()["upload_url"])


def _stalled_put(url: str) -> socket.socket:
    """Start a PUT of ``url`` that sends all but one byte of its body, then nothing."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    head = (
        f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Length: {SIZE}\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    sock.sendall(head.encode() + b"x" * (SIZE - 1))
    return sock


def _answer(sock: socket.socket) -> str:
    """Read what the server answers until it closes the connection (it may come in pieces)."""
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received.decode(errors="replace")


def _temps(server: Any) -> list[Path]:
    return list(Path(server.banner()["Files"]).glob("*/.upload-*"))


def _wait(condition: Callable[[], bool], what: str, deadline_s: float = 15.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def test_a_second_concurrent_upload_is_refused_and_a_stalled_one_is_cut(server: Any) -> None:
    team = Team(server.base_url, ["alice"])
    url = _announce(team)
    stalled = [_stalled_put(url)]
    try:
        _wait(lambda: len(_temps(server)) == 1, "the stalled upload has its temp file")
        # Six stalled uploads held 150 MiB of temp files at 75f16e8: now the others are refused.
        for _ in range(5):
            second = httpx.put(url, content=b"y" * SIZE)
            assert second.status_code == 409
            assert second.headers["content-type"] == "application/problem+json"
            assert second.json()["code"] == "UPLOAD_IN_PROGRESS"
        assert len(_temps(server)) == 1
        # The stalled one is cut after the body timeout, its temp file removed at once...
        answer = _answer(stalled[0])
        assert " 408 " in answer.splitlines()[0] and "UPLOAD_TIMEOUT" in answer
        _wait(lambda: not _temps(server), "the temp file of the cut upload is gone")
    finally:
        for sock in stalled:
            sock.close()
    # ...and the file can be uploaded at once.
    assert httpx.put(url, content=b"z" * SIZE).status_code == 201


def test_an_upload_that_trickles_is_cut_at_its_total_deadline(server: Any) -> None:
    # At 23a9449 a PUT sending 1 byte every 20 s (under the 30 s wait for the next byte) was still
    # open after 81 s, holding its connection, temp file and lease. Here: a byte every 0.4 s,
    # under the 1 s wait, and the whole upload is cut at its 3 s deadline.
    team = Team(server.base_url, ["alice"])
    url = _announce(team)
    parts = urlsplit(url)
    started = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(
            f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Length: {SIZE}\r\nContent-Type: application/octet-stream\r\n\r\n".encode()
        )
        while time.monotonic() - started < 20:
            readable, _, _ = select.select([sock], [], [], 0.4)
            if readable:
                break
            sock.sendall(b"x")
        answer = _answer(sock)
    elapsed = time.monotonic() - started
    assert " 408 " in answer.splitlines()[0] and "UPLOAD_TIMEOUT" in answer, answer
    assert "was not whole in time" in answer
    assert 2.5 < elapsed < 8, elapsed
    _wait(lambda: not _temps(server), "the temp file of the cut upload is gone")
    assert httpx.put(url, content=b"z" * SIZE).status_code == 201


def test_a_held_upload_lease_refuses_the_second_upload_every_time(server: Any) -> None:
    # At 23a9449 the second of two uploads got 201 in 5 of 6 trials on the embedded database:
    # the lease's claim had the query shape nx-27017 gets wrong. 20 rounds, 0 second uploads.
    team = Team(server.base_url, ["alice"])
    accepted = []
    for _ in range(20):
        url = _announce(team)
        first = _stalled_put(url)
        try:
            _wait(lambda: len(_temps(server)) == 1, "the first upload has its temp file")
            time.sleep(0.1)
            second = httpx.put(url, content=b"y" * SIZE)
            if second.status_code != 409:
                accepted.append(second.status_code)
            else:
                assert second.json()["code"] == "UPLOAD_IN_PROGRESS"
        finally:
            first.close()
        _wait(lambda: not _temps(server), "the dropped first upload's temp file is gone")
    assert accepted == []


def test_an_upload_cut_by_its_client_leaves_no_temp_file(server: Any) -> None:
    team = Team(server.base_url, ["alice"])
    url = _announce(team)
    sock = _stalled_put(url)
    _wait(lambda: len(_temps(server)) == 1, "the upload has its temp file")
    sock.close()
    _wait(lambda: not _temps(server), "the temp file of the dropped upload is gone")
    assert httpx.put(url, content=b"z" * SIZE).status_code == 201


def test_signed_urls_never_reach_the_access_log(server: Any) -> None:
    team = Team(server.base_url, ["alice"])
    url = _announce(team)
    assert httpx.put(url, content=b"z" * SIZE).status_code == 201
    signature = re.search(r"sig=([0-9a-f]{64})", url)
    assert signature is not None
    _wait(lambda: "sig=REDACTED" in server.output(), "the upload is in the access log")
    assert signature.group(1) not in server.output()
    assert re.search(r"sig=[0-9a-f]{64}", server.output()) is None
