"""Fixtures shared by every test: an embedded MongoDB and real ``nexysync-server dev`` processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

from nexysync_server.store.embedded import EmbeddedMongo, free_port
from server_env import TEST_SERVER_ENV

DEV_START_DEADLINE_S = 60.0
DEV_STOP_DEADLINE_S = 30.0


@pytest.fixture(scope="session")
def mongo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedMongo]:
    """Run one nx-27017 for the session, in a temp dir on a free port; stop it at the end."""
    with EmbeddedMongo(tmp_path_factory.mktemp("mongo")) as server:
        yield server


@pytest.fixture(scope="session")
def mongo_uri(mongo: EmbeddedMongo) -> str:
    """Connection string of the session's embedded MongoDB."""
    return mongo.uri


class DevServer:
    """One ``nexysync-server dev`` subprocess on a free loopback port, its output captured in files.

    Attributes:
        data_dir: Its ``--data-dir`` (database file, logs, JWT secret).
        port: The API's port.
        base_url: ``http://127.0.0.1:<port>``; the API is under ``/v1``.

    Args:
        data_dir: The ``--data-dir`` to use.
        logs_dir: Where its stdout and stderr are written.
    """

    def __init__(self, data_dir: Path, logs_dir: Path, settings: dict[str, str] | None = None) -> None:
        self.settings = settings or {}
        self.data_dir = data_dir
        self.port = free_port()
        logs_dir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = logs_dir / f"dev-{self.port}.out"
        self.stderr_path = logs_dir / f"dev-{self.port}.err"
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._files: list[IO[bytes]] = []

    def start(self) -> DevServer:
        """Start it and wait until ``/v1/health/ready`` answers 200."""
        command = str(Path(sys.executable).with_name("nexysync-server"))
        assert Path(command).exists(), f"nexysync-server is not installed next to {sys.executable}"
        # The server must not pick up settings from the shell that runs the tests.
        # Nor prometheus-client's directory, which importing the gunicorn config sets here.
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("NEXYSYNC_") and key != "PROMETHEUS_MULTIPROC_DIR"
        }
        env.update(TEST_SERVER_ENV)
        env.update(self.settings)
        stdout, stderr = self.stdout_path.open("wb"), self.stderr_path.open("wb")
        self._files = [stdout, stderr]
        self.process = subprocess.Popen(
            [command, "dev", "--port", str(self.port), "--data-dir", str(self.data_dir)],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=env,
        )
        deadline = time.monotonic() + DEV_START_DEADLINE_S
        while not self._ready():
            if time.monotonic() > deadline:
                pytest.fail(f"{self.base_url}/v1/health/ready did not answer 200 within {DEV_START_DEADLINE_S:g} s")
            time.sleep(0.05)
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            pytest.fail(f"nexysync-server dev exited with {self.process.returncode}:\n{self.output()}")
        try:
            return httpx.get(f"{self.base_url}/v1/health/ready", timeout=2.0).status_code == 200
        except httpx.TransportError:
            return False

    def output(self) -> str:
        """Everything it printed so far, stdout then stderr."""
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")

    def banner(self) -> dict[str, str]:
        """The ``Label: value`` lines it printed on stdout, e.g. ``{"API": "http://..."}``."""
        lines = self.stdout_path.read_text(errors="replace").splitlines()
        return dict(match.groups() for line in lines if (match := re.match(r"^\s+([\w ]+):\s+(\S+)\s*$", line)))

    def database_pid(self) -> int:
        """Process id of its nx-27017, from the pid file in the data dir."""
        return int((self.data_dir / "nx-27017.pid").read_text().strip())

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send ``signum`` and return the exit code, which must come within the deadline."""
        assert self.process is not None
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=DEV_STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"nexysync-server dev still runs {DEV_STOP_DEADLINE_S:g} s after signal {signum}")

    def kill(self) -> None:
        """Make sure nothing is left running, whatever happened in the test."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for handle in self._files:
            handle.close()


@pytest.fixture
def dev_servers(tmp_path: Path) -> Iterator[Callable[..., DevServer]]:
    """Start ``nexysync-server dev`` processes on a given data dir; kill any still running at the end."""
    started: list[DevServer] = []

    def start(data_dir: Path, settings: dict[str, str] | None = None) -> DevServer:
        server = DevServer(data_dir, tmp_path / "logs", settings)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.kill()


@pytest.fixture(scope="module")
def module_dev_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., DevServer]]:
    """Like ``dev_servers``, for servers that several tests of one module share."""
    root = tmp_path_factory.mktemp("module-dev")
    started: list[DevServer] = []

    def start(settings: dict[str, str] | None = None) -> DevServer:
        server = DevServer(root / f"data-{len(started)}", root / "logs", settings)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.kill()


@pytest.fixture(scope="session")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """One ``nexysync-server dev`` for the session, in its own temp data dir; stopped at the end."""
    root = tmp_path_factory.mktemp("dev-server")
    # Tests make many agents and thousands of messages in one project; quotas have their own test.
    roomy = {
        "NEXYSYNC_QUOTA_AGENTS": "1000",
        "NEXYSYNC_QUOTA_MESSAGES_PER_DAY": "1000000",
        "NEXYSYNC_RATE_LIMIT_PER_MINUTE": "1000000",
    }
    server = DevServer(root / "data", root / "logs", roomy)
    try:
        yield server.start()
        server.stop(signal.SIGTERM)
    finally:
        server.kill()
