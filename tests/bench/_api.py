"""What the send benchmarks share: an embedded database with one API process, and a seeded project.

Named with a leading underscore so that ``tox -e bench`` (which runs ``bench_*.py``) does not run it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from nexysync_server.ids import new_id
from nexysync_server.store.embedded import EmbeddedMongo, free_port

READY_DEADLINE_S = 60.0


@dataclass(frozen=True)
class RunningApi:
    """One API process (uvicorn, one worker) on a fresh embedded database."""

    mongo_uri: str
    port: int
    api_pid: int
    mongo_pid: int

    @property
    def base_url(self) -> str:
        """The API's address."""
        return f"http://127.0.0.1:{self.port}"


API_APP = "nexysync_server.app:create_app"
CDN_APP = "nexysync_server.cdn.app:create_cdn_app"


def start_api(
    mongo_uri: str, port: int, *, app: str = API_APP, ready_path: str = "/v1/health/ready", **settings: str
) -> subprocess.Popen[bytes]:
    """Start one process of ``app`` (uvicorn, one worker) on ``port``; return it once ``ready_path`` answers 200.

    Every process started here shares the JWT and CDN secrets, so an API and a CDN work together.
    """
    env = {
        **os.environ,
        "NEXYSYNC_MONGODB_URI": mongo_uri,
        "NEXYSYNC_JWT_SECRET": "bench-" + "x" * 32,
        "NEXYSYNC_CDN_SECRET": "bench-" + "c" * 32,
        # The benchmarks send far more than an agent may per minute in production.
        "NEXYSYNC_RATE_LIMIT_PER_MINUTE": "100000000",
        "NEXYSYNC_QUOTA_MESSAGES_PER_DAY": "100000000",
        **settings,
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", app]
    command += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    api = subprocess.Popen(command, env=env)
    try:
        _wait_ready(f"http://127.0.0.1:{port}{ready_path}", api)
    except BaseException:
        api.kill()
        api.wait()
        raise
    return api


@contextmanager
def running_api() -> Iterator[RunningApi]:
    """Start an embedded database and one API process; stop both at the end."""
    with tempfile.TemporaryDirectory() as tmp, EmbeddedMongo(Path(tmp) / "db") as mongo:
        port = free_port()
        api = start_api(mongo.uri, port)
        try:
            assert mongo.pid is not None
            yield RunningApi(mongo.uri, port, api.pid, mongo.pid)
        finally:
            api.terminate()
            api.wait(timeout=30)


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system) a process has used so far, from ``/proc/<pid>/stat`` (Linux)."""
    # Fields 14 and 15 (utime, stime) in clock ticks; the name in parentheses may hold spaces.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not become ready")


def seed(base_url: str) -> tuple[str, str]:
    """Register an owner, make a project with agents sender and receiver; return (project id, sender key)."""
    project_id, keys = seed_keys(base_url)
    return project_id, keys["sender"]


def seed_keys(base_url: str) -> tuple[str, dict[str, str]]:
    """Register an owner, make a project with agents sender and receiver; return the project id and keys."""
    with httpx.Client(base_url=base_url, timeout=10) as http:
        tokens = http.post(
            "/v1/auth/register",
            json={
                "email": f"bench-{new_id().lower()}@example.test",
                "name": "Bench",
                "password": "benchmark!",
                "tos_accepted": True,
            },
        ).json()
        http.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        project_id = http.post("/v1/projects", json={"name": "bench"}).json()["id"]
        keys = {}
        for slug in ("sender", "receiver"):
            created = http.post(f"/v1/projects/{project_id}/agents", json={"slug": slug, "name": slug.title()})
            created.raise_for_status()
            keys[slug] = created.json()["api_key"]
    return project_id, keys
