"""``nexysync-server dev`` as a newcomer runs it: starts, says where it is, stops cleanly, keeps data."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx
import pytest
from pymongo import MongoClient

if TYPE_CHECKING:
    from conftest import DevServer

pytestmark = pytest.mark.e2e

STOP_DEADLINE_S = 30.0


def process_gone(pid: int) -> bool:
    """Tell whether ``pid`` has exited (a zombie waiting for its reaper counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    except OSError:
        try:  # no /proc (macOS)
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return any(line.startswith("State:") and "Z" in line.split()[1] for line in status.splitlines())


def databases_running_in(data_dir: Path) -> list[int]:
    """Return the pids of live nx-27017 processes whose files are in ``data_dir`` (Linux; else [])."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue  # exited while we looked
        if "nx_27017" in cmdline and str(data_dir) in cmdline and not process_gone(int(proc.name)):
            pids.append(int(proc.name))
    return pids


def listening(port: int) -> bool:
    """Tell whether something accepts TCP connections on loopback ``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def register(base_url: str, email: str, password: str) -> dict[str, object]:
    """Create a user account and return the token pair."""
    response = httpx.post(
        f"{base_url}/v1/auth/register",
        json={"email": email, "name": "Ada", "password": password, "tos_accepted": True},
        timeout=10.0,
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_dev_prints_its_urls_serves_the_spec_and_stops_cleanly_on_sigterm(
    tmp_path: Path, dev_servers: Callable[[Path], DevServer]
) -> None:
    data_dir = tmp_path / "data"
    server = dev_servers(data_dir)

    banner = server.banner()
    assert banner["API"] == f"{server.base_url}/v1"
    assert banner["Spec"] == f"{server.base_url}/v1/openapi.yaml"
    # A unix socket in the data dir, not TCP: only the owner can reach the database.
    socket_path = data_dir.resolve() / "nx-27017.sock"
    assert banner["Database"] == f"mongodb://{quote(str(socket_path), safe='')}/?directConnection=true"

    spec = httpx.get(banner["Spec"], timeout=10.0)
    assert spec.status_code == 200
    assert spec.text.startswith("openapi: 3.1")

    db_pid = server.database_pid()
    with MongoClient(banner["Database"], serverSelectionTimeoutMS=5000) as client:
        assert client.admin.command("serverStatus")["pid"] == db_pid

    secret_file = data_dir / "jwt_secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600

    if Path("/proc").is_dir():  # the scan below needs /proc; prove it sees the running database
        assert databases_running_in(data_dir) == [db_pid]

    assert server.stop(signal.SIGTERM) == 0, server.output()
    # The API and the CDN share uvicorn's logger: its start-up lines appear once, not twice.
    assert server.output().count("Application startup complete.") == 1, server.output()
    # The database is stopped before the command returns, not left to die on its own.
    assert process_gone(db_pid)
    assert databases_running_in(data_dir) == []
    assert not listening(server.port)
    assert not socket_path.exists()


def test_accounts_and_tokens_survive_a_restart_on_the_same_data_dir(
    tmp_path: Path, dev_servers: Callable[[Path], DevServer]
) -> None:
    data_dir = tmp_path / "data"
    first = dev_servers(data_dir)
    tokens = register(first.base_url, "ada@example.com", "correct horse battery")
    secret = (data_dir / "jwt_secret").read_text()
    # Ctrl-C, as a person at a terminal would stop it.
    assert first.stop(signal.SIGINT) == 0, first.output()
    assert databases_running_in(data_dir) == []

    second = dev_servers(data_dir)

    login = httpx.post(
        f"{second.base_url}/v1/auth/login",
        json={"email": "ada@example.com", "password": "correct horse battery"},
        timeout=10.0,
    )
    assert login.status_code == 200, login.text
    assert login.json()["access_token"]
    # The secret was kept, so an access token issued before the restart is still good.
    assert (data_dir / "jwt_secret").read_text() == secret
    projects = httpx.get(
        f"{second.base_url}/v1/projects",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=10.0,
    )
    assert projects.status_code == 200, projects.text
    assert second.stop(signal.SIGTERM) == 0, second.output()
    assert databases_running_in(data_dir) == []


def test_a_taken_api_port_fails_fast_and_leaves_no_database_running(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {key: value for key, value in os.environ.items() if not key.startswith("NEXYSYNC_")}
        command = str(Path(sys.executable).with_name("nexysync-server"))

        result = subprocess.run(
            [command, "dev", "--port", str(port), "--data-dir", str(data_dir)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env,
            timeout=STOP_DEADLINE_S * 2,
        )

    assert result.returncode != 0
    # It says what to do: another port, and how the CLI then finds the API.
    assert f"the API cannot listen on 127.0.0.1:{port}" in result.stderr
    assert f"--port {port + 10}" in result.stderr and f"NEXYSYNC_API_URL=http://127.0.0.1:{port + 10}" in result.stderr
    assert databases_running_in(data_dir) == []


# Run as another local user: can it reach the database, or read its files? (stdlib only, so that
# any python3 works for it; it prints what it got, one line per attempt.)
_INTRUDER = """
import socket, sys
from urllib.parse import unquote, urlsplit
uri, db_file = sys.argv[1], sys.argv[2]
netloc = urlsplit(uri).netloc
try:
    if netloc.startswith("%2F"):
        probe = socket.socket(socket.AF_UNIX)
        probe.connect(unquote(netloc))
    else:
        host, port = netloc.rsplit(":", 1)
        probe = socket.create_connection((host, int(port)), timeout=5)
    print("connect: reached")
except OSError as exc:
    print(f"connect: {type(exc).__name__}")
try:
    open(db_file, "rb").read(16)
    print("read: reached")
except OSError as exc:
    print(f"read: {type(exc).__name__}")
"""


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root to act as another user")
def test_another_local_user_can_neither_reach_the_database_nor_read_its_files(
    tmp_path: Path, dev_servers: Callable[[Path], DevServer]
) -> None:
    # Outside pytest's own 0700 temp dir, in a directory anyone may enter, and a data dir that an
    # older version made open: only the data dir's own permissions may keep the other user out.
    parent = Path(tempfile.mkdtemp(prefix="nexysync-private-"))
    try:
        parent.chmod(0o755)
        data_dir = parent / "data"
        data_dir.mkdir(mode=0o755)
        data_dir.chmod(0o755)
        (data_dir / "nexysync.db").touch(mode=0o644)
        (data_dir / "nexysync.db").chmod(0o644)
        server = dev_servers(data_dir)
        uri = server.banner()["Database"]

        assert data_dir.stat().st_mode & 0o777 == 0o700
        for entry in data_dir.iterdir():
            if entry.is_file():
                assert entry.stat().st_mode & 0o777 == 0o600, entry
        nobody = pwd.getpwnam("nobody")

        def become_nobody() -> None:
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)

        python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
        attempt = subprocess.run(
            [python, "-c", _INTRUDER, uri, str(data_dir / "nexysync.db")],
            capture_output=True,
            text=True,
            timeout=30,
            preexec_fn=become_nobody,
            cwd="/",
            check=False,
        )

        assert attempt.stdout.splitlines() == ["connect: PermissionError", "read: PermissionError"], attempt
        with MongoClient(uri, serverSelectionTimeoutMS=5000) as owner:
            assert owner.admin.command("ping")["ok"] == 1  # its owner still can
    finally:
        shutil.rmtree(parent, ignore_errors=True)
