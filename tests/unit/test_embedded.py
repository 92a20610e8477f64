"""EmbeddedMongo runs nx-27017 as a child process that pymongo can use, and cleans up after itself."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pymongo import MongoClient

from nexysync_server.store.embedded import DB_FILE_NAME, EmbeddedMongo, EmbeddedMongoError

DEADLINE_S = 20.0


def wait_for(condition: Callable[[], bool], what: str, timeout: float = DEADLINE_S) -> None:
    """Poll ``condition`` until it holds; fail the test with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting until {what}")
        time.sleep(0.02)


def process_gone(pid: int) -> bool:
    """Tell whether ``pid`` has exited (a zombie waiting for its reaper counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    except OSError:
        # No /proc (macOS): fall back to signal 0, which also sees zombies as alive.
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return any(line.startswith("State:") and "Z" in line.split()[1] for line in status.splitlines())


def listening(port: int) -> bool:
    """Tell whether something accepts TCP connections on loopback ``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def ping(uri: str) -> dict[str, object]:
    """Send ``ping`` and return the reply."""
    with MongoClient(uri, serverSelectionTimeoutMS=5000) as client:
        reply: dict[str, object] = client.admin.command("ping")
        return reply


def test_answers_ping_and_keeps_its_files_in_the_data_dir(mongo: EmbeddedMongo) -> None:
    assert ping(mongo.uri)["ok"] == 1
    assert mongo.uri == f"mongodb://127.0.0.1:{mongo.port}/?directConnection=true"
    assert mongo.running
    assert mongo.db_path == mongo.data_dir / DB_FILE_NAME
    assert mongo.db_path.exists()
    assert mongo.pid_path.read_text().strip() == str(mongo.pid)
    assert mongo.log_path.exists()


def test_two_instances_run_side_by_side(tmp_path: Path) -> None:
    with EmbeddedMongo(tmp_path / "a") as first, EmbeddedMongo(tmp_path / "b") as second:
        assert first.port != second.port
        with MongoClient(first.uri) as a, MongoClient(second.uri) as b:
            a.demo.items.insert_one({"_id": "only-in-a"})
            b.demo.items.insert_one({"_id": "only-in-b"})

            assert [doc["_id"] for doc in a.demo.items.find()] == ["only-in-a"]
            assert [doc["_id"] for doc in b.demo.items.find()] == ["only-in-b"]


def test_stop_ends_the_process_and_frees_the_port(tmp_path: Path) -> None:
    server = EmbeddedMongo(tmp_path).start()
    pid, port = server.pid, server.port
    assert pid is not None

    server.stop()

    assert not server.running
    wait_for(lambda: process_gone(pid), f"nx-27017 (pid {pid}) exited")
    assert not listening(port)
    # The same port can be taken again at once, by a new server on the same data.
    with EmbeddedMongo(tmp_path, port=port) as again:
        assert ping(again.uri)["ok"] == 1
    server.stop()  # a second stop is harmless


def test_data_survives_a_restart(tmp_path: Path) -> None:
    with EmbeddedMongo(tmp_path) as server, MongoClient(server.uri) as client:
        client.demo.items.insert_one({"_id": "kept", "n": 1})

    with EmbeddedMongo(tmp_path) as server, MongoClient(server.uri) as client:
        assert client.demo.items.find_one({"_id": "kept"}) == {"_id": "kept", "n": 1}


def test_a_taken_port_fails_with_the_servers_own_words(tmp_path: Path, mongo: EmbeddedMongo) -> None:
    blocked = EmbeddedMongo(tmp_path, port=mongo.port, startup_timeout=DEADLINE_S)

    with pytest.raises(EmbeddedMongoError, match="exited with code") as caught:
        blocked.start()

    assert "nx-27017.console.log" in str(caught.value)
    assert "address already in use" in str(caught.value).lower()
    assert not blocked.running
    assert ping(mongo.uri)["ok"] == 1  # the server that holds the port is untouched


def test_the_database_stops_when_its_owner_is_killed(tmp_path: Path) -> None:
    owner_code = (
        "import sys, time\n"
        "from nexysync_server.store.embedded import EmbeddedMongo\n"
        "server = EmbeddedMongo(sys.argv[1]).start()\n"
        "print(server.pid, server.port, flush=True)\n"
        "time.sleep(3600)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", owner_code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        pid_text, port_text = owner.stdout.readline().split()
        child_pid, port = int(pid_text), int(port_text)
        assert listening(port)

        owner.send_signal(signal.SIGKILL)  # no chance to clean up
        owner.wait(timeout=DEADLINE_S)

        wait_for(lambda: process_gone(child_pid), f"the orphaned nx-27017 (pid {child_pid}) exited")
        assert not listening(port)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


def test_restart_after_a_sigkill_serves_the_same_file_on_the_same_port(tmp_path: Path) -> None:
    with EmbeddedMongo(tmp_path) as server:
        port, first_pid = server.port, server.pid
        with MongoClient(server.uri, serverSelectionTimeoutMS=5000) as client:
            client.t.c.insert_one({"_id": "kept"})
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)
        wait_for(lambda: not server.running, "the killed server is seen as exited")
        assert server.exit_code == -signal.SIGKILL
        with pytest.raises(EmbeddedMongoError):
            EmbeddedMongo(tmp_path / "other").restart()  # never started: no port to come back on
        server.restart()
        assert server.port == port and server.pid != first_pid and server.exit_code is None
        with MongoClient(server.uri, serverSelectionTimeoutMS=5000) as client:
            assert client.t.c.find_one({"_id": "kept"}) == {"_id": "kept"}
        with pytest.raises(EmbeddedMongoError, match="still running"):
            server.restart()


def test_a_private_server_listens_only_on_a_socket_in_its_data_dir(tmp_path: Path) -> None:
    with EmbeddedMongo(tmp_path / "db", private=True) as server:
        assert server.socket_path == (tmp_path / "db" / "nx-27017.sock").resolve()
        assert server.uri.startswith("mongodb://%2F") and server.uri.endswith("nx-27017.sock/?directConnection=true")
        assert ping(server.uri)["ok"] == 1
        with pytest.raises(EmbeddedMongoError, match="already serves"):
            EmbeddedMongo(tmp_path / "db", private=True).start()  # one server per data dir
        pid = server.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not server.running, "the killed server is seen as exited")
        server.restart()  # over the socket its predecessor left behind
        assert ping(server.uri)["ok"] == 1
    assert not (tmp_path / "db" / "nx-27017.sock").exists()


def test_a_private_server_with_a_long_data_dir_puts_its_socket_in_a_private_directory(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    with EmbeddedMongo(deep, private=True) as server:
        socket_path = server.socket_path
        assert socket_path is not None and not socket_path.is_relative_to(deep)
        assert socket_path.parent.stat().st_mode & 0o777 == 0o700
        assert ping(server.uri)["ok"] == 1
    assert not socket_path.parent.exists()
