"""Faults a production server meets: the database dying or filling up, the files volume filling up.

Each test injects the fault into real processes and checks what a client sees: a clear, quick,
retryable error while it lasts, nothing half-written, and everything working again afterwards
with no event lost, repeated or out of order. (A killed worker and a mix of all of these are in
tests/e2e/test_worker_kill.py and tests/soak/.)
"""

from __future__ import annotations

import io
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from realtime_support import EventStream, Team

from fault_support import Served, alive, api_env, limit_file_size, wait_for
from nexysync import APIStatusError, Client
from nexysync_server.ids import new_id
from nexysync_server.store.embedded import EmbeddedMongo

pytestmark = pytest.mark.e2e

# A request while the database is down must be answered within about a second; pymongo's own
# default waits 30 s (and this server's earlier 5 s). The bound only catches a hang; the time
# taken is printed.
FAIL_FAST_BOUND_S = 4.0


async def test_database_death_answers_503_fast_keeps_streams_and_resumes_in_order(tmp_path: Path) -> None:
    with EmbeddedMongo(tmp_path / "db") as database:
        env = api_env(database.uri, "death", NEXYSYNC_HEARTBEAT_S="0.3")
        # The stream is on one API process and the sends go through another, so what reaches the
        # stream comes through its watcher (and sweeper), which must survive the database's death.
        listener, writer = Served("serve", tmp_path / "logs", env), Served("serve", tmp_path / "logs", env)
        try:
            listener.start()
            writer.start()
            team = Team(listener.base_url, ["alice", "bob"])
            team.base_url = writer.base_url
            alice = {"Authorization": f"Bearer {team.keys['alice']}"}
            async with (
                httpx.AsyncClient(timeout=FAIL_FAST_BOUND_S) as http,
                EventStream(listener.base_url, team.keys["bob"]) as stream,
            ):
                before = await team.send(http, "alice", "bob")
                assert [frame.data["data"]["id"] for frame in await stream.messages(1)] == [before]

                assert database.pid is not None
                os.kill(database.pid, signal.SIGKILL)
                wait_for(lambda: not database.running, "the database is dead", 10)

                body = team.body("bob")
                started = time.monotonic()
                refused = await http.post(f"{writer.base_url}/v1/messages", json=body, headers=alice)
                send_s = time.monotonic() - started
                assert refused.status_code == 503, refused.text
                assert refused.headers["content-type"] == "application/problem+json"
                assert refused.json()["code"] == "DATABASE_UNAVAILABLE"
                assert int(refused.headers["Retry-After"]) >= 1
                started = time.monotonic()
                ready = await http.get(f"{listener.base_url}/v1/health/ready")
                ready_s = time.monotonic() - started
                assert ready.status_code == 503
                assert ready.json()["code"] == "DATABASE_UNAVAILABLE"
                print(f"database down: send answered 503 in {send_s:.2f} s, ready answered 503 in {ready_s:.2f} s")

                # The open stream lives on through the outage: heartbeats keep coming.
                heartbeats = 0
                while heartbeats < 3:
                    frame = await stream.frame(timeout=10)
                    assert frame.kind == "comment", frame
                    heartbeats += frame.comment == "heartbeat"

                database.restart()
                wait_for(lambda: listener.ready() and writer.ready(), "both API processes are ready again", 30)
                # The refused send left nothing behind, and its retry (same id) is stored once.
                missing = await http.get(f"{writer.base_url}/v1/messages/{body['id']}", headers=alice)
                assert missing.status_code == 404, missing.text
                retried = await http.post(f"{writer.base_url}/v1/messages", json=body, headers=alice)
                assert retried.status_code == 201, retried.text
                after = await team.send(http, "alice", "bob")

                frames = await stream.messages(2, timeout=30)
                assert [frame.data["data"]["id"] for frame in frames] == [body["id"], after]
                assert frames[0].id is not None and frames[1].id is not None and frames[0].id < frames[1].id
        finally:
            listener.kill()
            writer.kill()


def test_dev_restarts_its_dead_database_and_the_api_recovers(
    dev_servers: Callable[..., object], tmp_path: Path
) -> None:
    dev = dev_servers(tmp_path / "data")
    team = Team(dev.base_url, ["alice"])  # type: ignore[attr-defined]
    alice = {"Authorization": f"Bearer {team.keys['alice']}"}
    first_pid = dev.database_pid()  # type: ignore[attr-defined]

    os.kill(first_pid, signal.SIGKILL)
    wait_for(lambda: "restarting it on" in dev.output(), "dev says it restarts the database", 15)  # type: ignore[attr-defined]

    def api_back() -> bool:
        try:
            return httpx.get(f"{dev.base_url}/v1/me", headers=alice, timeout=5).status_code == 200  # type: ignore[attr-defined]
        except httpx.TransportError:
            return False

    # The same key works: the new database process serves the same file, and the API reconnected.
    wait_for(api_back, "the API answers again on the restarted database", 60)
    second_pid = dev.database_pid()  # type: ignore[attr-defined]
    assert second_pid != first_pid and alive(second_pid)
    wait_for(lambda: "the database is back" in dev.output(), "dev says the database is back", 15)  # type: ignore[attr-defined]

    # Ctrl-C still stops both.
    assert dev.stop(signal.SIGINT) == 0  # type: ignore[attr-defined]
    wait_for(lambda: not alive(second_pid), "the restarted database stops with dev", 15)


async def test_database_disk_full_answers_503_writes_nothing_and_recovers(
    dev_servers: Callable[..., object], tmp_path: Path
) -> None:
    dev = dev_servers(tmp_path / "data")
    base_url = dev.base_url  # type: ignore[attr-defined]
    team = Team(base_url, ["alice", "bob"])
    alice = {"Authorization": f"Bearer {team.keys['alice']}"}
    database_pid = dev.database_pid()  # type: ignore[attr-defined]
    async with httpx.AsyncClient(timeout=FAIL_FAST_BOUND_S) as http, EventStream(base_url, team.keys["bob"]) as stream:
        before = await team.send(http, "alice", "bob")
        value = team.ring.encrypt(b"v", project_id=team.project_id, kind="kv", record_id="k", field="value")
        created = await http.put(f"{base_url}/v1/kv/k", json={"value": value}, headers=alice)
        assert created.status_code == 201, created.text
        limit_file_size(database_pid, 0)  # the database's disk is full: it cannot write a byte
        try:
            body = team.body("bob")
            refused = await http.post(f"{base_url}/v1/messages", json=body, headers=alice)
            assert refused.status_code == 503, refused.text
            assert refused.json()["code"] == "DATABASE_UNAVAILABLE"
            assert "Retry-After" in refused.headers
            # An update (the embedded database answers its findAndModify without writing) and a new entry.
            for key in ("k", "fresh"):
                kv = await http.put(f"{base_url}/v1/kv/{key}", json={"value": value}, headers=alice)
                assert kv.status_code == 503, kv.text
            # Nothing half-written: the refused message is not there for anyone.
            missing = await http.get(f"{base_url}/v1/messages/{body['id']}", headers=alice)
            assert missing.status_code == 404, missing.text
        finally:
            limit_file_size(database_pid, None)  # space is back
        retried = await http.post(f"{base_url}/v1/messages", json=body, headers=alice)
        assert retried.status_code == 201, retried.text
        after = await team.send(http, "alice", "bob")
        kv = await http.put(f"{base_url}/v1/kv/k", json={"value": value}, headers=alice)
        assert kv.status_code == 200, kv.text
        assert kv.headers["ETag"].strip('"') == "2"  # the refused write made no version
        # No seq the full disk swallowed holds the stream back: everything comes, once, in order.
        ids = [frame.data["data"]["id"] for frame in await stream.messages(3, timeout=30)]
        assert ids == [before, body["id"], after]


def test_files_volume_full_answers_507_keeps_nothing_and_gives_the_quota_back(
    dev_servers: Callable[..., object], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    dev = dev_servers(data_dir)
    team = Team(dev.base_url, ["alice"])  # type: ignore[attr-defined]
    size = 2 * 1024 * 1024
    with Client(
        base_url=dev.base_url,  # type: ignore[attr-defined]
        api_key=team.keys["alice"],
        key_ring=team.ring,
        project_id=team.project_id,
    ) as alice:
        used_before = alice.quota.get().storage_bytes
        # The dev process (API and CDN) may write files of up to 1 MiB: its logs stay far below,
        # an upload of 2 MiB runs out of room halfway.
        limit_file_size(dev.process.pid, 1024 * 1024)  # type: ignore[attr-defined]
        try:
            with pytest.raises(APIStatusError) as refused:
                alice.files.upload(io.BytesIO(os.urandom(size)), name="big.bin")
            assert refused.value.status == 507
            assert refused.value.code == "FILES_VOLUME_FULL"
            assert alice.quota.get().storage_bytes == used_before
            assert list(alice.files.list()) == []
            project_dir = data_dir / "files" / team.project_id
            assert not project_dir.exists() or list(project_dir.iterdir()) == []
        finally:
            limit_file_size(dev.process.pid, None)  # type: ignore[attr-defined]
        stored = alice.files.upload(io.BytesIO(os.urandom(size)), name="big.bin")
        assert stored.status.value == "ready"
        assert alice.quota.get().storage_bytes > used_before


async def test_a_full_database_disk_is_a_503_not_a_not_found_or_a_silent_no_op(
    dev_servers: Callable[..., object], tmp_path: Path
) -> None:
    # The embedded database answers a findAndModify whose write failed with "no document", which
    # read as 404 (delete, rotate, update) or as done (pin, read receipt) while nothing changed.
    dev = dev_servers(tmp_path / "data")
    base_url = dev.base_url  # type: ignore[attr-defined]
    team = Team(base_url, ["alice", "bob", "carol"])
    alice, bob = ({"Authorization": f"Bearer {team.keys[slug]}"} for slug in ("alice", "bob"))
    project = f"/v1/projects/{team.project_id}"
    carol = next(a for a in team.owner.get(f"{project}/agents").json()["data"] if a["slug"] == "carol")
    value = team.ring.encrypt(b"v", project_id=team.project_id, kind="kv", record_id="k", field="value")
    async with httpx.AsyncClient(base_url=base_url, timeout=FAIL_FAST_BOUND_S) as http:
        message_id = await team.send(http, "alice", "bob")
        assert (await http.put("/v1/kv/k", json={"value": value}, headers=alice)).status_code == 201
        owner = team.owner.headers
        agent = f"{project}/agents/{carol['id']}"
        attempts: dict[str, Callable[[], object]] = {
            "rotate an agent's key": lambda: http.post(f"{agent}/rotate-key", headers=owner),
            "rename it": lambda: http.patch(agent, json={"name": "C"}, headers=owner),
            "rename the project": lambda: http.patch(project, json={"name": "renamed"}, headers=owner),
            "delete a kv entry": lambda: http.delete("/v1/kv/k", headers=alice),
            "pin a message": lambda: http.put(f"/v1/messages/{message_id}/pin", headers=bob),
            "read a message (its read receipt)": lambda: http.get(f"/v1/messages/{message_id}", headers=bob),
            "delete the agent": lambda: http.delete(agent, headers=owner),
        }
        limit_file_size(dev.database_pid(), 0)  # type: ignore[attr-defined]
        try:
            for what, attempt in attempts.items():
                answer = await attempt()  # type: ignore[misc]
                assert answer.status_code == 503, f"{what}: {answer.status_code} {answer.text}"
                assert answer.json()["code"] == "DATABASE_UNAVAILABLE", what
        finally:
            limit_file_size(dev.database_pid(), None)  # type: ignore[attr-defined]
        # Nothing changed meanwhile, and each one works now.
        read = (await http.get(f"/v1/messages/{message_id}", headers=alice)).json()
        assert read["status"] == "sent"
        receipts = (await http.get(f"/v1/messages/{message_id}/receipts", headers=alice)).json()["data"]
        assert [r["state"] for r in receipts] == ["queued"], receipts
        assert (await http.get("/v1/kv/k", headers=alice)).status_code == 200
        for what, attempt in attempts.items():
            answer = await attempt()  # type: ignore[misc]
            assert answer.status_code in (200, 204), f"{what}: {answer.status_code} {answer.text}"


def test_an_upload_the_database_dropped_can_be_retried_once_it_is_back(
    dev_servers: Callable[..., object], tmp_path: Path
) -> None:
    # The database stops answering while an upload runs: the upload fails, and so does the
    # release of its lease. The retry, once the database is back, must not meet 409
    # UPLOAD_IN_PROGRESS for the rest of the lease (16 s here) for an upload that ended.
    dev = dev_servers(
        tmp_path / "data", {"NEXYSYNC_CDN_BODY_TIMEOUT_S": "4", "NEXYSYNC_MONGODB_SOCKET_TIMEOUT_MS": "1000"}
    )
    team = Team(dev.base_url, ["alice"])  # type: ignore[attr-defined]
    size = 10_000
    file_id = new_id()
    name = team.ring.encrypt(b"f.bin", project_id=team.project_id, kind="file", record_id=file_id, field="name")
    created = httpx.post(
        f"{team.base_url}/v1/files",
        json={"id": file_id, "name": name, "size": size},
        headers={"Authorization": f"Bearer {team.keys['alice']}"},
    )
    assert created.status_code == 201, created.text
    url = urlsplit(created.json()["upload_url"])
    # All of the body but its last byte, then nothing: the CDN cuts it after the body timeout.
    stalled = socket.create_connection((url.hostname, url.port), timeout=30)
    head = f"PUT {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Length: {size}\r\n\r\n"
    stalled.sendall(head.encode() + b"x" * (size - 1))
    files_dir = Path(dev.banner()["Files"])  # type: ignore[attr-defined]
    wait_for(lambda: list(files_dir.glob("*/.upload-*")), "the upload has its temp file", 15)
    database_pid = dev.database_pid()  # type: ignore[attr-defined]
    os.kill(database_pid, signal.SIGSTOP)  # the database stops answering (its connections stay open)
    try:
        answer = b""
        while chunk := stalled.recv(4096):
            answer += chunk
        # The client is told what happened to its upload, not the release's failure after it.
        assert b" 408 " in answer.split(b"\r\n")[0], answer[:300]
    finally:
        stalled.close()
        os.kill(database_pid, signal.SIGCONT)
    back = time.monotonic()
    # Retried as a client would (the SDK retries a 409 too), for far less than the lease.
    while (retried := httpx.put(url.geturl(), content=b"z" * size)).status_code != 201:
        assert retried.status_code in (409, 503), retried.text
        assert time.monotonic() - back < 6, f"still {retried.json()['code']} {time.monotonic() - back:.1f} s later"
        time.sleep(0.2)
    print(f"the retry uploaded {time.monotonic() - back:.2f} s after the database came back")
