"""The soak: agents doing mixed work against production-shaped processes while faults are injected.

Processes: one nx-27017 (the database), ``nexysync-server serve`` with two gunicorn workers, and
``nexysync-server cdn``. The agents reach the API through :class:`Proxy`, a TCP relay that can cut
every open connection at once (a network blip: streams drop, requests in flight fail).

Each agent runs a worker thread doing direct messages, broadcasts, kv writes, code references,
file uploads and acks of what it received, through the SDK, retrying what fails with the same ids
until the server acknowledges it; and a :class:`fault_support.Receiver`, its application, reading
its SDK stream. A fault thread injects, at random: the database killed (SIGKILL) and restarted, its
disk filled (writes fail) and emptied, an API worker killed (SIGKILL), every connection cut.

:func:`run` returns the :class:`Figures`; the test asserts on them.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import re
import signal
import socket
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from fault_support import Receiver, Served, alive, api_env, limit_file_size, seed_team, wait_for
from nexysync import APIError, Client
from nexysync_server.ids import new_id
from nexysync_server.store.embedded import EmbeddedMongo, free_port

T = TypeVar("T")

AGENTS = ("ada", "bob", "cy")
# What the agents do, by weight.
OPERATIONS = {"direct": 35, "broadcast": 10, "kv": 20, "ref": 10, "file": 5, "ack": 20}
# A client gives up on one operation after this long; no fault lasts nearly as long.
GIVE_UP_S = 120.0
# Statuses a client waits out and retries (no answer at all is None); anything else is a failure.
RETRYABLE = frozenset({None, 429, 502, 503, 504})
_ACCESS_STATUS = re.compile(rb'HTTP/1\.[01]" (5\d\d) ')


class Proxy:
    """A TCP relay from a local port to ``upstream``; :meth:`cut` drops every open connection.

    Args:
        upstream: ``(host, port)`` to relay to.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", free_port()))
        self.port = self._listener.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name="proxy", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._open |= {client, server}
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                self._close(end)

    def _close(self, end: socket.socket) -> None:
        with self._lock:
            self._open.discard(end)
        with contextlib.suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)
        end.close()

    def cut(self) -> int:
        """Drop every open connection, as a network blip would; return how many were cut."""
        with self._lock:
            ends = list(self._open)
        for end in ends:
            self._close(end)
        return len(ends) // 2

    def close(self) -> None:
        """Stop relaying."""
        self._closed = True
        self._listener.close()
        self.cut()


@dataclass
class Ledger:
    """Every write the server acknowledged, to check afterwards."""

    messages: dict[str, set[str]] = field(default_factory=dict)  # id -> recipients' slugs
    kv: dict[str, str] = field(default_factory=dict)  # key -> last acknowledged value
    refs: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)
    acks: dict[str, set[str]] = field(default_factory=dict)  # slug -> message ids it acked


@dataclass
class Figures:
    """What the soak measured."""

    seconds: float = 0.0
    operations: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    longest_outage_s: float = 0.0
    lost: int = 0
    duplicates: int = 0
    reannounced: int = 0
    out_of_order: int = 0
    answers_5xx: Counter[str] = field(default_factory=Counter)  # status -> how many, from the access logs
    failures: list[str] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)

    def report(self) -> str:
        """Describe the figures, one per line."""
        rounds = " ".join(f"{value:.0f}" for value in self.rss_mib)
        return "\n".join(
            [
                f"soak: {self.seconds:.0f} s, {sum(self.operations.values())} operations acknowledged "
                f"({', '.join(f'{kind} {count}' for kind, count in sorted(self.operations.items()))})",
                f"soak: {sum(self.faults.values())} faults injected "
                f"({', '.join(f'{kind} {count}' for kind, count in sorted(self.faults.items()))})",
                f"soak: {self.retries} retries by the clients beyond the SDK's own; longest client outage (wait for "
                f"one acknowledged operation, retries included) {self.longest_outage_s:.2f} s",
                f"soak: lost={self.lost} duplicates={self.duplicates} out_of_order={self.out_of_order} "
                f"re-announced (kept once by id)={self.reannounced}",
                f"soak: 5xx answers: {dict(sorted(self.answers_5xx.items()))} (500 must be absent)",
                f"soak: API worker RSS per round (MiB, mean of the workers): {rounds}",
                *(f"soak: FAILURE {failure}" for failure in self.failures),
            ]
        )


class Agent:
    """One agent: a worker thread doing mixed operations and its application reading its stream."""

    def __init__(self, soak: Soak, slug: str, key: str) -> None:
        self.soak = soak
        self.slug = slug
        self.client = Client(base_url=soak.proxy.base_url, api_key=key, key_ring=soak.ring, project_id=soak.project_id)
        self.receiver = Receiver(
            Client(base_url=soak.proxy.base_url, api_key=key, key_ring=soak.ring, project_id=soak.project_id),
            watchdog_s=5,
        )
        self.rand = random.Random(f"{soak.seed}-{slug}")
        self.acked: set[str] = set()
        self.kv_writes = 0
        self.thread = threading.Thread(target=self._run, name=f"agent-{slug}", daemon=True)

    def _run(self) -> None:
        kinds, weights = zip(*OPERATIONS.items(), strict=True)
        kind = ""
        try:
            while not self.soak.stopping.is_set():
                kind = self.rand.choices(kinds, weights)[0]
                if getattr(self, f"_{kind}")():
                    self.soak.count(kind)
        except BaseException as exc:
            self.soak.fail(f"{self.slug} ({kind}): {type(exc).__name__}: {exc}")

    def attempt(self, what: str, call: Callable[[], T]) -> T:
        """Run ``call`` until the server acknowledges it; note retries and the outage it saw."""
        started = time.monotonic()
        while True:
            try:
                result = call()
            except APIError as error:
                status = getattr(error, "status", None)
                # An upload whose answer was lost while the database was down may still hold its
                # lease (its release failed too): the error says to retry, and a new upload can.
                waits = status in RETRYABLE or getattr(error, "code", None) == "UPLOAD_IN_PROGRESS"
                if not waits or time.monotonic() - started > GIVE_UP_S:
                    raise
                self.soak.note_retry()
                time.sleep(0.1 + 0.2 * self.rand.random())
                continue
            # Through the SDK's own retries (which wait out Retry-After) and ours: what the user waited.
            self.soak.note_wait(time.monotonic() - started)
            return result

    def _others(self) -> list[str]:
        return [slug for slug in AGENTS if slug != self.slug]

    def _direct(self) -> bool:
        to = self.rand.choice(self._others())
        message_id = new_id()
        self.attempt("send", lambda: self.client.messages.send(to, topic="soak", payload=message_id, id=message_id))
        self.soak.ledger.messages[message_id] = {to}
        return True

    def _broadcast(self) -> bool:
        message_id = new_id()
        self.attempt(
            "broadcast",
            lambda: self.client.messages.send(topic="soak", payload=message_id, broadcast=True, id=message_id),
        )
        self.soak.ledger.messages[message_id] = set(self._others())
        return True

    def _kv(self) -> bool:
        self.kv_writes += 1
        key, value = f"soak.{self.slug}", f"{self.slug}-{self.kv_writes}"
        self.attempt("kv", lambda: self.client.kv.put(key, value))
        self.soak.ledger.kv[key] = value
        return True

    def _ref(self) -> bool:
        ref_id = new_id()
        self.attempt("ref", lambda: self.client.refs.share("soak", f"print({ref_id!r})", language="python", id=ref_id))
        self.soak.ledger.refs.add(ref_id)
        return True

    def _file(self) -> bool:
        content = self.rand.randbytes(self.rand.randint(1, 8) * 1024)
        stored = self.attempt("file", lambda: self.client.files.upload(io.BytesIO(content), name="soak.bin"))
        self.soak.ledger.files.add(stored.id)
        return True

    def _ack(self) -> bool:
        batch = sorted(self.receiver.received() - self.acked)[:20]
        if not batch:
            return False
        self.attempt("ack", lambda: self.client.messages.ack(batch))
        self.acked.update(batch)
        self.soak.ledger.acks.setdefault(self.slug, set()).update(batch)
        return True


class Soak:
    """The processes, the agents and the faults of one soak run.

    Args:
        root: A scratch directory.
        seconds: How long the agents work (faults included).
        seed: Seeds every random choice.
    """

    def __init__(self, root: Path, seconds: float, seed: int) -> None:
        self.root = root
        self.seconds = seconds
        self.seed = seed
        self.figures = Figures()
        self.ledger = Ledger()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self.database = EmbeddedMongo(root / "db")
        files_dir = root / "files"
        self._env = api_env("", "soak", NEXYSYNC_HEARTBEAT_S="1", NEXYSYNC_FILES_DIR=str(files_dir))
        self.cdn: Served | None = None
        self.api: Served | None = None
        self.proxy: Proxy
        self.project_id = ""
        self.ring: Any = None
        self.agents: list[Agent] = []

    # --- bookkeeping, from the agents' threads ---

    def count(self, kind: str) -> None:
        """Count an acknowledged operation."""
        with self._lock:
            self.figures.operations[kind] += 1

    def note_retry(self) -> None:
        """Count a client retry."""
        with self._lock:
            self.figures.retries += 1

    def note_wait(self, seconds: float) -> None:
        """Note how long a client waited until an operation was acknowledged."""
        with self._lock:
            self.figures.longest_outage_s = max(self.figures.longest_outage_s, seconds)

    def fail(self, failure: str) -> None:
        """Record a failure (the test fails on any)."""
        with self._lock:
            self.figures.failures.append(failure)

    # --- the run ---

    def run(self) -> Figures:
        """Start everything, work and inject faults for ``seconds``, then check and return the figures."""
        self.database.start()
        env = self._env | {"NEXYSYNC_MONGODB_URI": self.database.uri}
        try:
            self.cdn = Served("cdn", self.root / "logs", env).start()
            self.api = Served("serve", self.root / "logs", env | {"NEXYSYNC_CDN_URL": self.cdn.base_url}, workers=2)
            self.api.start()
            self.proxy = Proxy(("127.0.0.1", self.api.port))
            self.project_id, keys, self.ring = seed_team(self.api.base_url, list(AGENTS))
            self.agents = [Agent(self, slug, keys[slug]) for slug in AGENTS]
            for agent in self.agents:
                agent.receiver.start()
            started = time.monotonic()
            for agent in self.agents:
                agent.thread.start()
            self._inject_faults(started)
            self.stopping.set()
            for agent in self.agents:
                agent.thread.join(timeout=GIVE_UP_S + 30)
            self.figures.seconds = time.monotonic() - started
            self._settle()
            self._check()
        finally:
            self.stopping.set()
            for agent in self.agents:
                agent.receiver.stop()
                agent.receiver.client.close()
                agent.client.close()
            with contextlib.suppress(AttributeError):
                self.proxy.close()
            for served in (self.api, self.cdn):
                if served is not None:
                    served.kill()
            self.database.stop()
        for path in (self.root / "logs").glob("*.out"):
            self.figures.answers_5xx.update(code.decode() for code in _ACCESS_STATUS.findall(path.read_bytes()))
        return self.figures

    def _inject_faults(self, started: float) -> None:
        rand = random.Random(self.seed)
        rounds = 6
        round_s = self.seconds / rounds
        next_round = started + round_s
        faults: dict[str, Callable[[random.Random], None]] = {
            "database_kill": self._kill_database,
            "database_disk_full": self._fill_database_disk,
            "worker_kill": self._kill_worker,
            "connections_cut": lambda rand: self._note_cut(),
        }
        order: list[str] = []
        while (now := time.monotonic()) < started + self.seconds and not self.figures.failures:
            if now >= next_round:
                self.figures.rss_mib.append(self._worker_rss_mib())
                next_round += round_s
            time.sleep(rand.uniform(1.5, 4.0))
            if not order:
                # Every kind once per cycle, in a random order: a short run still meets them all.
                order = rand.sample(sorted(faults), len(faults))
            kind = order.pop()
            faults[kind](rand)
            self.figures.faults[kind] += 1
        self.figures.rss_mib.append(self._worker_rss_mib())

    def _kill_database(self, rand: random.Random) -> None:
        pid = self.database.pid
        assert pid is not None, "the database is not running"
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not self.database.running, "the database is dead", 10)
        time.sleep(rand.uniform(0.2, 1.5))  # the outage
        self.database.restart()

    def _fill_database_disk(self, rand: random.Random) -> None:
        pid = self.database.pid
        assert pid is not None, "the database is not running"
        limit_file_size(pid, 0)
        time.sleep(rand.uniform(0.5, 2.0))
        limit_file_size(pid, None)

    def _kill_worker(self, rand: random.Random) -> None:
        assert self.api is not None
        workers = self.api.worker_pids()
        if workers:
            victim = rand.choice(workers)
            os.kill(victim, signal.SIGKILL)
            wait_for(lambda: not alive(victim), "the worker is dead", 10)

    def _note_cut(self) -> None:
        self.proxy.cut()

    def _worker_rss_mib(self) -> float:
        assert self.api is not None
        sizes = []
        for pid in self.api.worker_pids():
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{pid}/status").read_text()
                match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
                if match:
                    sizes.append(int(match.group(1)) / 1024)
        return statistics.fmean(sizes) if sizes else 0.0

    def _settle(self) -> None:
        """Wait until every acknowledged message has reached each recipient's application."""
        assert self.api is not None
        wait_for(self.api.ready, "the API is ready after the faults", 60)
        expected = {
            agent.slug: {mid for mid, to in self.ledger.messages.items() if agent.slug in to} for agent in self.agents
        }
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if all(agent.receiver.has_all(expected[agent.slug]) for agent in self.agents):
                break
            time.sleep(0.2)
        for agent in self.agents:
            self.figures.lost += len(expected[agent.slug] - agent.receiver.received())
            self.figures.out_of_order += agent.receiver.out_of_order()
            self.figures.duplicates += agent.receiver.duplicates()
            self.figures.reannounced += agent.receiver.reannounced()
            if agent.receiver.error is not None:
                self.fail(f"{agent.slug}'s stream ended: {agent.receiver.error!r}")

    def _check(self) -> None:
        """Read back every acknowledged write: each recipient's inbox, the kv entries, refs and files."""
        for agent in self.agents:
            inbox = {message.id: message for message in agent.client.messages.list(limit=100)}
            for message_id, recipients in self.ledger.messages.items():
                if agent.slug not in recipients:
                    continue
                stored = inbox.get(message_id)
                if stored is None:
                    self.lost_write(f"message {message_id} is not in {agent.slug}'s inbox")
                elif stored.payload != message_id:
                    self.fail(f"message {message_id} reads {stored.payload!r} in {agent.slug}'s inbox")
            for message_id in self.ledger.acks.get(agent.slug, set()):
                if message_id not in inbox or inbox[message_id].status.value != "acked":
                    self.lost_write(f"{agent.slug}'s ack of {message_id} is not stored")
        reader = self.agents[0].client
        for key, value in self.ledger.kv.items():
            if reader.kv.get(key).value != value:
                self.lost_write(f"kv {key} lost its last acknowledged write {value}")
        refs = {ref.id for ref in reader.refs.list(limit=100)}
        for ref_id in self.ledger.refs - refs:
            self.lost_write(f"ref {ref_id} is not stored")
        ready = {file.id for file in reader.files.list(limit=100)}
        for file_id in self.ledger.files - ready:
            self.lost_write(f"file {file_id} is not stored (ready)")

    def lost_write(self, failure: str) -> None:
        """Count an acknowledged write that is gone, and record it."""
        self.figures.lost += 1
        self.fail(failure)
