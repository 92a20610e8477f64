"""A gunicorn worker killed with SIGKILL in the middle of sends and streams loses nothing acknowledged."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import httpx
import pytest

from fault_support import Receiver, Served, alive, api_env, seed_team, wait_for
from nexysync import APIError, Client
from nexysync_server.ids import new_id
from nexysync_server.store.embedded import EmbeddedMongo

pytestmark = pytest.mark.e2e

SENDERS = 3
SENDS_PER_KILL = 40


def _try_send(client: Client, message_id: str) -> bool:
    """Send one message; tell whether the server acknowledged it (a failure it may retry is False)."""
    try:
        client.messages.send("bob", topic="t", payload=message_id, id=message_id)
    except APIError as error:
        if getattr(error, "status", None) not in (None, 502, 503, 504):
            raise
        return False
    return True


def test_sigkilled_workers_lose_no_acknowledged_message_and_streams_resume(tmp_path: Path) -> None:
    with EmbeddedMongo(tmp_path / "db") as database:
        api = Served("serve", tmp_path / "logs", api_env(database.uri, "workers", NEXYSYNC_HEARTBEAT_S="1"), workers=2)
        try:
            api.start()
            project_id, keys, ring = seed_team(api.base_url, ["alice", "bob"])
            acknowledged: list[str] = []
            failures: list[BaseException] = []
            stop = threading.Event()

            def sender() -> None:
                with Client(
                    base_url=api.base_url, api_key=keys["alice"], key_ring=ring, project_id=project_id
                ) as alice:
                    while not stop.is_set():
                        message_id = new_id()
                        try:
                            # The client's own retry, with the same id, past the SDK's retries.
                            wait_for(lambda m=message_id: _try_send(alice, m), "the send is acknowledged", 60, 0.2)
                        except BaseException as exc:
                            failures.append(exc)
                            return
                        acknowledged.append(message_id)

            with Client(base_url=api.base_url, api_key=keys["bob"], key_ring=ring, project_id=project_id) as bob:
                receiver = Receiver(bob, watchdog_s=5).start()
                senders = [threading.Thread(target=sender) for _ in range(SENDERS)]
                for thread in senders:
                    thread.start()
                # Both original workers die, mid-send: one of them holds bob's stream.
                for victim in api.worker_pids():
                    goal = len(acknowledged) + SENDS_PER_KILL
                    wait_for(lambda goal=goal: len(acknowledged) >= goal or failures, "sends are acknowledged", 60)
                    os.kill(victim, signal.SIGKILL)
                    wait_for(lambda victim=victim: not alive(victim), "the worker is dead", 10)
                goal = len(acknowledged) + SENDS_PER_KILL
                wait_for(lambda: len(acknowledged) >= goal or failures, "sends go on after the kills", 60)
                stop.set()
                for thread in senders:
                    thread.join(timeout=90)
                assert not failures, failures
                wait_for(lambda: receiver.has_all(set(acknowledged)), "bob's application has every message", 60)
                receiver.stop()
                assert receiver.error is None, receiver.error
                assert receiver.out_of_order() == 0
                assert receiver.duplicates() == 0
                stored = {message.id for message in bob.messages.list(limit=100)}
                assert set(acknowledged) <= stored
                print(f"{len(acknowledged)} sends, 2 workers killed, {receiver.reannounced()} re-announced")
            # gunicorn replaced both workers.
            wait_for(lambda: len(api.worker_pids()) == 2, "gunicorn runs two workers again", 60)
        finally:
            api.kill()


def test_a_worker_replaced_while_the_database_is_down_starts_and_the_server_stays_up(tmp_path: Path) -> None:
    with EmbeddedMongo(tmp_path / "db") as database:
        api = Served("serve", tmp_path / "logs", api_env(database.uri, "replaced"), workers=2)
        try:
            api.start()
            project_id, keys, ring = seed_team(api.base_url, ["alice", "bob"])
            assert database.pid is not None
            os.kill(database.pid, signal.SIGKILL)
            wait_for(lambda: not database.running, "the database is dead", 10)
            old = api.worker_pids()
            os.kill(old[0], signal.SIGKILL)
            replacement = wait_for(lambda: set(api.worker_pids()) - set(old), "gunicorn boots a replacement", 30).pop()

            def started() -> bool:
                output = api.output()
                # Gunicorn stops the whole server when a worker fails to boot: that must not happen.
                assert f"[{replacement}] [ERROR] Application startup failed" not in output, output
                return f"[{replacement}] [INFO] Application startup complete" in output

            wait_for(started, "the replacement worker has started", 30)
            refused = httpx.get(f"{api.base_url}/v1/health/ready", timeout=5)
            assert refused.status_code == 503 and refused.json()["code"] == "DATABASE_UNAVAILABLE"

            database.restart()
            # Every worker, the replacement too, serves again: readiness answers 200 many times in a row.
            wait_for(lambda: all(api.ready() for _ in range(10)), "every worker is ready", 60)
            with Client(base_url=api.base_url, api_key=keys["alice"], key_ring=ring, project_id=project_id) as alice:
                assert alice.messages.send("bob", topic="t", payload="after").payload == "after"
            assert api.process is not None and api.process.poll() is None
        finally:
            api.kill()
