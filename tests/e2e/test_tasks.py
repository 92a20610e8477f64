"""The task board over HTTP and through the SDK: one winner of racing claims, blockers, each change's rules, events."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from realtime_support import EventStream, Team

from nexysync_server.ids import new_id

pytestmark = pytest.mark.e2e


def sealed_task(team: Team, title: str, **extra: Any) -> dict[str, Any]:
    """A create body with its title sealed as the SDK seals it (bound to the id and the creator)."""
    task_id = new_id()
    envelope = team.ring.encrypt(
        title.encode(),
        project_id=team.project_id,
        kind="task",
        record_id=task_id,
        field="title",
        bound=[("created_by", extra.pop("creator", "alice"))],
    )
    return {"id": task_id, "title": envelope, **extra}


def add(team: Team, agent: str, title: str = "t", **extra: Any) -> dict[str, Any]:
    answer = httpx.post(
        f"{team.base_url}/v1/tasks", json=sealed_task(team, title, creator=agent, **extra), headers=team.auth(agent)
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def act(team: Team, agent: str, task_id: str, action: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{team.base_url}/v1/tasks/{task_id}/{action}", headers=team.auth(agent), **kwargs)


def _race(base_url: str, key: str, task_id: str, start_at: float) -> int:
    time.sleep(max(0.0, start_at - time.time()))
    url = f"{base_url}/v1/tasks/{task_id}/claim"
    return httpx.post(url, headers={"Authorization": f"Bearer {key}"}, timeout=30).status_code


def test_thirty_racing_claimers_in_separate_processes_get_one_winner(
    server_processes: Callable[[list[str]], str],
) -> None:
    base_url = server_processes(["serve", "--workers", "2"], {"NEXYSYNC_QUOTA_AGENTS": "40"})  # type: ignore[call-arg]
    slugs = [f"a{i}" for i in range(30)]
    team = Team(base_url, slugs)
    task = add(team, "a0", "the one job")
    start_at = time.time() + 2.0
    with concurrent.futures.ProcessPoolExecutor(30) as pool:
        codes = list(
            pool.map(_race, [base_url] * 30, [team.keys[s] for s in slugs], [task["id"]] * 30, [start_at] * 30)
        )
    assert sorted(codes) == [200] + [409] * 29, codes
    held = httpx.get(f"{base_url}/v1/tasks/{task['id']}", headers=team.auth("a0")).json()
    assert held["state"] == "claimed" and held["assignee"] in slugs
    # A loser is told who won.
    loser = next(s for s in slugs if s != held["assignee"])
    refused = act(team, loser, task["id"], "claim").json()
    assert (refused["code"], refused["assignee"]) == ("TASK_TAKEN", held["assignee"])


def test_a_task_cannot_be_claimed_until_every_blocker_is_done(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice", "bob"])
    first, second = add(team, "alice", "schema"), add(team, "alice", "migration")
    last = add(team, "alice", "deploy", blocked_by=[first["id"], second["id"]])
    assert last["blocked_by"] == [first["id"], second["id"]]
    blocked = act(team, "bob", last["id"], "claim")
    assert (blocked.status_code, blocked.json()["code"]) == (409, "TASK_BLOCKED")
    assert blocked.json()["blocked_by"] == [first["id"], second["id"]]
    for task in (first, second):
        assert act(team, "bob", task["id"], "claim").status_code == 200
    assert act(team, "bob", first["id"], "done", json={}).json()["state"] == "done"
    assert act(team, "bob", last["id"], "claim").json()["blocked_by"] == [second["id"]]  # one left
    assert act(team, "bob", second["id"], "done", json={}).status_code == 200
    claimed = act(team, "bob", last["id"], "claim").json()
    assert (claimed["state"], claimed["assignee"]) == ("claimed", "bob")
    # A cancelled blocker blocks for good; a blocker of another project does not exist.
    doomed = add(team, "alice", "doomed")
    waits = add(team, "alice", "waits", blocked_by=[doomed["id"]])
    assert act(team, "alice", doomed["id"], "cancel").json()["state"] == "cancelled"
    assert act(team, "bob", waits["id"], "claim").json()["code"] == "TASK_BLOCKED"
    other = Team(dev_server.base_url, ["alice"])
    stranger = httpx.post(
        f"{other.base_url}/v1/tasks",
        json=sealed_task(other, "x", blocked_by=[first["id"]]),
        headers=other.auth("alice"),
    )
    assert (stranger.status_code, stranger.json()["code"]) == (409, "BLOCKER_NOT_FOUND")


def test_release_done_and_cancel_keep_their_rules_and_refusals_change_nothing(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice", "bob", "carol"])
    task = add(team, "alice", "refactor")
    tid = task["id"]
    assert act(team, "bob", tid, "done", json={}).json()["code"] == "TASK_NOT_CLAIMED"
    assert act(team, "bob", tid, "release").json()["code"] == "TASK_NOT_CLAIMED"
    assert act(team, "bob", tid, "claim").status_code == 200
    assert act(team, "bob", tid, "claim").json()["assignee"] == "bob"  # the holder's claim again: answered
    assert act(team, "carol", tid, "done", json={}).json()["code"] == "TASK_NOT_YOURS"
    assert act(team, "carol", tid, "release").json()["code"] == "TASK_NOT_YOURS"
    early = act(team, "carol", tid, "release", params={"force": "true"})
    assert (early.status_code, early.json()["code"]) == (409, "TASK_HOLDER_ACTIVE")
    assert act(team, "bob", tid, "cancel").json()["code"] == "TASK_NOT_YOURS"  # only the creator cancels
    unchanged = httpx.get(f"{team.base_url}/v1/tasks/{tid}", headers=team.auth("carol")).json()
    assert (unchanged["state"], unchanged["assignee"]) == ("claimed", "bob")
    reopened = act(team, "bob", tid, "release").json()
    assert (reopened["state"], reopened["assignee"], reopened["claimed_at"]) == ("open", None, None)
    assert act(team, "carol", tid, "claim").status_code == 200
    done = act(team, "carol", tid, "done", json={})
    assert done.json()["state"] == "done" and done.json()["result"] == {"task": tid, "by": "carol", "text": None}
    assert act(team, "carol", tid, "done", json={}).status_code == 200  # the same call again
    assert act(team, "alice", tid, "cancel").json()["code"] == "TASK_CLOSED"
    assert act(team, "bob", tid, "claim").json()["code"] == "TASK_CLOSED"
    # Another project sees none of it.
    other = Team(dev_server.base_url, ["alice"])
    assert httpx.get(f"{other.base_url}/v1/tasks/{tid}", headers=other.auth("alice")).status_code == 404
    assert act(other, "alice", tid, "claim").status_code == 404
    assert httpx.get(f"{other.base_url}/v1/tasks", headers=other.auth("alice")).json()["data"] == []


def test_bad_input_is_refused_and_a_retry_is_answered_with_what_was_stored(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice"])
    url, auth = f"{team.base_url}/v1/tasks", team.auth("alice")
    plain = httpx.post(url, json={"id": new_id(), "title": "not an envelope"}, headers=auth)
    assert plain.status_code == 422
    body = sealed_task(team, "once")
    first, again = httpx.post(url, json=body, headers=auth), httpx.post(url, json=body, headers=auth)
    assert (first.status_code, again.status_code) == (201, 200) and first.json() == again.json()
    other = httpx.post(url, json={**sealed_task(team, "twice"), "id": body["id"]}, headers=auth)
    assert (other.status_code, other.json()["code"]) == (409, "ID_CONFLICT")
    listed = httpx.get(url, headers=auth).json()
    assert [t["id"] for t in listed["data"]] == [body["id"]] and listed["next_cursor"] is None
    assert httpx.get(url, params={"state": "finished"}, headers=auth).status_code == 400


def test_the_task_limit_is_kept(dev_servers: Callable[..., Any], tmp_path: Path) -> None:
    server = dev_servers(tmp_path / "data", {"NEXYSYNC_MAX_TASKS_PER_PROJECT": "2"})
    team = Team(server.base_url, ["alice"])
    add(team, "alice"), add(team, "alice")
    third = httpx.post(f"{team.base_url}/v1/tasks", json=sealed_task(team, "3"), headers=team.auth("alice"))
    assert (third.status_code, third.json()["code"]) == (403, "TASK_LIMIT")


async def test_each_change_is_announced_and_a_forced_release_names_who_forced_it(
    dev_servers: Callable[..., Any], tmp_path: Path
) -> None:
    server = dev_servers(tmp_path / "data", {"NEXYSYNC_LEASE_FORCE_AFTER_S": "2"})
    team = Team(server.base_url, ["alice", "bob"])
    async with EventStream(server.base_url, team.keys["alice"]) as alice:
        task = add(team, "alice", "x")
        assert act(team, "bob", task["id"], "claim").status_code == 200
        time.sleep(2.2)
        assert act(team, "alice", task["id"], "release", params={"force": "true"}).status_code == 200
        assert act(team, "alice", task["id"], "cancel").status_code == 200
        seen = []
        while len(seen) < 4:
            frame = await alice.event(10)
            if frame.event and frame.event.startswith("task_"):
                seen.append((frame.event, frame.data["data"]))  # type: ignore[index]
    base = {"id": task["id"], "created_by": "alice"}
    assert seen == [
        ("task_created", {**base, "state": "open", "assignee": None, "by": "alice"}),
        ("task_claimed", {**base, "state": "claimed", "assignee": "bob", "by": "bob"}),
        ("task_released", {**base, "state": "open", "assignee": None, "by": "alice", "forced_by": "alice"}),
        ("task_cancelled", {**base, "state": "cancelled", "assignee": None, "by": "alice"}),
    ]


def test_the_sdk_seals_title_body_and_result_and_opens_them_for_another_agent(dev_server: Any) -> None:
    from nexysync import Client, ConflictError

    team = Team(dev_server.base_url, ["alice", "bob"])

    def client(slug: str) -> Client:
        return Client(base_url=team.base_url, api_key=team.keys[slug], key_ring=team.ring, project_id=team.project_id)

    with client("alice") as alice, client("bob") as bob:
        first = alice.tasks.create("write the schema", body="users, sessions")
        then = alice.tasks.create("migrate", blocked_by=[first.id])
        assert (first.title, first.body, first.state, first.created_by) == (
            "write the schema",
            "users, sessions",
            "open",
            "alice",
        )
        with pytest.raises(ConflictError) as blocked:
            bob.tasks.claim(then.id)
        assert blocked.value.code == "TASK_BLOCKED"
        assert bob.tasks.claim(first.id).assignee == "bob"
        done = bob.tasks.done(first.id, text="done in 0042_users.sql")
        assert done.result is not None and (done.result.text, done.result.by) == ("done in 0042_users.sql", "bob")
        seen = alice.tasks.get(first.id)
        assert (seen.title, seen.result.text if seen.result else None) == ("write the schema", "done in 0042_users.sql")
        listed = alice.tasks.list(state="open")
        assert [t.title for t in listed] == ["migrate"]
        # A create retried with the same id (its envelope sealed again) is answered with the stored task.
        assert alice.tasks.create("write the schema", body="users, sessions", id=first.id).id == first.id
    raw = httpx.get(f"{team.base_url}/v1/tasks/{first.id}", headers=team.auth("bob")).json()
    assert raw["title"].startswith("v2.") and "schema" not in str(raw) and "0042" not in str(raw)


def test_sealed_fields_count_toward_storage_once_even_when_done_is_repeated(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice", "bob"])

    def stored() -> int:
        return int(httpx.get(f"{team.base_url}/v1/quota", headers=team.auth("alice")).json()["storage_bytes"])

    before = stored()
    body = sealed_task(team, "a title")
    assert httpx.post(f"{team.base_url}/v1/tasks", json=body, headers=team.auth("alice")).status_code == 201
    assert stored() == before + len(body["title"])
    assert httpx.post(f"{team.base_url}/v1/tasks", json=body, headers=team.auth("alice")).status_code == 200
    assert stored() == before + len(body["title"])  # a retried add counts nothing more
    assert act(team, "bob", body["id"], "claim").status_code == 200
    result = team.ring.encrypt(
        b"the result", project_id=team.project_id, kind="task_result", record_id=body["id"], field="text",
        bound=[("by", "bob")],
    )  # fmt: skip
    for _ in range(2):
        assert act(team, "bob", body["id"], "done", json={"text": result}).status_code == 200
    assert stored() == before + len(body["title"]) + len(result)
    refused = act(team, "alice", body["id"], "done", json={"text": result})
    assert refused.json()["code"] == "TASK_CLOSED" and stored() == before + len(body["title"]) + len(result)
