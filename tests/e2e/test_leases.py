"""Leases on paths over HTTP: prefix conflicts, all or none, racing processes, fencing, force-release, events."""

from __future__ import annotations

import concurrent.futures
import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from realtime_support import EventStream, Team

from nexysync_server.ids import new_id

pytestmark = pytest.mark.e2e


def _key(path: str) -> str:
    # The server takes any 64-hex key; the SDK's are HMACs. A hash of the path will do here.
    return hashlib.sha256(path.encode()).hexdigest()


def lease_item(team: Team, path: str) -> dict[str, Any]:
    """One claim item for ``path`` (a directory ends with ``/``), its keys and its sealed path."""
    parts = path.rstrip("/").split("/")
    ancestors = ["/".join(parts[:depth]) + "/" for depth in range(1, len(parts))]
    lease_id = new_id()
    sealed = team.ring.encrypt(
        path.encode(), project_id=team.project_id, kind="lease", record_id=lease_id, field="path"
    )
    return {"id": lease_id, "key": _key(path), "ancestors": [_key(a) for a in ancestors], "path": sealed}


def claim(team: Team, agent: str, *paths: str, exclusive: bool = True, ttl_s: int = 600) -> httpx.Response:
    body = {"leases": [lease_item(team, path) for path in paths], "exclusive": exclusive, "ttl_s": ttl_s}
    return httpx.post(f"{team.base_url}/v1/leases", json=body, headers=team.auth(agent))


def test_a_directory_and_a_file_under_it_conflict_both_ways_and_a_sibling_never(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice", "bob"])
    granted = claim(team, "alice", "src/auth/")
    assert granted.status_code == 201, granted.text
    (lease,) = granted.json()["data"]
    assert lease["agent"] == "alice" and lease["exclusive"] is True and lease["token"] >= 1

    refused = claim(team, "bob", "src/auth/login.py")
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["code"] == "LEASE_CONFLICT"
    assert (
        "alice" in problem["detail"] and lease["id"] in problem["detail"] and lease["expires_at"] in problem["detail"]
    )
    assert [c["id"] for c in problem["conflicts"]] == [lease["id"]]
    assert claim(team, "bob", "src/authz/x.py").status_code == 201  # a sibling with the same prefix
    assert claim(team, "bob", "src/").status_code == 409  # the parent, the other way round
    # The holder's own leases never stand in its way.
    assert claim(team, "alice", "src/auth/login.py").status_code == 201
    # All or none: one path in the way and nothing of the claim is granted.
    assert claim(team, "bob", "docs/a.md", "src/auth/x.py").status_code == 409
    mine = httpx.get(f"{team.base_url}/v1/leases", params={"agent": "bob"}, headers=team.auth("bob")).json()["data"]
    assert len(mine) == 1  # src/authz/x.py only


def test_shared_leases_sit_together_and_keep_an_exclusive_out(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice", "bob", "carol"])
    assert claim(team, "alice", "README.md", exclusive=False).status_code == 201
    assert claim(team, "bob", "README.md", exclusive=False).status_code == 201
    refused = claim(team, "carol", "README.md")
    assert refused.status_code == 409 and len(refused.json()["conflicts"]) == 2


def _race(base_url: str, key: str, body: dict[str, Any], start_at: float) -> int:
    time.sleep(max(0.0, start_at - time.time()))
    return httpx.post(
        f"{base_url}/v1/leases", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ).status_code


def test_thirty_racing_claimers_in_separate_processes_get_one_exclusive_holder(
    server_processes: Callable[[list[str]], str],
) -> None:
    base_url = server_processes(["serve", "--workers", "2"], {"NEXYSYNC_QUOTA_AGENTS": "40"})  # type: ignore[call-arg]
    slugs = [f"a{i}" for i in range(30)]
    team = Team(base_url, slugs)
    bodies = [{"leases": [lease_item(team, "src/app.py")], "ttl_s": 600} for _ in slugs]
    start_at = time.time() + 2.0
    with concurrent.futures.ProcessPoolExecutor(30) as pool:
        codes = list(pool.map(_race, [base_url] * 30, [team.keys[s] for s in slugs], bodies, [start_at] * 30))
    assert sorted(codes) == [201] + [409] * 29, codes
    held = httpx.get(f"{base_url}/v1/leases", headers=team.auth("a0")).json()["data"]
    assert len(held) == 1


def test_fencing_tokens_rise_with_every_grant_and_a_renewal_keeps_its_token(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice", "bob"])
    tokens = []
    for agent in ["alice", "bob", "alice", "bob"]:
        (lease,) = claim(team, agent, "src/app.py").json()["data"]
        tokens.append(lease["token"])
        gone = httpx.delete(f"{team.base_url}/v1/leases/{lease['id']}", headers=team.auth(agent))
        assert gone.status_code == 204
    assert tokens == sorted(tokens) and len(set(tokens)) == 4
    (lease,) = claim(team, "alice", "src/app.py", ttl_s=60).json()["data"]
    renewed = httpx.post(
        f"{team.base_url}/v1/leases/{lease['id']}/renew", json={"ttl_s": 600}, headers=team.auth("alice")
    )
    assert renewed.status_code == 200
    assert renewed.json()["token"] == lease["token"] and renewed.json()["expires_at"] > lease["expires_at"]
    # Only the holder renews; another agent is told there is no such lease of its own.
    other = httpx.post(f"{team.base_url}/v1/leases/{lease['id']}/renew", json={"ttl_s": 600}, headers=team.auth("bob"))
    assert other.status_code == 404


def test_bad_claims_are_refused_and_change_nothing(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice"])
    item = lease_item(team, "a.py")
    url, auth = f"{team.base_url}/v1/leases", team.auth("alice")
    too_long = httpx.post(url, json={"leases": [item], "ttl_s": 86_401}, headers=auth)
    assert too_long.status_code == 422  # past the contract's bound
    twice = httpx.post(url, json={"leases": [item, {**item, "id": new_id()}], "ttl_s": 60}, headers=auth)
    assert (twice.status_code, twice.json()["code"]) == (409, "DUPLICATE_LEASE")
    not_a_key = httpx.post(url, json={"leases": [{**item, "key": "src/a.py"}], "ttl_s": 60}, headers=auth)
    assert not_a_key.status_code == 422
    assert httpx.get(url, headers=auth).json()["data"] == []
    # A retried claim (same ids) answers what it stored, and grants nothing twice.
    body = {"leases": [item], "ttl_s": 60}
    first, again = httpx.post(url, json=body, headers=auth), httpx.post(url, json=body, headers=auth)
    assert (first.status_code, again.status_code) == (201, 201) and first.json() == again.json()
    assert len(httpx.get(url, headers=auth).json()["data"]) == 1


async def test_force_release_waits_for_the_holders_inactivity_and_tells_it(
    dev_servers: Callable[..., Any], tmp_path: Path
) -> None:
    server = dev_servers(tmp_path / "data", {"NEXYSYNC_LEASE_FORCE_AFTER_S": "2"})
    team = Team(server.base_url, ["alice", "bob"])
    async with EventStream(server.base_url, team.keys["alice"]) as alice:
        (lease,) = claim(team, "alice", "src/").json()["data"]
        url = f"{server.base_url}/v1/leases/{lease['id']}"
        assert httpx.delete(url, headers=team.auth("bob")).json()["code"] == "LEASE_NOT_YOURS"
        early = httpx.delete(url, params={"force": "true"}, headers=team.auth("bob"))
        assert (early.status_code, early.json()["code"]) == (409, "LEASE_HOLDER_ACTIVE")
        time.sleep(2.2)
        assert httpx.delete(url, params={"force": "true"}, headers=team.auth("bob")).status_code == 204
        assert claim(team, "bob", "src/x.py").status_code == 201
        seen = []
        while len(seen) < 3:
            frame = await alice.event(10)
            if frame.event and frame.event.startswith("lease_"):
                seen.append((frame.event, frame.data["data"]))  # type: ignore[index]
    assert seen[0][0] == "lease_granted" and seen[0][1]["leases"][0]["id"] == lease["id"]
    assert seen[1] == ("lease_released", {"id": lease["id"], "agent": "alice", "key": lease["key"], "forced_by": "bob"})
    assert seen[2][0] == "lease_granted" and seen[2][1]["leases"][0]["agent"] == "bob"


async def test_an_ended_lease_frees_its_path_and_is_announced(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice", "bob"])
    async with EventStream(dev_server.base_url, team.keys["bob"]) as bob:
        (lease,) = claim(team, "alice", "src/", ttl_s=5).json()["data"]
        assert claim(team, "bob", "src/a.py").status_code == 409
        while True:
            frame = await bob.event(15)
            if frame.event == "lease_expired":
                break
        assert frame.data["data"] == {"id": lease["id"], "agent": "alice", "key": lease["key"]}  # type: ignore[index]
        assert claim(team, "bob", "src/a.py").status_code == 201


def test_the_sdk_seals_each_leases_path_and_reason_and_opens_them_again(dev_server: Any) -> None:
    from nexysync import Client

    team = Team(dev_server.base_url, ["alice", "bob"])
    item = lease_item(team, "src/auth/")
    plain = {"id": item["id"], "key": item["key"], "ancestors": item["ancestors"], "path": "src/auth/"}
    with Client(base_url=team.base_url, api_key=team.keys["alice"], key_ring=team.ring) as alice:
        (granted,) = alice.leases.claim([plain | {"reason": "login rework"}], ttl_s=600).data
        assert (granted.path, granted.reason, granted.agent) == ("src/auth/", "login rework", "alice")
        renewed = alice.leases.renew(granted.id, 900)
        assert renewed.path == "src/auth/" and renewed.token == granted.token
    # On the wire and in the store, the path is an envelope bound to its lease.
    raw = httpx.get(f"{team.base_url}/v1/leases", headers=team.auth("bob")).json()["data"]
    assert raw[0]["path"].startswith("v2.") and "src/auth" not in str(raw)
    with Client(base_url=team.base_url, api_key=team.keys["bob"], key_ring=team.ring) as bob:
        (seen,) = bob.leases.list().data
        assert (seen.path, seen.reason) == ("src/auth/", "login rework")


def test_two_agents_claiming_paths_by_name_meet_at_a_directory(dev_server: Any, tmp_path: Path) -> None:
    from nexysync import Client, ConflictError

    team = Team(dev_server.base_url, ["alice", "bob"])
    (tmp_path / "src" / "auth").mkdir(parents=True)

    def client(slug: str) -> Client:
        return Client(base_url=team.base_url, api_key=team.keys[slug], key_ring=team.ring, project_id=team.project_id)

    with client("alice") as alice, client("bob") as bob:
        (held,) = alice.leases.claim_paths(["src/auth"], ttl_s=600, reason="login rework", root=tmp_path).data
        assert held.path == "src/auth/"
        with pytest.raises(ConflictError) as refused:
            bob.leases.claim_paths(["src/auth/login.py"], ttl_s=600, root=tmp_path)
        assert refused.value.code == "LEASE_CONFLICT" and "alice" in str(refused.value)
        assert bob.leases.claim_paths(["src/authz.py"], ttl_s=600, root=tmp_path).data[0].path == "src/authz.py"
        alice.leases.release(held.id)
        assert bob.leases.claim_paths(["src/auth/login.py"], ttl_s=600, root=tmp_path).data[0].agent == "bob"
