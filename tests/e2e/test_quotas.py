"""Quotas: agents per project and messages per day, refused with 403 QUOTA_EXCEEDED; /v1/quota reports them."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from realtime_support import Team

pytestmark = pytest.mark.e2e


def test_quotas_are_enforced_and_reported(dev_servers: Callable[..., Any], tmp_path: Path) -> None:
    server = dev_servers(tmp_path / "data", {"NEXYSYNC_QUOTA_AGENTS": "3", "NEXYSYNC_QUOTA_MESSAGES_PER_DAY": "5"})
    team = Team(server.base_url, ["alice", "bob", "carol"])
    refused = team.owner.post(f"/v1/projects/{team.project_id}/agents", json={"slug": "dave", "name": "Dave"})
    assert refused.status_code == 403
    assert refused.json()["code"] == "QUOTA_EXCEEDED" and "agents" in refused.json()["detail"]
    assert len(team.owner.get(f"/v1/projects/{team.project_id}/agents").json()["data"]) == 3

    alice = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {team.keys['alice']}"})
    statuses = [alice.post("/v1/messages", json=team.body("bob")).status_code for _ in range(7)]
    assert statuses[:5] == [201] * 5
    assert statuses[5:] == [403, 403]
    over = alice.post("/v1/messages", json=team.body("bob")).json()
    assert over["code"] == "QUOTA_EXCEEDED" and "messages per day" in over["detail"]
    assert (
        len(
            httpx.get(f"{server.base_url}/v1/messages", headers={"Authorization": f"Bearer {team.keys['bob']}"}).json()[
                "data"
            ]
        )
        == 5
    )

    deadline = time.monotonic() + 10
    while True:  # counts are written to the database within a second
        quota = alice.get("/v1/quota").json()
        if quota["messages_today"] == 5 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert quota["messages_today"] == 5 and quota["messages_per_day_limit"] == 5
    assert quota["agents"] == 3 and quota["agents_limit"] == 3
    assert quota == team.owner.get(f"/v1/projects/{team.project_id}/usage").json()
