"""The server never sees content: after SDK writes, no file of the server's data dir holds the plaintext."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from scan_support import encodings, files_holding

from nexysync import Client, KeyRing
from nexysync.crypto import new_key

pytestmark = pytest.mark.e2e

#: How long to wait for the database to put the (known, stored) project id on disk.
FLUSH_DEADLINE_S = 30.0


def test_the_data_dir_holds_no_plaintext_of_messages_kv_values_or_refs(dev_server: Any) -> None:
    marker = f"plainmark{secrets.token_hex(12)}"
    owner = Client(base_url=dev_server.base_url)
    owner.auth.register(email=f"plain-{secrets.token_hex(5)}@example.test", name="Plain owner", password="pw-123456")
    project = owner.projects.create(name="plaintext scan")
    ring = KeyRing([new_key()])
    keys = {slug: owner.project_agents.create(project.id, slug=slug, name=slug).api_key for slug in ("alice", "bob")}
    alice = Client(base_url=dev_server.base_url, api_key=keys["alice"], key_ring=ring, project_id=project.id)
    bob = Client(base_url=dev_server.base_url, api_key=keys["bob"], key_ring=ring, project_id=project.id)
    with owner, alice, bob:
        sent = alice.messages.send(
            "bob",
            topic=f"{marker} topic",
            payload=f"{marker} payload, and more {marker}",
            type="request",
            metadata={"note": marker, "nested": [marker]},
        )
        reply = bob.messages.send("alice", topic=f"re {marker}", payload=f"{marker}", reply_to=sent.id, type="response")
        broadcast = alice.messages.send(topic=marker, payload=marker * 50, broadcast=True)
        entry = alice.kv.put("plain.scan", f"{marker} kv value")
        alice.kv.put("plain.scan", f"{marker} kv value, second version", if_match=entry.version)
        ref = alice.refs.share(
            f"{marker} ref title", f"def {marker}():\n    return '{marker}'\n", source_file=f"src/{marker}.py", to="bob"
        )
        # The SDK gives plaintext back, so the marker was really sent (only in encrypted form).
        assert bob.messages.get(sent.id).payload.startswith(marker)
        assert alice.messages.thread(reply.id).data[-1].payload == marker
        assert bob.kv.get("plain.scan").value.startswith(marker)
        assert bob.refs.get(ref.id).source_file == f"src/{marker}.py"

    data_dir = Path(dev_server.data_dir)
    # The scan must be able to fail: things the server does store in clear are found by it. The
    # ids of the records just written prove their rows (or their log records) reached the disk.
    known = {
        "project id": project.id.encode(),
        "message id": sent.id.encode(),
        "reply id": reply.id.encode(),
        "broadcast id": broadcast.id.encode(),
        "ref id": ref.id.encode(),
    }
    deadline = time.monotonic() + FLUSH_DEADLINE_S
    while set(found := files_holding(data_dir, known)) != set(known) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert set(found) == set(known), f"stored ids not on disk under {data_dir}: {set(known) - set(found)}"

    leaks = files_holding(data_dir, encodings(marker))
    assert leaks == {}, f"plaintext of SDK content found under {data_dir}: {leaks}"


def test_the_data_dir_holds_no_plaintext_of_leased_paths_reasons_or_tasks(dev_server: Any, tmp_path: Path) -> None:
    marker = f"leasemark{secrets.token_hex(12)}"
    owner = Client(base_url=dev_server.base_url)
    owner.auth.register(email=f"plain-{secrets.token_hex(5)}@example.test", name="Plain owner", password="pw-123456")
    project = owner.projects.create(name="plaintext scan, coordination")
    ring = KeyRing([new_key()])
    keys = {slug: owner.project_agents.create(project.id, slug=slug, name=slug).api_key for slug in ("alice", "bob")}
    alice = Client(base_url=dev_server.base_url, api_key=keys["alice"], key_ring=ring, project_id=project.id)
    bob = Client(base_url=dev_server.base_url, api_key=keys["bob"], key_ring=ring, project_id=project.id)
    with owner, alice, bob:
        (lease,) = alice.leases.claim_paths(
            [f"src/{marker}/"], ttl_s=600, reason=f"reworking {marker}", root=tmp_path
        ).data
        task = alice.tasks.create(f"{marker} title", body=f"{marker} body")
        bob.tasks.claim(task.id)
        bob.tasks.done(task.id, text=f"{marker} result")
        # The SDK gives plaintext back, so the marker was really sent (only in encrypted form).
        assert bob.leases.list().data[0].path == f"src/{marker}/"
        assert alice.tasks.get(task.id).result.text == f"{marker} result"  # type: ignore[union-attr]

    data_dir = Path(dev_server.data_dir)
    known = {"project id": project.id.encode(), "lease id": lease.id.encode(), "task id": task.id.encode()}
    deadline = time.monotonic() + FLUSH_DEADLINE_S
    while set(found := files_holding(data_dir, known)) != set(known) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert set(found) == set(known), f"stored ids not on disk under {data_dir}: {set(known) - set(found)}"

    leaks = files_holding(data_dir, encodings(marker))
    assert leaks == {}, f"plaintext of a lease or task found under {data_dir}: {leaks}"
