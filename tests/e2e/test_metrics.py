"""``/metrics`` on ``serve``: summed over the workers, behind its token, with no ids in any label."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from realtime_support import EventStream, Team

pytestmark = pytest.mark.e2e

TOKEN = "metrics-token-for-the-e2e-tests-0123456789"
SENDS = 20


def scrape(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Read /metrics; return each sample's value by name and sorted labels."""
    answer = httpx.get(f"{base_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def until_streams_open(base_url: str, count: int) -> None:
    deadline = time.monotonic() + 10
    while value(scrape(base_url), "nexysync_streams_open", kind="agent") != count:
        assert time.monotonic() < deadline, f"nexysync_streams_open never reached {count}"
        await asyncio.sleep(0.1)


async def test_metrics_add_up_across_two_workers_and_stay_behind_their_token(
    server_processes: Callable[..., str],
) -> None:
    # A stream whose client left is let go at its next heartbeat.
    settings = {"NEXYSYNC_METRICS_TOKEN": TOKEN, "NEXYSYNC_HEARTBEAT_S": "1"}
    base_url = server_processes(["serve", "--workers", "2"], settings)
    team = Team(base_url, ["alice", "bob"])
    for _ in range(SENDS):  # each on a new connection, so both workers take some
        sent = httpx.post(
            f"{base_url}/v1/messages",
            json=team.body("bob"),
            headers={"Authorization": f"Bearer {team.keys['alice']}", "Connection": "close"},
        )
        assert sent.status_code == 201, sent.text
    refused = httpx.get(f"{base_url}/v1/me", headers={"Authorization": "Bearer nx_not_a_real_key"})
    assert refused.status_code == 401

    samples = scrape(base_url)
    assert value(samples, "nexysync_http_requests_total", method="POST", route="/v1/messages", status="201") == SENDS
    assert value(samples, "nexysync_http_request_duration_seconds_count", method="POST", route="/v1/messages") == SENDS
    assert value(samples, "nexysync_http_problems_total", status="401", code=refused.json()["code"]) == 1

    async with EventStream(base_url, team.keys["bob"]):
        await until_streams_open(base_url, 1)
    await until_streams_open(base_url, 0)

    text = httpx.get(f"{base_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    for secret in (team.project_id, *team.keys.values(), team.email):
        assert secret not in text
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {team.keys['alice']}"}):
        answer = httpx.get(f"{base_url}/metrics", headers=headers)
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/problem+json"


def test_without_its_token_setting_metrics_does_not_exist(server_processes: Callable[..., str]) -> None:
    base_url = server_processes(["serve", "--workers", "1"])
    assert httpx.get(f"{base_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
