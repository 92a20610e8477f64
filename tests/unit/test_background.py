"""The background-work helpers every server loop runs on."""

from __future__ import annotations

import asyncio
import logging

import pytest

from nexysync_server.background import Periodic, cancel_and_wait


async def test_a_failing_round_is_logged_and_the_next_one_still_runs(caplog: pytest.LogCaptureFixture) -> None:
    rounds: list[int] = []

    async def step() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise RuntimeError("the database is away")

    periodic = Periodic("test-loop", step, 0.01, first_now=True)
    with caplog.at_level(logging.ERROR, logger="nexysync_server.background"):
        periodic.start()
        while len(rounds) < 3:
            await asyncio.sleep(0.01)
        await periodic.stop()
    assert [r.getMessage() for r in caplog.records] == ["test-loop failed; trying again in 0.0 s"]
    count = len(rounds)
    await asyncio.sleep(0.05)
    assert len(rounds) == count  # stopped: no round after stop()


async def test_the_first_round_waits_one_interval_unless_asked_otherwise() -> None:
    calls: list[str] = []

    async def step() -> None:
        calls.append("ran")

    later, now = Periodic("later", step, 60), Periodic("now", step, 60, first_now=True)
    later.start()
    now.start()
    await asyncio.sleep(0.05)
    await later.stop()
    await now.stop()
    assert calls == ["ran"]


async def test_cancel_and_wait_ends_the_task_and_takes_none() -> None:
    task = asyncio.create_task(asyncio.sleep(60))
    await cancel_and_wait(task)
    assert task.cancelled()
    await cancel_and_wait(None)
