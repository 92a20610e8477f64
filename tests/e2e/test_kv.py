"""The key-value store: encrypted values, versions as ETags, conditional writes, kv_update events."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from realtime_support import EventStream, Team

pytestmark = pytest.mark.e2e


def _seal(team: Team, key: str, text: str) -> str:
    return team.ring.encrypt(text.encode(), project_id=team.project_id, kind="kv", record_id=key, field="value")


def _open(team: Team, entry: dict[str, Any]) -> str:
    return team.ring.decrypt(
        entry["value"], project_id=team.project_id, kind="kv", record_id=entry["key"], field="value"
    ).decode()


@pytest.fixture
def team(dev_server: Any) -> Team:
    return Team(dev_server.base_url, ["alice", "bob"])


def _agent(team: Team, slug: str) -> httpx.Client:
    return httpx.Client(base_url=team.base_url, headers={"Authorization": f"Bearer {team.keys[slug]}"}, timeout=10)


def test_put_get_list_delete_with_versions(team: Team) -> None:
    alice = _agent(team, "alice")
    created = alice.put("/v1/kv/conventions.style", json={"value": _seal(team, "conventions.style", "black")})
    assert created.status_code == 201
    assert created.headers["ETag"] == '"1"' and created.headers["Location"] == "/v1/kv/conventions.style"
    replaced = alice.put("/v1/kv/conventions.style", json={"value": _seal(team, "conventions.style", "ruff")})
    assert replaced.status_code == 200 and replaced.json()["version"] == 2
    got = _agent(team, "bob").get("/v1/kv/conventions.style")
    assert got.headers["ETag"] == '"2"'
    assert _open(team, got.json()) == "ruff" and got.json()["updated_by"] == "alice"
    alice.put("/v1/kv/conventions.tabs", json={"value": _seal(team, "conventions.tabs", "4")})
    alice.put("/v1/kv/flags.deploy", json={"value": _seal(team, "flags.deploy", "off")})
    keys = [e["key"] for e in alice.get("/v1/kv", params={"prefix": "conventions."}).json()["data"]]
    assert keys == ["conventions.style", "conventions.tabs"]
    first = alice.get("/v1/kv", params={"limit": 2}).json()
    rest = alice.get("/v1/kv", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [e["key"] for e in first["data"] + rest["data"]] == ["conventions.style", "conventions.tabs", "flags.deploy"]
    assert alice.delete("/v1/kv/flags.deploy").status_code == 204
    missing = alice.get("/v1/kv/flags.deploy")
    assert missing.status_code == 404 and missing.json()["code"] == "KV_NOT_FOUND"


def test_stale_if_match_is_refused_so_no_write_is_lost(team: Team) -> None:
    alice, bob = _agent(team, "alice"), _agent(team, "bob")
    key = "flags.release"
    etag = alice.put(f"/v1/kv/{key}", json={"value": _seal(team, key, "v1")}).headers["ETag"]
    # Both read version 1; bob writes first; alice's conditional write must not clobber it.
    assert (
        bob.put(f"/v1/kv/{key}", json={"value": _seal(team, key, "bob")}, headers={"If-Match": etag}).status_code == 200
    )
    stale = alice.put(f"/v1/kv/{key}", json={"value": _seal(team, key, "alice")}, headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.json()["code"] == "PRECONDITION_FAILED"
    assert _open(team, alice.get(f"/v1/kv/{key}").json()) == "bob"
    assert alice.delete(f"/v1/kv/{key}", headers={"If-Match": etag}).status_code == 412
    assert alice.get(f"/v1/kv/{key}").status_code == 200


def test_if_none_match_creates_only_once(team: Team) -> None:
    alice, bob = _agent(team, "alice"), _agent(team, "bob")
    key = "locks.migration"
    first = alice.put(f"/v1/kv/{key}", json={"value": _seal(team, key, "alice")}, headers={"If-None-Match": "*"})
    second = bob.put(f"/v1/kv/{key}", json={"value": _seal(team, key, "bob")}, headers={"If-None-Match": "*"})
    assert (first.status_code, second.status_code) == (201, 412)
    assert _open(team, bob.get(f"/v1/kv/{key}").json()) == "alice"


async def test_concurrent_conditional_increments_lose_nothing(team: Team) -> None:
    key = "counters.builds"
    headers = {"Authorization": f"Bearer {team.keys['alice']}"}
    async with httpx.AsyncClient(base_url=team.base_url, headers=headers, timeout=30) as http:
        await http.put(f"/v1/kv/{key}", json={"value": _seal(team, key, "0")})

        async def increment() -> None:
            while True:
                current = await http.get(f"/v1/kv/{key}")
                value = int(_open(team, current.json()))
                attempt = await http.put(
                    f"/v1/kv/{key}",
                    json={"value": _seal(team, key, str(value + 1))},
                    headers={"If-Match": current.headers["ETag"]},
                )
                if attempt.status_code == 200:
                    return
                assert attempt.status_code == 412

        await asyncio.gather(*(increment() for _ in range(10)))
        assert _open(team, (await http.get(f"/v1/kv/{key}")).json()) == "10"


def test_plaintext_values_and_bad_keys_are_refused(team: Team) -> None:
    alice = _agent(team, "alice")
    assert alice.put("/v1/kv/flags.x", json={"value": "in clear"}).status_code == 422
    assert alice.get("/v1/kv/flags.x").status_code == 404
    body = {"value": _seal(team, "flags.x", "1")}
    assert alice.put("/v1/kv/flags.x", json=body, headers={"If-Match": "abc"}).status_code == 400
    # A bare version is read as the ETag "3": there is no such entry, so the condition fails.
    assert alice.put("/v1/kv/flags.x", json=body, headers={"If-Match": "3"}).status_code == 412
    assert alice.get("/v1/kv/bad key").status_code == 404


def test_another_project_sees_none_of_the_entries(team: Team, dev_server: Any) -> None:
    alice = _agent(team, "alice")
    alice.put("/v1/kv/secret.plan", json={"value": _seal(team, "secret.plan", "x")})
    other = Team(dev_server.base_url, ["mallory"])
    mallory = _agent(other, "mallory")
    assert mallory.get("/v1/kv/secret.plan").status_code == 404
    assert mallory.get("/v1/kv").json()["data"] == []
    assert mallory.delete("/v1/kv/secret.plan").status_code == 404
    assert alice.get("/v1/kv/secret.plan").status_code == 200


async def test_every_agent_hears_of_changes(team: Team) -> None:
    key = "flags.freeze"
    async with EventStream(team.base_url, team.keys["bob"]) as bob:
        alice = _agent(team, "alice")
        alice.put(f"/v1/kv/{key}", json={"value": _seal(team, key, "on")})
        alice.delete(f"/v1/kv/{key}")
        seen = []
        while len(seen) < 2:
            frame = await bob.event()
            if frame.event == "kv_update":
                seen.append(frame.data["data"])  # type: ignore[index]
    assert seen == [
        {"key": key, "version": 1, "updated_by": "alice", "deleted": False},
        {"key": key, "version": 1, "updated_by": "alice", "deleted": True},
    ]


async def test_a_retried_write_gets_its_stored_entry_and_is_announced_once(team: Team) -> None:
    key = "flags.retried"
    alice = _agent(team, "alice")

    def put(text: str, write_key: str, condition: dict[str, str]) -> httpx.Response:
        headers = {"Idempotency-Key": write_key, **condition}
        return alice.put(f"/v1/kv/{key}", json={"value": value[text]}, headers=headers)

    value = {text: _seal(team, key, text) for text in ("v1", "v2")}
    async with EventStream(team.base_url, team.keys["bob"]) as bob:
        created = put("v1", "write-1", {"If-None-Match": "*"})
        # The answer was lost and the client sends the same write again: it gets what it stored,
        # not a 412 for its own write.
        again = put("v1", "write-1", {"If-None-Match": "*"})
        assert (created.status_code, again.status_code) == (201, 200)
        assert again.json() == created.json() and again.headers["ETag"] == '"1"'
        replaced = put("v2", "write-2", {"If-Match": '"1"'})
        assert replaced.status_code == 200 and replaced.json()["version"] == 2
        assert put("v2", "write-2", {"If-Match": '"1"'}).json() == replaced.json()
        # Another write with a stale version is refused, and so is another value under the same key.
        assert put("v2", "write-3", {"If-Match": '"1"'}).status_code == 412
        assert put("v1", "write-2", {"If-Match": '"1"'}).status_code == 412
        assert alice.put(f"/v1/kv/{key}", json={"value": "x"}, headers={"Idempotency-Key": "a b"}).status_code == 400
        seen = []
        alice.delete(f"/v1/kv/{key}")  # the last event: everything before it has arrived
        while not seen or not seen[-1]["deleted"]:
            frame = await bob.event()
            if frame.event == "kv_update":
                seen.append(frame.data["data"])  # type: ignore[index]
    assert [(update["version"], update["deleted"]) for update in seen] == [(1, False), (2, False), (2, True)]
