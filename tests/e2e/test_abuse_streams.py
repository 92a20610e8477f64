"""Streams end with their key and are few per agent: rotate, delete, project deletion, the stream limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from realtime_support import EventStream, Frame, Team

pytestmark = pytest.mark.e2e

# Revocation must end a stream within 5 s; this test gives it that and not more.
REVOCATION_DEADLINE_S = 5.0


@pytest.fixture(scope="module")
def server(module_dev_servers: Callable[..., Any]) -> Any:
    return module_dev_servers({"NEXYSYNC_MAX_STREAMS_PER_AGENT": "2", "NEXYSYNC_HEARTBEAT_S": "0.3"})


async def _until_end(stream: EventStream, deadline_s: float) -> list[Frame]:
    """Read frames until the stream ends; fail if it is still open after ``deadline_s``."""
    frames: list[Frame] = []
    deadline = time.monotonic() + deadline_s
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"the stream was still open {deadline_s:g} s later: {[f.event or f.comment for f in frames]}"
        try:
            frames.append(await stream.frame(left))
        except EOFError:
            return frames
        except TimeoutError:
            continue


async def _revoked_stream_ends(server: Any, revoke: Callable[[Team], None]) -> None:
    team = Team(server.base_url, ["alice", "bob"])
    async with EventStream(server.base_url, team.keys["alice"]) as stream:
        await stream.frame()  # connected
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            before = await team.send(http, "bob", "alice")
            assert (await stream.messages(1))[0].data["data"]["id"] == before  # type: ignore[index]
            revoke(team)
            # Written after the revocation: must never reach the revoked key's stream.
            after = await team.send(http, "bob", None)  # a broadcast: valid whether alice exists or not
            bob = {"Authorization": f"Bearer {team.keys['bob']}"}
            value = team.ring.encrypt(b"v", project_id=team.project_id, kind="kv", record_id="k", field="value")
            await http.put("/v1/kv/k", json={"value": value}, headers=bob)
        frames = await _until_end(stream, REVOCATION_DEADLINE_S)
    seen = [frame.data["data"].get("id") for frame in frames if frame.event == "new_message" and frame.data]
    assert after not in seen
    assert not [frame for frame in frames if frame.event == "kv_update"]
    old_key = {"Authorization": f"Bearer {team.keys['alice']}"}
    assert httpx.get(f"{server.base_url}/v1/stream", headers=old_key).status_code == 401


def _agent_id(team: Team, slug: str) -> str:
    agents = team.owner.get(f"/v1/projects/{team.project_id}/agents").json()["data"]
    return next(agent["id"] for agent in agents if agent["slug"] == slug)


async def test_a_rotated_key_ends_its_open_stream(server: Any) -> None:
    def rotate(team: Team) -> None:
        path = f"/v1/projects/{team.project_id}/agents/{_agent_id(team, 'alice')}/rotate-key"
        assert team.owner.post(path).status_code == 200

    await _revoked_stream_ends(server, rotate)


async def test_a_deleted_agent_ends_its_open_stream(server: Any) -> None:
    def delete(team: Team) -> None:
        path = f"/v1/projects/{team.project_id}/agents/{_agent_id(team, 'alice')}"
        assert team.owner.delete(path).status_code == 204

    await _revoked_stream_ends(server, delete)


async def test_a_deleted_project_ends_its_streams(server: Any) -> None:
    team = Team(server.base_url, ["alice"])
    async with EventStream(server.base_url, team.keys["alice"]) as stream:
        await stream.frame()
        deleted = team.owner.delete(f"/v1/projects/{team.project_id}", params={"confirm": "true"})
        assert deleted.status_code == 204
        await _until_end(stream, REVOCATION_DEADLINE_S)


async def test_an_agent_gets_at_most_its_limit_of_streams(server: Any) -> None:
    team = Team(server.base_url, ["alice"])
    headers = {"Authorization": f"Bearer {team.keys['alice']}"}
    async with EventStream(server.base_url, team.keys["alice"]), EventStream(server.base_url, team.keys["alice"]):
        refused = httpx.get(f"{server.base_url}/v1/stream", headers=headers)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "STREAM_LIMIT"
        assert int(refused.headers["Retry-After"]) >= 1
    # Both closed: the server notices at its next heartbeat, and a new stream is let in.
    deadline = time.monotonic() + 10
    while True:
        try:
            async with EventStream(server.base_url, team.keys["alice"]) as again:
                assert (await again.frame()).comment == "connected"
                return
        except AssertionError:
            assert time.monotonic() < deadline, "the closed streams were never let go"
            await asyncio.sleep(0.1)
