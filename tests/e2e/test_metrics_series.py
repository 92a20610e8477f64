"""What ``/metrics`` tells an operator: events across processes, lag, limits, the stream cap, CDN bytes.

Each figure is checked against what the test did, so a series that stops counting (or counts
twice) fails here. The scraped text passes ``promtool check metrics`` (Prometheus' own linter).
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from realtime_support import EventStream, Team
from test_metrics import TOKEN, scrape, value

from debian_packages import MissingPackage, promtool
from nexysync_server.ids import new_id

pytestmark = pytest.mark.e2e

SENDS = 5


def _send(base_url: str, team: Team, to: str, sender: str = "alice") -> httpx.Response:
    return httpx.post(
        f"{base_url}/v1/messages", json=team.body(to), headers={"Authorization": f"Bearer {team.keys[sender]}"}
    )


def check_with_promtool(base_url: str) -> None:
    """Run Prometheus' linter over the scrape: names, units, help, types."""
    try:
        binary = promtool()
    except MissingPackage as exc:
        pytest.skip(str(exc))
    text = httpx.get(f"{base_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    result = subprocess.run([binary, "check", "metrics"], input=text, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_events_from_another_process_come_through_the_watcher_and_are_timed(
    server_processes: Callable[..., str],
) -> None:
    # A's sweeper waits 60 s between reads, so what B stores reaches A's stream through A's watcher.
    settings = {"NEXYSYNC_METRICS_TOKEN": TOKEN}
    a = server_processes(["serve", "--workers", "1"], settings | {"NEXYSYNC_EVENT_POLL_INTERVAL_S": "60"})
    b = server_processes(["serve", "--workers", "1"], settings)
    team = Team(a, ["alice", "bob"])
    async with EventStream(a, team.keys["bob"]) as stream:
        await stream.frame()  # connected
        for _ in range(SENDS):
            assert _send(b, team, "bob").status_code == 201
        events: list[str] = []
        while events.count("new_message") < SENDS:
            frame = await stream.frame()
            if frame.kind == "event":
                events.append(frame.event)
        samples = scrape(a)
    # Other tests' events share the embedded database's collections: those are "seen", not news.
    assert value(samples, "nexysync_watcher_polls_total", result="event") == SENDS
    assert value(samples, "nexysync_watcher_lag_seconds_count") == SENDS
    # Every event written live to the stream is timed: the new messages, and bob's own
    # presence_change (A wrote it), which may be written after the test stopped reading.
    delivered = sum(v for (name, _), v in samples.items() if name == "nexysync_events_delivered_total")
    assert value(samples, "nexysync_event_lag_seconds_count") == delivered >= len(events)
    assert value(samples, "nexysync_events_delivered_total", type="new_message") == SENDS
    assert value(samples, "nexysync_fanout_duration_seconds_count") >= len(events)
    # Stored to written within a second on an idle machine (the lag is not all in the top bucket).
    assert value(samples, "nexysync_event_lag_seconds_bucket", le="1.0") == delivered
    assert value(samples, "nexysync_http_requests_total", method="POST", route="/v1/messages", status="201") == 0
    assert value(scrape(b), "nexysync_http_requests_total", method="POST", route="/v1/messages", status="201") == SENDS
    check_with_promtool(a)


async def test_the_worker_stream_cap_answers_503_with_retry_after_and_limits_are_counted(
    server_processes: Callable[..., str],
) -> None:
    settings = {
        "NEXYSYNC_METRICS_TOKEN": TOKEN,
        "NEXYSYNC_MAX_STREAMS_PER_WORKER": "2",
        "NEXYSYNC_QUOTA_MESSAGES_PER_DAY": "3",
        "NEXYSYNC_HEARTBEAT_S": "1",
    }
    base_url = server_processes(["serve", "--workers", "1"], settings)
    team = Team(base_url, ["alice", "bob"])
    async with EventStream(base_url, team.keys["alice"]), EventStream(base_url, team.keys["bob"]):
        refused = httpx.get(f"{base_url}/v1/stream", headers={"Authorization": f"Bearer {team.keys['bob']}"})
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "SERVER_BUSY"
        assert refused.headers["retry-after"] == "1"
        # A full worker still serves requests.
        me = httpx.get(f"{base_url}/v1/me", headers={"Authorization": f"Bearer {team.keys['bob']}"})
        assert me.status_code == 200
    # Once the closed streams are let go (the server notices at their next heartbeat), a new one gets in.
    busy = 1
    for _ in range(50):
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
            headers = {"Authorization": f"Bearer {team.keys['bob']}"}
            async with client.stream("GET", "/v1/stream", headers=headers) as opened:
                if opened.status_code == 200:
                    break
                assert opened.status_code == 503
                busy += 1
        await asyncio.sleep(0.1)
    else:
        pytest.fail("no stream was admitted after the others closed")

    statuses = [_send(base_url, team, "bob").status_code for _ in range(4)]
    assert statuses == [201, 201, 201, 403]
    samples = scrape(base_url)
    assert value(samples, "nexysync_limit_refusals_total", limit="streams_per_worker") == busy
    assert value(samples, "nexysync_limit_refusals_total", limit="messages_per_day") == 1
    assert value(samples, "nexysync_http_problems_total", status="503", code="SERVER_BUSY") == busy
    check_with_promtool(base_url)


def test_cdn_bytes_up_and_down_are_counted(module_dev_servers: Callable[..., Any]) -> None:
    server = module_dev_servers({"NEXYSYNC_METRICS_TOKEN": TOKEN})
    team = Team(server.base_url, ["alice"])
    size = 70_000
    file_id = new_id()
    name = team.ring.encrypt(b"f.bin", project_id=team.project_id, kind="file", record_id=file_id, field="name")
    created = httpx.post(
        f"{server.base_url}/v1/files",
        json={"id": file_id, "name": name, "size": size},
        headers={"Authorization": f"Bearer {team.keys['alice']}"},
    )
    assert created.status_code == 201, created.text
    assert httpx.put(created.json()["upload_url"], content=b"x" * size).status_code in (200, 201, 204)
    before = value(scrape(server.base_url), "nexysync_cdn_bytes_total", direction="download")
    described = httpx.get(
        f"{server.base_url}/v1/files/{file_id}", headers={"Authorization": f"Bearer {team.keys['alice']}"}
    )
    download = httpx.get(described.json()["download_url"], headers={"Range": "bytes=0-999"})
    assert download.status_code == 206
    samples = scrape(server.base_url)
    assert value(samples, "nexysync_cdn_bytes_total", direction="upload") >= size
    assert value(samples, "nexysync_cdn_bytes_total", direction="download") - before == 1000
