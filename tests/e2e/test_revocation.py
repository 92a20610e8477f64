"""Revocation with cached keys and slugs, on two API processes sharing one database.

Each worker keeps agent keys and slug -> id for ``NEXYSYNC_CACHE_TTL_S`` (0.5 s by default). A
key rotated or an agent deleted fails at once on the worker that changed it, and on the other
worker once the bound has passed (sooner when the ``key_revoked`` event reaches it). The tests
wait for the bound to pass, then assert: they measure nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest
from realtime_support import EventStream, Team

from nexysync_server.settings import Settings

pytestmark = pytest.mark.timeout(120)

BOUND_S = Settings().cache_ttl_s


async def _status(http: httpx.AsyncClient, base_url: str, api_key: str) -> int:
    response = await http.get(f"{base_url}/v1/messages", headers={"Authorization": f"Bearer {api_key}"})
    return response.status_code


async def _send(http: httpx.AsyncClient, team: Team, base_url: str, sender: str, to: str) -> httpx.Response:
    return await http.post(
        f"{base_url}/v1/messages", json=team.body(to), headers={"Authorization": f"Bearer {team.keys[sender]}"}
    )


async def _past_bound(changed_at: float) -> None:
    """Return once the cache bound has passed since ``changed_at`` (a deadline, not a guess)."""
    remaining = changed_at + BOUND_S - time.monotonic()
    if remaining > 0:
        await asyncio.sleep(remaining)


def _agent_id(team: Team, slug: str) -> str:
    agents = team.owner.get(f"/v1/projects/{team.project_id}/agents").json()["data"]
    return next(agent["id"] for agent in agents if agent["slug"] == slug)


async def test_a_rotated_key_fails_at_once_where_rotated_and_within_the_bound_elsewhere(
    server_processes: Callable[[list[str]], str],
) -> None:
    first = server_processes(["serve", "--workers", "1"])
    second = server_processes(["serve", "--workers", "1"])
    team = Team(first, ["alice", "bob"])
    old_key = team.keys["alice"]
    async with httpx.AsyncClient(timeout=10) as http:
        # Both workers have the key cached now.
        assert await _status(http, first, old_key) == 200
        assert await _status(http, second, old_key) == 200
        rotated = team.owner.post(f"/v1/projects/{team.project_id}/agents/{_agent_id(team, 'alice')}/rotate-key")
        assert rotated.status_code == 200, rotated.text
        changed_at = time.monotonic()
        new_key = rotated.json()["api_key"]
        assert await _status(http, first, old_key) == 401  # exact on the worker that rotated it
        assert await _status(http, first, new_key) == 200
        assert await _status(http, second, new_key) == 200  # a new key is never waiting on a cache
        at_once = await _status(http, second, old_key)
        assert at_once in (200, 401)  # within the bound either may answer
        await _past_bound(changed_at)
        assert await _status(http, second, old_key) == 401


async def test_a_deleted_agent_cannot_be_addressed_or_authenticate_past_the_bound(
    server_processes: Callable[[list[str]], str],
) -> None:
    first = server_processes(["serve", "--workers", "1"])
    second = server_processes(["serve", "--workers", "1"])
    team = Team(first, ["alice", "bob"])
    async with httpx.AsyncClient(timeout=10) as http:
        # The second worker has bob's slug and key cached.
        assert (await _send(http, team, second, "alice", "bob")).status_code == 201
        assert await _status(http, second, team.keys["bob"]) == 200
        deleted = team.owner.delete(f"/v1/projects/{team.project_id}/agents/{_agent_id(team, 'bob')}")
        assert deleted.status_code == 204, deleted.text
        changed_at = time.monotonic()
        refused = await _send(http, team, first, "alice", "bob")
        assert refused.status_code == 404 and refused.json()["code"] == "RECIPIENT_NOT_FOUND"
        assert await _status(http, first, team.keys["bob"]) == 401
        await _past_bound(changed_at)
        refused = await _send(http, team, second, "alice", "bob")
        assert refused.status_code == 404 and refused.json()["code"] == "RECIPIENT_NOT_FOUND"
        assert await _status(http, second, team.keys["bob"]) == 401


async def test_the_key_revoked_event_clears_another_workers_cache_before_its_ttl(
    server_processes: Callable[..., str],
) -> None:
    first = server_processes(["serve", "--workers", "1"])
    # A TTL far beyond the deadline below: only the event can make the old key fail in time.
    second = server_processes(["serve", "--workers", "1"], {"NEXYSYNC_CACHE_TTL_S": "120"})
    team = Team(first, ["alice", "bob"])
    old_key = team.keys["alice"]
    # Bob's open stream on the second worker keeps its change stream on the event log running.
    async with EventStream(second, team.keys["bob"]), httpx.AsyncClient(timeout=10) as http:
        assert await _status(http, second, old_key) == 200
        rotated = team.owner.post(f"/v1/projects/{team.project_id}/agents/{_agent_id(team, 'alice')}/rotate-key")
        assert rotated.status_code == 200, rotated.text
        deadline = time.monotonic() + 30
        while await _status(http, second, old_key) != 401:
            assert time.monotonic() < deadline, "the key_revoked event never reached the other worker's cache"
            await asyncio.sleep(0.05)
