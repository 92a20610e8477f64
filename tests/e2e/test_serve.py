"""``nexysync-server serve``: gunicorn with uvicorn workers, as production runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from nexysync_server.store.embedded import free_port
from server_env import TEST_SERVER_ENV

pytestmark = pytest.mark.e2e

START_DEADLINE_S = 60.0
STOP_DEADLINE_S = 45.0  # above gunicorn's graceful_timeout of 30 s


def wait_for(condition: Callable[[], bool], what: str, timeout: float) -> None:
    """Poll ``condition`` until it holds; fail the test with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting until {what}")
        time.sleep(0.05)


def test_serve_runs_gunicorn_logs_request_ids_and_stops_gracefully(mongo_uri: str, tmp_path: Path) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("NEXYSYNC_")}
    env |= {
        **TEST_SERVER_ENV,
        "NEXYSYNC_MONGODB_URI": mongo_uri,
        "NEXYSYNC_DB_NAME": "serve_e2e",
        "NEXYSYNC_JWT_SECRET": "a-test-secret-that-is-long-enough-for-hs256",
    }
    command = [str(Path(sys.executable).with_name("nexysync-server")), "serve", "--bind", f"127.0.0.1:{port}"]
    out_path, err_path = tmp_path / "serve.out", tmp_path / "serve.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        process = subprocess.Popen(
            [*command, "--workers", "2"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env,
        )
        try:

            def ready() -> bool:
                if process.poll() is not None:
                    pytest.fail(f"serve exited with {process.returncode}:\n{err_path.read_text()}")
                try:
                    return httpx.get(f"{base_url}/v1/health/ready", timeout=2.0).status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(ready, f"{base_url}/v1/health/ready answers 200", START_DEADLINE_S)
            # serve became gunicorn (exec): signals from a supervisor reach the arbiter itself.
            assert b"gunicorn" in Path(f"/proc/{process.pid}/cmdline").read_bytes()

            response = httpx.get(f"{base_url}/v1/health/live", headers={"X-Request-Id": "e2e-trace-1"}, timeout=5.0)
            assert response.headers["X-Request-Id"] == "e2e-trace-1"
            wait_for(
                lambda: "request_id=e2e-trace-1" in out_path.read_text(),
                "the access log shows the request id",
                10.0,
            )
            assert '"GET /v1/health/live HTTP/1.1" 200 request_id=e2e-trace-1' in out_path.read_text()

            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=STOP_DEADLINE_S) == 0, err_path.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
