"""Rate limits: requests per agent per minute, 429 with Retry-After and RateLimit headers, shared by servers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient
from realtime_support import Team

from nexysync_server.store.embedded import free_port
from server_env import TEST_SERVER_ENV

pytestmark = pytest.mark.e2e


def test_an_agent_over_its_limit_gets_429_and_others_do_not(dev_servers: Callable[..., Any], tmp_path: Path) -> None:
    server = dev_servers(tmp_path / "data", {"NEXYSYNC_RATE_LIMIT_PER_MINUTE": "5"})
    team = Team(server.base_url, ["alice", "bob"])
    alice = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {team.keys['alice']}"})
    statuses = [alice.get("/v1/me").status_code for _ in range(5)]
    refused = alice.get("/v1/me")
    if refused.status_code != 429:  # the first five can straddle a minute boundary: one more round
        statuses = [alice.get("/v1/me").status_code for _ in range(4)]
        refused = alice.get("/v1/me")
    assert statuses.count(200) == len(statuses)
    assert refused.status_code == 429
    assert refused.json()["code"] == "RATE_LIMITED"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Limit"] == "5" and refused.headers["RateLimit-Remaining"] == "0"
    assert refused.headers["RateLimit-Reset"] == refused.headers["Retry-After"]
    bob = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {team.keys['bob']}"})
    assert bob.get("/v1/me").status_code == 200


def test_the_limit_is_shared_by_servers_on_one_database(mongo_uri: str, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("NEXYSYNC_")}
    env |= TEST_SERVER_ENV | {
        "NEXYSYNC_MONGODB_URI": mongo_uri,
        "NEXYSYNC_JWT_SECRET": "shared-secret-for-rate-limit-e2e-tests-012",
        "NEXYSYNC_RATE_LIMIT_PER_MINUTE": "8",
    }
    servers, urls = [], []
    try:
        for _ in range(2):
            port = free_port()
            servers.append(
                subprocess.Popen(
                    [
                        str(Path(sys.executable).with_name("nexysync-server")),
                        "serve",
                        "--workers",
                        "1",
                        "--bind",
                        f"127.0.0.1:{port}",
                    ],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        for url in urls:
            while True:
                try:
                    if httpx.get(f"{url}/v1/health/ready", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "servers did not start"
                time.sleep(0.05)
        team = Team(urls[0], ["alice"])
        headers = {"Authorization": f"Bearer {team.keys['alice']}"}
        # The rest runs inside one minute window: with the wait for the first server's flush (up to
        # 10 s) on a loaded machine, 10 s of room was not always enough (a window rolled over
        # between the second server's answers, which then read [200, 429, 200]).
        if time.time() % 60 > 30:
            time.sleep(61 - time.time() % 60)
        window = int(time.time() // 60)
        agent_id = httpx.get(f"{urls[0]}/v1/me", headers=headers).json()["agent"]["id"]
        for _ in range(6):
            assert httpx.get(f"{urls[0]}/v1/me", headers=headers).status_code == 200
        counters = MongoClient(mongo_uri)["nexysync"]["rate_limits"]
        wait_until = time.monotonic() + 10
        while (doc := counters.find_one({"_id": {"$regex": f"^{agent_id}:"}})) is None or doc["count"] < 7:
            assert time.monotonic() < wait_until, "the first server never shared its count"
            time.sleep(0.1)
        # 7 spent on the first server; the second must allow only what is left of 8.
        second = [httpx.get(f"{urls[1]}/v1/me", headers=headers).status_code for _ in range(3)]
        assert int(time.time() // 60) == window, "the minute window rolled over during the test: rerun it"
        assert second == [200, 429, 429]
    finally:
        for process in servers:
            process.terminate()
        for process in servers:
            process.wait(timeout=45)
