"""Fixtures of the end-to-end tests that start ``nexysync-server`` processes of their own."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from nexysync_server.store.embedded import free_port
from server_env import TEST_SERVER_ENV

START_DEADLINE_S = 60.0


def _wait_ready(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base_url}/v1/health/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"{base_url} never became ready:\n{log.read_text()[-3000:]}")


def _limit_descriptors(count: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (count, count))


@pytest.fixture
def server_processes(mongo_uri: str, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start API processes (any ``nexysync-server`` command line) on one shared database.

    Returns their base URLs; ``pids[base_url]`` gives the process id.
    """
    started: list[subprocess.Popen[bytes]] = []
    pids: dict[str, int] = {}

    def start(args: list[str], settings: dict[str, str] | None = None, descriptors: int | None = None) -> str:
        """Start one server; ``descriptors`` sets its soft and hard limit on open files (as systemd's default does)."""
        # The servers must not pick up settings from the shell that runs the tests.
        # Nor OpenTelemetry's, nor prometheus-client's directory: importing the gunicorn config (a unit test does)
        # sets it in this process, and two servers sharing it would add up each other's metrics.
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("NEXYSYNC_", "OTEL_")) and key != "PROMETHEUS_MULTIPROC_DIR"
        }
        env |= TEST_SERVER_ENV
        env |= {"NEXYSYNC_MONGODB_URI": mongo_uri, "NEXYSYNC_JWT_SECRET": "shared-secret-for-realtime-e2e-tests-0123"}
        env |= settings or {}
        port = free_port()
        log = tmp_path / f"server-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(Path(sys.executable).with_name("nexysync-server")), *args, "--bind", f"127.0.0.1:{port}"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=None if descriptors is None else lambda: _limit_descriptors(descriptors),
            )
        started.append(process)
        base_url = f"http://127.0.0.1:{port}"
        _wait_ready(base_url, process, log)
        pids[base_url] = process.pid
        return base_url

    start.pids = pids  # type: ignore[attr-defined]
    yield start
    for process in started:
        process.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=45)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
