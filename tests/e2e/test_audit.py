"""The audit log: management actions with actor, time, source and outcome; refused keys and logins on record."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pymongo import MongoClient
from realtime_support import Team

pytestmark = pytest.mark.e2e


def test_management_actions_are_on_record_for_the_owner_only(dev_server: Any) -> None:
    team = Team(dev_server.base_url, ["alice", "bob"])
    project = team.project_id
    bob_id = team.owner.get(f"/v1/projects/{project}/agents").json()["data"][1]["id"]
    team.owner.patch(f"/v1/projects/{project}", json={"name": "renamed"})
    team.owner.patch(f"/v1/projects/{project}/agents/{bob_id}", json={"role": "reviewer"})
    team.owner.post(f"/v1/projects/{project}/agents/{bob_id}/rotate-key")
    team.owner.delete(f"/v1/projects/{project}/agents/{bob_id}")

    first = team.owner.get(f"/v1/projects/{project}/audit", params={"limit": 3}).json()
    rest = team.owner.get(f"/v1/projects/{project}/audit", params={"cursor": first["next_cursor"]}).json()
    entries = first["data"] + rest["data"]
    assert [e["action"] for e in entries] == [
        "project.create",
        "agent.create",
        "agent.create",
        "project.update",
        "agent.update",
        "agent.rotate_key",
        "agent.delete",
    ]
    assert all(e["actor"].startswith("user:") and e["outcome"] == "ok" for e in entries)
    assert entries[0]["source_ip"] == "127.0.0.1"
    assert entries[5]["target"] == "agent:bob"

    stranger = Team(dev_server.base_url, [])
    assert stranger.owner.get(f"/v1/projects/{project}/audit").status_code == 404


def test_refused_keys_and_failed_logins_are_recorded(dev_server: Any) -> None:
    bogus = "nsync_ghost_" + "0" * 40
    assert httpx.get(f"{dev_server.base_url}/v1/me", headers={"Authorization": f"Bearer {bogus}"}).status_code == 401
    failed = httpx.post(
        f"{dev_server.base_url}/v1/auth/login", json={"email": "nobody@example.test", "password": "wrong-password"}
    )
    assert failed.status_code == 401
    # The dev server prints its database URI in its banner.
    database = MongoClient(dev_server.banner()["Database"])["nexysync"]["audit"]
    refused = list(database.find({"project_id": None, "outcome": "refused"}))
    assert any(e["action"] == "auth.api_key" and e["target"] == "key:nsync_ghost_0000" for e in refused)
    assert any(e["action"] == "auth.login" and e["target"] == "email:nobody@example.test" for e in refused)
