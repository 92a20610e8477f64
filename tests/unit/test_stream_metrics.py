"""Stream metrics counted where streams are fed and ended (read back as /metrics would, in either mode)."""

from __future__ import annotations

from typing import Any

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from nexysync_server import metrics
from nexysync_server.realtime.hub import OVERFLOW, REVOKED, Listener


def sample(name: str, **labels: str) -> float:
    text = generate_latest(metrics._registry()).decode()
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return 0.0


def event(kind: str, seq: int) -> Any:
    return {"seq": seq, "type": kind, "project_id": "p", "recipients": [], "data": {}}


def test_a_full_queue_counts_a_slow_consumer_and_events_count_by_type() -> None:
    before = {
        "slow": sample("nexysync_streams_ended_total", reason="slow_consumer"),
        "new": sample("nexysync_events_delivered_total", type="test_new_message"),
    }
    listener = Listener("p", "a", queue_max=2)
    for seq in range(1, 4):
        listener.offer(event("test_new_message", seq))
    listener.offer(event("test_new_message", 4))  # after the end: not counted again
    assert sample("nexysync_events_delivered_total", type="test_new_message") == before["new"] + 2
    assert sample("nexysync_streams_ended_total", reason="slow_consumer") == before["slow"] + 1


def test_streams_ended_count_their_reason_once() -> None:
    before = {reason: sample("nexysync_streams_ended_total", reason=reason) for reason in ("revoked", "stopping")}
    revoked, stopping = Listener("p", "a"), Listener("p", None)
    revoked.end(REVOKED)
    revoked.end(OVERFLOW)
    stopping.end(None)
    assert sample("nexysync_streams_ended_total", reason="revoked") == before["revoked"] + 1
    assert sample("nexysync_streams_ended_total", reason="stopping") == before["stopping"] + 1
