"""Fault injection for the reliability tests and the soak: production-shaped processes to kill and starve.

- :class:`Served` runs ``nexysync-server serve`` (the API under gunicorn) or ``nexysync-server cdn``
  against a database the test owns, so the test can kill that database, or a worker, and watch.
- :func:`limit_file_size` fills a process's disk without root: it lowers the process's
  ``RLIMIT_FSIZE`` from outside (``prlimit``), so every write past the limit fails with ``EFBIG``
  (Python ignores ``SIGXFSZ``), and raises it again to give the space back. With a limit of 0 no
  regular file of that process may be written at all: stricter than a real full disk (where
  pages already allocated can be rewritten), never laxer.
"""

from __future__ import annotations

import itertools
import os
import resource
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import httpx

from nexysync.crypto import KeyRing, new_key
from nexysync_server.store.embedded import free_port

START_DEADLINE_S = 60.0
STOP_DEADLINE_S = 45.0  # above gunicorn's graceful_timeout of 30 s
JWT_SECRET = "a-test-secret-that-is-long-enough-for-hs256"
CDN_SECRET = "a-cdn-secret-that-is-long-enough-for-hmac"


def wait_for(condition: Callable[[], Any], what: str, timeout: float, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something true; return it, or raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting until {what}")
        time.sleep(interval)


def limit_file_size(pid: int, limit: int | None) -> None:
    """Let process ``pid`` write regular files only below ``limit`` bytes (``None``: no limit again)."""
    _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard if limit is None else limit, hard))


def children(pid: int) -> list[int]:
    """Return the process ids of ``pid``'s children (a gunicorn arbiter's workers)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:  # gone (FileNotFoundError), or being reaped as we read (ProcessLookupError)
        return []
    return [int(part) for part in text.split()]


def alive(pid: int) -> bool:
    """Tell whether a process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # gone, or being reaped as we read (ProcessLookupError)
        return False
    return state != "Z"


class Served:
    """One ``nexysync-server serve`` (API) or ``cdn`` process tree on a free loopback port.

    Args:
        command: ``serve`` or ``cdn``.
        logs_dir: Where its output goes.
        env: ``NEXYSYNC_*`` settings (the shell's own are dropped).
        workers: Gunicorn workers.
    """

    def __init__(self, command: str, logs_dir: Path, env: dict[str, str], workers: int = 1) -> None:
        self.command = command
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        logs_dir.mkdir(parents=True, exist_ok=True)
        self.out_path = logs_dir / f"{command}-{self.port}.out"
        self.err_path = logs_dir / f"{command}-{self.port}.err"
        self._env = {key: value for key, value in os.environ.items() if not key.startswith("NEXYSYNC_")} | env
        self.process: subprocess.Popen[bytes] | None = None
        self._files: list[IO[bytes]] = []

    @property
    def ready_path(self) -> str:
        """The path that answers 200 once it can serve."""
        return "/v1/health/ready" if self.command == "serve" else "/health"

    def start(self) -> Served:
        """Start it and wait until it is ready."""
        executable = str(Path(sys.executable).with_name("nexysync-server"))
        self._files = [self.out_path.open("ab"), self.err_path.open("ab")]
        self.process = subprocess.Popen(
            [executable, self.command, "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers)],
            stdin=subprocess.DEVNULL,
            stdout=self._files[0],
            stderr=self._files[1],
            env=self._env,
        )
        self.wait_ready()
        return self

    def ready(self) -> bool:
        """Tell whether it answers 200 on its readiness path."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.command} exited with {self.process.returncode}:\n{self.output()}")
        try:
            return httpx.get(self.base_url + self.ready_path, timeout=2.0).status_code == 200
        except httpx.TransportError:
            return False

    def wait_ready(self, timeout: float = START_DEADLINE_S) -> None:
        """Wait until it is ready with all its workers."""
        wait_for(self.ready, f"{self.base_url}{self.ready_path} answers 200", timeout)
        assert self.process is not None
        wait_for(lambda: len(children(self.process.pid)) >= self.workers, f"{self.workers} workers run", timeout)

    def worker_pids(self) -> list[int]:
        """Return the pids of its gunicorn workers."""
        assert self.process is not None
        return children(self.process.pid)

    def output(self) -> str:
        """What it printed so far."""
        return self.out_path.read_text(errors="replace") + self.err_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM it and return its exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_DEADLINE_S)
        finally:
            self.kill()

    def kill(self) -> None:
        """Make sure nothing of it is left running."""
        if self.process is not None and self.process.poll() is None:
            workers = self.worker_pids()
            self.process.kill()
            self.process.wait()
            for pid in workers:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
        for handle in self._files:
            handle.close()
        self._files = []


def api_env(mongo_uri: str, db_name: str, **extra: str) -> dict[str, str]:
    """Return the settings of an API (or CDN) process on ``mongo_uri``, roomy enough for load tests."""
    return {
        "NEXYSYNC_MONGODB_URI": mongo_uri,
        "NEXYSYNC_DB_NAME": db_name,
        "NEXYSYNC_JWT_SECRET": JWT_SECRET,
        "NEXYSYNC_CDN_SECRET": CDN_SECRET,
        "NEXYSYNC_QUOTA_AGENTS": "1000",
        "NEXYSYNC_QUOTA_MESSAGES_PER_DAY": "1000000",
        "NEXYSYNC_RATE_LIMIT_PER_MINUTE": "1000000",
        **extra,
    }


def seed_team(base_url: str, slugs: list[str]) -> tuple[str, dict[str, str], KeyRing]:
    """Register an owner, make a project and one agent per slug; return the project id, the API keys and a key ring."""
    with httpx.Client(base_url=base_url, timeout=10) as http:
        tokens = http.post(
            "/v1/auth/register",
            json={
                "email": f"fault-{secrets.token_hex(5)}@example.test",
                "name": "Faults",
                "password": "fault-pass-long",
                "tos_accepted": True,
            },
        )
        tokens.raise_for_status()
        http.headers["Authorization"] = f"Bearer {tokens.json()['access_token']}"
        project = http.post("/v1/projects", json={"name": "faults"})
        project.raise_for_status()
        project_id = project.json()["id"]
        keys: dict[str, str] = {}
        for slug in slugs:
            created = http.post(f"/v1/projects/{project_id}/agents", json={"slug": slug, "name": slug})
            created.raise_for_status()
            keys[slug] = created.json()["api_key"]
    return project_id, keys, KeyRing([new_key()])


class Receiver:
    """An agent's application: its SDK stream read in a thread, each message kept once, keyed by id.

    Attributes:
        seqs: The ``seq`` of every event the stream handed over, in arrival order.
        announced: Message id -> how many ``new_message`` events named it (more than one is a
            re-announcement: a retry of a send whose first try stored the message but died
            before its event; the application keeps the message once).
    """

    def __init__(self, client: Any, *, watchdog_s: float = 10.0) -> None:
        self.seqs: list[int] = []
        self.announced: dict[str, int] = {}
        self.resets = 0
        self.error: BaseException | None = None
        self.client = client
        self._stream = client.stream(watchdog_s=watchdog_s)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="receiver", daemon=True)

    def start(self) -> Receiver:
        """Fix the stream's position (nothing sent from now on is missed), then read it in the background."""
        self._stream.open()
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for event in self._stream:
                with self._lock:
                    self.seqs.append(event.seq)
                    if event.type == "reset":
                        self.resets += 1
                    elif event.type == "new_message":
                        message_id = str(event.data["id"])
                        self.announced[message_id] = self.announced.get(message_id, 0) + 1
        except BaseException as exc:
            self.error = exc

    def received(self) -> set[str]:
        """Return the ids of the messages that have reached the application."""
        with self._lock:
            return set(self.announced)

    def has_all(self, ids: set[str]) -> bool:
        """Tell whether every one of ``ids`` has reached the application."""
        with self._lock:
            return ids <= self.announced.keys()

    def out_of_order(self) -> int:
        """Count events handed over below the ``seq`` of an earlier one (repeats not included)."""
        with self._lock:
            return sum(1 for before, after in itertools.pairwise(self.seqs) if after < before)

    def duplicates(self) -> int:
        """Count events handed over twice (the same ``seq`` again)."""
        with self._lock:
            return len(self.seqs) - len(set(self.seqs))

    def reannounced(self) -> int:
        """Count the extra announcements of messages the application already had."""
        with self._lock:
            return sum(count - 1 for count in self.announced.values())

    def stop(self) -> None:
        """Close the stream and wait for the reader."""
        self._stream.close()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
