"""Series counted where things happen: streams fed and ended, refusals, database errors, the stream cap.

Each is read back as ``/metrics`` would (in either mode); the tests compare before and after,
since the registry is the process's.
"""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi
import falcon.testing
import pytest
from metric_samples import sample
from pymongo.errors import AutoReconnect, WriteError

from nexysync_server.errors import database_error_handler, handle_service_error
from nexysync_server.realtime.hub import OVERFLOW, REVOKED, Hub, Listener
from nexysync_server.services.errors import LimitReached, NotFound, QuotaExceeded


def event(kind: str, seq: int) -> Any:
    return {"seq": seq, "type": kind, "project_id": "p", "recipients": ["a"], "data": {}}


class _Log:
    """An empty event log: a hub over it starts every feed at seq 0."""

    async def latest_seq(self, project_id: str) -> int:
        return 0

    async def after(self, *args: object, **kwargs: object) -> list[Any]:
        return []


async def test_a_full_queue_counts_a_slow_consumer_and_events_count_by_type() -> None:
    before = {
        "slow": sample("nexysync_streams_ended_total", reason="slow_consumer"),
        "new": sample("nexysync_events_delivered_total", type="test_new_message"),
    }
    hub = Hub(_Log(), gap_wait_s=1, sweep_interval_s=1, queue_max=2)  # type: ignore[arg-type]
    listener, _ = await hub.subscribe("p", "a")
    for seq in range(1, 5):  # the third overflows the queue; the fourth finds the stream ended
        hub.publish(event("test_new_message", seq))
    assert listener.ended
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


def _request() -> tuple[falcon.asgi.Request, falcon.asgi.Response]:
    req = falcon.testing.create_asgi_req(path="/v1/messages", method="POST")
    return req, falcon.asgi.Response(options=req.options)


@pytest.mark.parametrize(
    ("error", "limit", "status"),
    [
        (LimitReached("RATE_LIMITED", "slow down", 10, 5, "agent_requests"), "agent_requests", 429),
        (QuotaExceeded("no more today", "messages_per_day"), "messages_per_day", 403),
    ],
)
async def test_refusals_count_by_the_limit_that_refused(error: Exception, limit: str, status: int) -> None:
    before = sample("nexysync_limit_refusals_total", limit=limit)
    req, resp = _request()
    await handle_service_error(req, resp, error, {})  # type: ignore[arg-type]
    assert resp.status == status
    assert sample("nexysync_limit_refusals_total", limit=limit) == before + 1


async def test_other_service_errors_are_no_limit_refusals() -> None:
    def refusals() -> float:
        names = ("agent_requests", "messages_per_day")
        return sum(sample("nexysync_limit_refusals_total", limit=name) for name in names)

    total = refusals()
    req, resp = _request()
    await handle_service_error(req, resp, NotFound("NOT_FOUND", "no such thing"), {})
    assert resp.status == 404
    assert refusals() == total


@pytest.mark.parametrize(
    ("cause", "status"), [(AutoReconnect("primary stepped down"), 503), (WriteError("bad document"), 500)]
)
async def test_database_errors_of_requests_count_outages_and_the_rest(cause: Exception, status: int) -> None:
    before = sample("nexysync_database_errors_total", source="request")
    req, resp = _request()
    await database_error_handler(2)(req, resp, cause, {})  # type: ignore[arg-type]
    assert resp.status == status
    assert sample("nexysync_database_errors_total", source="request") == before + 1


async def test_the_hub_is_full_at_its_stream_cap_and_not_before() -> None:
    hub = Hub(_Log(), gap_wait_s=1, sweep_interval_s=1, max_listeners=2)  # type: ignore[arg-type]
    first, _ = await hub.subscribe("p", "a")
    assert not hub.full
    second, _ = await hub.subscribe("q", "b")
    assert hub.full
    hub.unsubscribe(first)
    assert not hub.full
    unbounded = Hub(_Log(), gap_wait_s=1, sweep_interval_s=1)  # type: ignore[arg-type]
    for index in range(5):
        await unbounded.subscribe("p", f"a{index}")
    assert not unbounded.full
    hub.unsubscribe(second)
