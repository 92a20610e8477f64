"""A quota on every byte: kv values, message bytes per day, projects per user, and no race past any."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from realtime_support import Team

from nexysync_server.ids import new_id

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
# An envelope of this much plaintext is about 373 KB: two fit in 1 MiB, three do not.
BIG = 280_000
LIMITS = {
    "NEXYSYNC_QUOTA_STORAGE_MB": "1",
    "NEXYSYNC_QUOTA_MESSAGE_MB_PER_DAY": "1",
    "NEXYSYNC_QUOTA_PROJECTS_PER_USER": "3",
    "NEXYSYNC_QUOTA_AGENTS": "4",
}


@pytest.fixture(scope="module")
def server(module_dev_servers: Callable[..., Any]) -> Any:
    return module_dev_servers(LIMITS)


def _agent(team: Team, slug: str = "alice") -> httpx.Client:
    return httpx.Client(base_url=team.base_url, headers={"Authorization": f"Bearer {team.keys[slug]}"}, timeout=30)


def _value(team: Team, key: str, size: int) -> str:
    return team.ring.encrypt(b"v" * size, project_id=team.project_id, kind="kv", record_id=key, field="value")


def _storage(team: Team) -> int:
    return int(team.owner.get(f"/v1/projects/{team.project_id}/usage").json()["storage_bytes"])


def test_kv_values_count_toward_storage_and_give_back_on_overwrite_and_delete(server: Any) -> None:
    team = Team(server.base_url, ["alice"])
    alice = _agent(team)
    for n in range(2):
        assert alice.put(f"/v1/kv/k{n}", json={"value": _value(team, f"k{n}", BIG)}).status_code == 201
    used = _storage(team)
    assert used >= 2 * BIG
    refused = alice.put("/v1/kv/k3", json={"value": _value(team, "k3", BIG)})
    assert refused.status_code == 403 and refused.json()["code"] == "QUOTA_EXCEEDED"
    assert alice.get("/v1/kv/k3").status_code == 404  # the refused write changed nothing
    assert _storage(team) == used

    assert alice.put("/v1/kv/k0", json={"value": _value(team, "k0", 10)}).status_code == 200
    shrunk = _storage(team)
    assert used - shrunk >= BIG
    assert alice.delete("/v1/kv/k1").status_code == 204
    assert _storage(team) <= shrunk - BIG
    assert _storage(team) < 1000
    # What was given back can be used again.
    assert alice.put("/v1/kv/k3", json={"value": _value(team, "k3", BIG)}).status_code == 201


def _message(team: Team, size: int) -> dict[str, Any]:
    body = team.body("bob")
    body["payload"] = team.ring.encrypt(
        b"p" * size, project_id=team.project_id, kind="message", record_id=body["id"], field="payload"
    )
    return body


def test_messages_have_a_daily_byte_quota_reported_in_usage(server: Any) -> None:
    team = Team(server.base_url, ["alice", "bob"])
    alice = _agent(team)
    statuses = [alice.post("/v1/messages", json=_message(team, BIG)).status_code for _ in range(3)]
    assert statuses == [201, 201, 403]
    quota = alice.get("/v1/quota").json()
    assert quota["message_bytes_per_day_limit"] == MIB
    assert 2 * BIG <= quota["message_bytes_today"] <= MIB
    small = alice.post("/v1/messages", json=_message(team, 10))
    assert small.status_code == 201  # what is left still serves small messages


def test_projects_per_user_are_limited_even_when_created_all_at_once(server: Any) -> None:
    team = Team(server.base_url, [])  # owns one project already

    def create(n: int) -> int:
        return team.owner.post("/v1/projects", json={"name": f"p{n}"}).status_code

    with ThreadPoolExecutor(max_workers=15) as pool:
        statuses = list(pool.map(create, range(30)))
    assert statuses.count(201) == 2 and statuses.count(403) == 28
    projects = team.owner.get("/v1/projects").json()["data"]
    assert len(projects) == 3
    assert team.owner.delete(f"/v1/projects/{projects[-1]['id']}", params={"confirm": "true"}).status_code == 204
    assert create(99) == 201


def test_agents_per_project_hold_when_created_all_at_once(server: Any) -> None:
    team = Team(server.base_url, [])

    def create(n: int) -> int:
        return team.owner.post(
            f"/v1/projects/{team.project_id}/agents", json={"slug": f"a{n}", "name": "A"}
        ).status_code

    with ThreadPoolExecutor(max_workers=15) as pool:
        statuses = list(pool.map(create, range(30)))
    assert statuses.count(201) == 4 and statuses.count(403) == 26
    agents = team.owner.get(f"/v1/projects/{team.project_id}/agents").json()["data"]
    assert len(agents) == 4
    assert team.owner.delete(f"/v1/projects/{team.project_id}/agents/{agents[0]['id']}").status_code == 204
    taken = int(agents[1]["slug"][1:])
    assert create(taken) == 409  # a taken slug gives its reservation back...
    assert create(99) == 201  # ...so the place freed by the deletion is still there
    assert create(98) == 403


def test_the_first_storage_reservation_of_a_project_cannot_be_raced_past_the_quota(server: Any) -> None:
    team = Team(server.base_url, ["alice"])
    alice = _agent(team)

    def announce(n: int) -> int:
        file_id = new_id()
        name = team.ring.encrypt(b"f.bin", project_id=team.project_id, kind="file", record_id=file_id, field="name")
        return alice.post("/v1/files", json={"id": file_id, "name": name, "size": MIB // 2}).status_code

    with ThreadPoolExecutor(max_workers=15) as pool:
        statuses = list(pool.map(announce, range(30)))
    assert statuses.count(201) == 2, statuses
    assert _storage(team) == MIB
