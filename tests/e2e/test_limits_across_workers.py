"""Limits hold across the workers of ``serve --workers 4``: a burst overshoots a limit by at most 25%."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
from realtime_support import Team

pytestmark = pytest.mark.e2e

WORKERS = 4
RATE_PER_MINUTE = 100
MESSAGES_PER_DAY = 30
#: The most a burst may get through, as a multiple of the limit.
MAX_OVERSHOOT = 1.25


def _away_from_a_minute_boundary() -> None:
    """Wait until a burst cannot straddle two one-minute windows (each has its own count)."""
    into = time.time() % 60
    if into > 45:
        time.sleep(60 - into + 0.5)


async def _burst(base_url: str, key: str, count: int, request: Callable[[httpx.AsyncClient], object]) -> Counter[int]:
    """Send ``count`` requests at once, each on its own connection (so all workers take some); count statuses."""
    statuses: Counter[int] = Counter()
    no_reuse = httpx.Limits(max_connections=64, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {key}"}, limits=no_reuse, timeout=30
    ) as client:

        async def one() -> None:
            response = await request(client)  # type: ignore[misc]
            statuses[response.status_code] += 1

        await asyncio.gather(*(one() for _ in range(count)))
    return statuses


async def test_a_burst_overshoots_the_rate_limit_and_the_message_quota_by_at_most_a_quarter(
    server_processes: Callable[..., str],
) -> None:
    # At 23a9449, with 2 workers: 164 requests got through a 100-per-minute limit (1.64x) and 50
    # messages were stored against a 30-per-day quota (1.67x); with 4 workers, 173 to 218 and 89.
    base_url = server_processes(
        ["serve", "--workers", str(WORKERS)],
        {
            "NEXYSYNC_RATE_LIMIT_PER_MINUTE": str(RATE_PER_MINUTE),
            "NEXYSYNC_QUOTA_MESSAGES_PER_DAY": str(MESSAGES_PER_DAY),
        },
    )
    team = Team(base_url, ["reader", "sender", "peer"])
    _away_from_a_minute_boundary()

    reads = await _burst(base_url, team.keys["reader"], 4 * RATE_PER_MINUTE, lambda c: c.get("/v1/me"))
    assert set(reads) == {200, 429}, reads
    assert RATE_PER_MINUTE <= reads[200] <= RATE_PER_MINUTE * MAX_OVERSHOOT, reads

    sends = await _burst(
        base_url, team.keys["sender"], 3 * MESSAGES_PER_DAY, lambda c: c.post("/v1/messages", json=team.body("peer"))
    )
    assert set(sends) == {201, 403}, sends
    assert MESSAGES_PER_DAY <= sends[201] <= MESSAGES_PER_DAY * MAX_OVERSHOOT, sends
    # Refused sends are never counted; each worker writes what it counted within a second.
    time.sleep(1.5)
    usage = team.owner.get(f"/v1/projects/{team.project_id}/usage").json()
    assert usage["messages_today"] == sends[201]
