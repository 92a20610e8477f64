"""Files through the real CDN app: encrypted round trips, signed URLs, size limits, Range, quota, retention."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from realtime_support import EventStream, Team

from nexysync import AsyncClient, Client, DecryptionError, PermissionDeniedError
from nexysync.crypto import FILE_HEADER_BYTES, FILE_SEGMENT_BYTES, encrypted_file_size
from nexysync_server.ids import new_id

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
DEADLINE_S = 20.0


def wait_until(condition: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
    """Poll ``condition`` until it holds, failing after ``deadline_s``."""
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {deadline_s:g} s")
        time.sleep(0.05)


def sdk(team: Team, slug: str) -> Client:
    return Client(base_url=team.base_url, api_key=team.keys[slug], key_ring=team.ring, project_id=team.project_id)


def agent_http(team: Team, slug: str) -> httpx.Client:
    return httpx.Client(base_url=team.base_url, headers={"Authorization": f"Bearer {team.keys[slug]}"}, timeout=30)


def announce(team: Team, slug: str, size: int, name: str = "notes.txt", file_id: str | None = None) -> httpx.Response:
    """POST /v1/files by hand (raw HTTP), with an encrypted name."""
    file_id = file_id or new_id()
    sealed = team.ring.encrypt(name.encode(), project_id=team.project_id, kind="file", record_id=file_id, field="name")
    with agent_http(team, slug) as http:
        return http.post("/v1/files", json={"id": file_id, "name": sealed, "size": size})


def files_dir(server: Any) -> Path:
    return Path(server.data_dir) / "files"


def blob(server: Any, team: Team, file_id: str) -> Path:
    return files_dir(server) / team.project_id / file_id


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.fixture
def team(dev_server: Any) -> Team:
    return Team(dev_server.base_url, ["alice", "bob"])


# --- round trips through the SDK ----------------------------------------------------------------


async def test_a_small_file_round_trips_and_every_agent_hears_of_it(team: Team, dev_server: Any) -> None:
    content = b"hello from alice\n" * 100
    seen: list[tuple[int, int]] = []
    async with EventStream(team.base_url, team.keys["bob"]) as bob_events:
        with sdk(team, "alice") as alice:
            uploaded = await asyncio.to_thread(
                alice.files.upload,
                io.BytesIO(content),
                name="greeting.txt",
                content_type="text/plain",
                progress=lambda done, total: seen.append((done, total)),
            )
        frame = await bob_events.event()
        while frame.event != "new_file":
            frame = await bob_events.event()
    assert frame.data is not None
    event = dict(frame.data["data"])
    assert event.pop("created_at")
    # Routing only: the name stays encrypted in the file's record.
    assert event == {
        "id": uploaded.id,
        "from": "alice",
        "size": encrypted_file_size(len(content)),
        "content_type": "text/plain",
    }
    assert uploaded.status.value == "ready" and uploaded.name == "greeting.txt"
    assert uploaded.size == encrypted_file_size(len(content)) and uploaded.download_url is not None
    assert seen[-1] == (len(content), len(content))

    with sdk(team, "bob") as bob:
        out = io.BytesIO()
        got = bob.files.download(uploaded.id, to=out)
        assert out.getvalue() == content and got.name == "greeting.txt"
        listed = list(bob.files.list())
        assert [(f.id, f.name) for f in listed] == [(uploaded.id, "greeting.txt")]
    assert blob(dev_server, team, uploaded.id).stat().st_size == uploaded.size


async def test_a_20_mb_file_round_trips_through_the_async_client(team: Team, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    with source.open("wb") as handle:
        for _ in range(20):
            handle.write(os.urandom(MIB))
    target = tmp_path / "copy.bin"
    async with AsyncClient(
        base_url=team.base_url, api_key=team.keys["alice"], key_ring=team.ring, project_id=team.project_id
    ) as alice:
        uploaded = await alice.files.upload(source, name="big.bin")
        assert uploaded.size == encrypted_file_size(20 * MIB)
        await alice.files.download(uploaded.id, to=target)
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(source.read_bytes()).digest()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_an_empty_file_and_a_stream_that_cannot_seek(team: Team) -> None:
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            chunk = self._data.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    with sdk(team, "alice") as alice:
        empty = alice.files.upload(io.BytesIO(b""), name="empty")
        out = io.BytesIO()
        alice.files.download(empty.id, to=out)
        assert out.getvalue() == b""
        data = os.urandom(150_000)
        piped = alice.files.upload(io.BufferedReader(Pipe(data)), name="piped")  # type: ignore[arg-type]
        out = io.BytesIO()
        alice.files.download(piped.id, to=out)
        assert out.getvalue() == data


def test_content_tampered_with_on_the_volume_fails_to_decrypt_and_leaves_no_file(
    team: Team, dev_server: Any, tmp_path: Path
) -> None:
    with sdk(team, "alice") as alice:
        uploaded = alice.files.upload(io.BytesIO(os.urandom(200_000)), name="signed.bin")
        stored = blob(dev_server, team, uploaded.id)
        tampered = bytearray(stored.read_bytes())
        tampered[100_000] ^= 0x01
        stored.write_bytes(bytes(tampered))
        target = tmp_path / "out.bin"
        with pytest.raises(DecryptionError):
            alice.files.download(uploaded.id, to=target)
        # Cut at a segment boundary: the last segment there was not sealed as the last.
        stored.write_bytes(bytes(tampered[: FILE_HEADER_BYTES + 2 * (FILE_SEGMENT_BYTES + 16)]))
        with pytest.raises(DecryptionError):
            alice.files.download(uploaded.id, to=target)
    assert list(tmp_path.iterdir()) == []


# --- the API ------------------------------------------------------------------------------------


def test_announcing_is_idempotent_and_a_reused_id_conflicts(team: Team) -> None:
    file_id = new_id()
    first = announce(team, "alice", 100, file_id=file_id)
    assert first.status_code == 201 and first.headers["Location"] == f"/v1/files/{file_id}"
    assert first.json()["file"]["status"] == "pending" and first.json()["file"]["download_url"] is None
    with agent_http(team, "alice") as http:
        again = http.post("/v1/files", json={**_body(first), "size": 100})
        assert again.status_code == 200 and again.json()["file"]["id"] == file_id
        assert http.post("/v1/files", json={**_body(first), "size": 101}).status_code == 409
        # Pending files are not listed until their content is there.
        assert http.get("/v1/files").json()["data"] == []


def _body(response: httpx.Response) -> dict[str, Any]:
    file = response.json()["file"]
    return {"id": file["id"], "name": file["name"]}


def test_a_declared_size_over_the_limit_is_413(team: Team) -> None:
    refused = announce(team, "alice", 25 * MIB + 1)
    assert refused.status_code == 413 and refused.json()["code"] == "FILE_TOO_LARGE"
    assert refused.headers["content-type"] == "application/problem+json"
    assert announce(team, "alice", 25 * MIB).status_code == 201


def test_plaintext_names_are_refused(team: Team) -> None:
    with agent_http(team, "alice") as http:
        response = http.post("/v1/files", json={"id": new_id(), "name": "plain.txt", "size": 10})
    assert response.status_code == 422


def test_another_project_sees_none_of_the_files(team: Team, dev_server: Any) -> None:
    with sdk(team, "alice") as alice:
        uploaded = alice.files.upload(io.BytesIO(b"private"), name="private.txt")
    other = Team(dev_server.base_url, ["mallory"])
    with agent_http(other, "mallory") as mallory:
        assert mallory.get(f"/v1/files/{uploaded.id}").status_code == 404
        assert mallory.delete(f"/v1/files/{uploaded.id}").status_code == 404
        assert mallory.get("/v1/files").json()["data"] == []
    with agent_http(team, "alice") as http:
        assert http.get(f"/v1/files/{uploaded.id}").status_code == 200


def test_only_the_uploader_deletes_and_the_content_and_storage_go_with_it(team: Team, dev_server: Any) -> None:
    with sdk(team, "alice") as alice:
        uploaded = alice.files.upload(io.BytesIO(b"x" * 1000), name="x.txt")
    assert blob(dev_server, team, uploaded.id).exists()
    with agent_http(team, "bob") as bob:
        refused = bob.delete(f"/v1/files/{uploaded.id}")
        assert refused.status_code == 403 and refused.json()["code"] == "NOT_FILE_UPLOADER"
        assert bob.get("/v1/quota").json()["storage_bytes"] == uploaded.size
    with agent_http(team, "alice") as alice_http:
        assert alice_http.delete(f"/v1/files/{uploaded.id}").status_code == 204
        assert alice_http.get(f"/v1/files/{uploaded.id}").status_code == 404
        assert alice_http.get("/v1/quota").json()["storage_bytes"] == 0
        download = httpx.get(str(uploaded.download_url))
        assert download.status_code == 404
    assert not blob(dev_server, team, uploaded.id).exists()


# --- the CDN: signed URLs -----------------------------------------------------------------------


def test_a_tampered_url_is_refused_with_403(team: Team) -> None:
    created = announce(team, "alice", 10).json()
    url = created["upload_url"]
    other = announce(team, "alice", 10).json()
    sig = parse_qs(urlsplit(url).query)["sig"][0]
    tampered = [
        with_query(url, sig=("0" if sig[0] != "0" else "1") + sig[1:]),
        with_query(url, size="11"),
        with_query(url, expires=str(int(time.time()) + 86_400)),
        url.replace(created["file"]["id"], other["file"]["id"]),
        url.split("?")[0],
    ]
    for bad in tampered:
        response = httpx.put(bad, content=b"0123456789")
        assert response.status_code == 403, bad
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "URL_INVALID"
    # The upload URL is for PUT only.
    assert httpx.get(url).status_code == 403
    assert httpx.put(url, content=b"0123456789").status_code == 201


def test_expired_urls_are_refused_with_403(dev_servers: Callable[..., Any], tmp_path: Path) -> None:
    server = dev_servers(tmp_path / "data", {"NEXYSYNC_URL_TTL_S": "1"})
    team = Team(server.base_url, ["alice"])
    created = announce(team, "alice", 10)
    upload_url = created.json()["upload_url"]

    def expired() -> bool:
        # A short body is refused with 400 while the URL is good, and leaves the file pending.
        response = httpx.put(upload_url, content=b"short")
        assert response.status_code in (400, 403), response.text
        return response.status_code == 403 and response.json()["code"] == "URL_EXPIRED"

    wait_until(expired, "the upload URL's expiry")
    # A fresh URL for the same announcement (an idempotent repeat) works, then its download URL expires too.
    with agent_http(team, "alice") as http:

        def uploaded() -> bool:
            fresh = http.post("/v1/files", json={**_body(created), "size": 10})
            return httpx.put(fresh.json()["upload_url"], content=b"0123456789").status_code == 201

        wait_until(uploaded, "an upload within a fresh URL's second")
        download_url = http.get(f"/v1/files/{created.json()['file']['id']}").json()["download_url"]

    def download_expired() -> bool:
        response = httpx.get(download_url)
        return response.status_code == 403 and response.json()["code"] == "URL_EXPIRED"

    wait_until(download_expired, "the download URL's expiry")


# --- the CDN: uploads ---------------------------------------------------------------------------


def _status(team: Team, file_id: str) -> str:
    with agent_http(team, "alice") as http:
        status: str = http.get(f"/v1/files/{file_id}").json()["status"]
        return status


def _no_upload_left(server: Any, team: Team, file_id: str) -> bool:
    directory = files_dir(server) / team.project_id
    return not blob(server, team, file_id).exists() and not any(
        p.name.startswith(".upload-") for p in (directory.iterdir() if directory.exists() else [])
    )


def test_an_upload_past_the_declared_size_is_413_and_stores_nothing(team: Team, dev_server: Any) -> None:
    created = announce(team, "alice", 1000).json()
    url, file_id = created["upload_url"], created["file"]["id"]
    declared_more = httpx.put(url, content=b"x" * 1001)
    assert declared_more.status_code == 413 and declared_more.json()["code"] == "UPLOAD_TOO_LARGE"

    def chunked() -> Iterator[bytes]:
        for _ in range(20):
            yield b"y" * 100

    streamed_more = httpx.put(url, content=chunked())  # no Content-Length: counted as it arrives
    assert streamed_more.status_code == 413
    assert _status(team, file_id) == "pending" and _no_upload_left(dev_server, team, file_id)
    assert httpx.put(url, content=b"z" * 1000).status_code == 201
    assert _status(team, file_id) == "ready"
    again = httpx.put(url, content=b"z" * 1000)
    assert again.status_code == 409 and again.json()["code"] == "FILE_ALREADY_UPLOADED"


async def test_a_retry_finishes_an_upload_whose_server_died_before_marking_it_ready(
    team: Team, dev_server: Any
) -> None:
    created = announce(team, "alice", 1000).json()
    url, file_id = created["upload_url"], created["file"]["id"]
    # The first try's whole content reached the volume (flushed and linked); then its server died.
    content = b"c" * 1000
    path = blob(dev_server, team, file_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    assert _status(team, file_id) == "pending"
    async with EventStream(team.base_url, team.keys["bob"]) as bob_events:
        retry = await asyncio.to_thread(httpx.put, url, content=content)
        assert retry.status_code == 201, retry.text
        frame = await bob_events.event()
        while frame.event != "new_file":
            frame = await bob_events.event()
    assert frame.data is not None and frame.data["data"]["id"] == file_id
    assert _status(team, file_id) == "ready" and path.read_bytes() == content
    again = httpx.put(url, content=content)
    assert again.status_code == 409 and again.json()["code"] == "FILE_ALREADY_UPLOADED"


def test_content_left_by_a_deleted_file_of_the_same_id_is_replaced_by_the_upload(team: Team, dev_server: Any) -> None:
    created = announce(team, "alice", 1000).json()
    url, file_id = created["upload_url"], created["file"]["id"]
    # Content of another size cannot be a complete upload of this file: it is left over.
    path = blob(dev_server, team, file_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"old" * 10)
    uploaded = httpx.put(url, content=b"n" * 1000)
    assert uploaded.status_code == 201, uploaded.text
    assert _status(team, file_id) == "ready" and path.read_bytes() == b"n" * 1000


def test_a_truncated_upload_is_refused_and_the_file_stays_pending(team: Team, dev_server: Any) -> None:
    created = announce(team, "alice", 100_000).json()
    url, file_id = created["upload_url"], created["file"]["id"]
    short = httpx.put(url, content=b"x" * 99_999)
    assert short.status_code == 400 and short.json()["code"] == "UPLOAD_INCOMPLETE"
    assert _status(team, file_id) == "pending" and _no_upload_left(dev_server, team, file_id)

    # A client that promises the whole body and hangs up halfway.
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        head = (
            f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Content-Length: 100000\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        sock.sendall(head.encode() + b"x" * 50_000)
    wait_until(lambda: _no_upload_left(dev_server, team, file_id), "the cut upload's temp file to go")
    assert _status(team, file_id) == "pending"
    with agent_http(team, "alice") as http:
        assert http.get(f"/v1/files/{file_id}").json()["download_url"] is None


def test_range_reads(team: Team) -> None:
    content = os.urandom(300_000)
    created = announce(team, "alice", len(content)).json()
    assert httpx.put(created["upload_url"], content=content).status_code == 201
    with agent_http(team, "alice") as http:
        url = http.get(f"/v1/files/{created['file']['id']}").json()["download_url"]
    whole = httpx.get(url)
    assert whole.status_code == 200 and whole.content == content and whole.headers["Accept-Ranges"] == "bytes"
    cases = {
        "bytes=0-99": (0, 99),
        "bytes=1000-200999": (1000, 200_999),
        "bytes=-500": (len(content) - 500, len(content) - 1),
        "bytes=299990-": (299_990, len(content) - 1),
        "bytes=299990-999999": (299_990, len(content) - 1),
    }
    for header, (first, last) in cases.items():
        part = httpx.get(url, headers={"Range": header})
        assert part.status_code == 206, header
        assert part.headers["Content-Range"] == f"bytes {first}-{last}/{len(content)}"
        assert part.content == content[first : last + 1]
    unsatisfiable = httpx.get(url, headers={"Range": f"bytes={len(content)}-"})
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["Content-Range"] == f"bytes */{len(content)}"


# --- quota, retention, project deletion, plaintext ----------------------------------------------


def test_the_storage_quota_counts_files(dev_servers: Callable[..., Any], tmp_path: Path) -> None:
    server = dev_servers(tmp_path / "data", {"NEXYSYNC_QUOTA_STORAGE_MB": "1"})
    team = Team(server.base_url, ["alice"])
    first = announce(team, "alice", 600_000)
    assert first.status_code == 201
    refused = announce(team, "alice", 600_000)
    assert refused.status_code == 403 and refused.json()["code"] == "QUOTA_EXCEEDED"
    with agent_http(team, "alice") as http:
        assert http.delete(f"/v1/files/{first.json()['file']['id']}").status_code == 204
    assert announce(team, "alice", 600_000).status_code == 201
    with sdk(team, "alice") as alice, pytest.raises(PermissionDeniedError) as refused_upload:
        alice.files.upload(io.BytesIO(b"x" * 600_000), name="too much")
    assert refused_upload.value.code == "QUOTA_EXCEEDED"


def test_the_retention_sweep_removes_expired_files_and_their_content(
    dev_servers: Callable[..., Any], tmp_path: Path
) -> None:
    server = dev_servers(
        tmp_path / "data",
        {
            "NEXYSYNC_FILE_RETENTION_DAYS": str(4 / 86_400),  # four seconds
            "NEXYSYNC_FILE_PENDING_TTL_S": "1",
            "NEXYSYNC_FILE_SWEEP_INTERVAL_S": "0.2",
        },
    )
    team = Team(server.base_url, ["alice"])
    with sdk(team, "alice") as alice:
        kept = alice.files.upload(io.BytesIO(b"short-lived"), name="short.txt")
    abandoned = announce(team, "alice", 5000).json()["file"]["id"]
    # Content without a record (deleted through an API process without this volume) goes too,
    # and content with one stays.
    orphan = blob(server, team, new_id())
    orphan.write_bytes(b"left behind")
    wait_until(lambda: not orphan.exists(), "the orphaned content's sweep")
    assert blob(server, team, kept.id).exists()
    with agent_http(team, "alice") as http:
        wait_until(lambda: http.get(f"/v1/files/{abandoned}").status_code == 404, "the abandoned upload's sweep")
        wait_until(lambda: http.get(f"/v1/files/{kept.id}").status_code == 404, "the expired file's sweep")
        assert http.get("/v1/quota").json()["storage_bytes"] == 0
    assert not blob(server, team, kept.id).exists()


def test_deleting_the_project_removes_its_files_and_content(team: Team, dev_server: Any) -> None:
    with sdk(team, "alice") as alice:
        uploaded = alice.files.upload(io.BytesIO(b"project data"), name="data.txt")
    project_dir = files_dir(dev_server) / team.project_id
    assert project_dir.is_dir()
    assert team.owner.delete(f"/v1/projects/{team.project_id}", params={"confirm": "true"}).status_code == 204
    assert not project_dir.exists()
    assert httpx.get(str(uploaded.download_url)).status_code == 404


def test_no_plaintext_name_or_content_reaches_the_database_or_the_volume(team: Team, dev_server: Any) -> None:
    marker = f"PLAINTEXT-MARKER-{new_id()}"
    with sdk(team, "alice") as alice:
        alice.files.upload(io.BytesIO((marker + " content\n").encode() * 5000), name=f"{marker}.txt")
    assert banner_paths(dev_server)
    leaks = [
        path for path in Path(dev_server.data_dir).rglob("*") if path.is_file() and marker.encode() in path.read_bytes()
    ]
    assert leaks == []


def banner_paths(server: Any) -> bool:
    """The dev server prints where the CDN and the files are."""
    banner = server.banner()
    return banner["CDN"].startswith("http://127.0.0.1:") and banner["Files"] == str(files_dir(server))
