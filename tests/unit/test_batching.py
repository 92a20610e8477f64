"""The batcher that groups concurrent database calls into one round trip."""

from __future__ import annotations

import asyncio

import pytest

from nexysync_server.store.batching import Batcher


async def test_a_lone_request_goes_out_alone_and_concurrent_ones_share_batches() -> None:
    batches: list[list[int]] = []

    async def run(items: list[int]) -> list[int | BaseException]:
        batches.append(items)
        await asyncio.sleep(0.01)  # a database round trip, during which more requests queue
        return [item * 10 for item in items]

    batcher: Batcher[int, int] = Batcher(run, max_batch=4)
    assert await batcher.submit(1) == 10
    assert batches == [[1]]

    results = await asyncio.gather(*(batcher.submit(n) for n in range(2, 12)))
    assert results == [n * 10 for n in range(2, 12)]
    sent = [item for batch in batches[1:] for item in batch]
    assert sorted(sent) == list(range(2, 12))
    assert all(len(batch) <= 4 for batch in batches)
    assert len(batches) - 1 < 10, "concurrent requests were not grouped"


async def test_an_item_error_reaches_only_its_caller() -> None:
    async def run(items: list[int]) -> list[int | BaseException]:
        return [ValueError(f"bad {item}") if item == 2 else item for item in items]

    batcher: Batcher[int, int] = Batcher(run)
    results = await asyncio.gather(*(batcher.submit(n) for n in (1, 2, 3)), return_exceptions=True)
    assert results[0] == 1 and results[2] == 3
    assert isinstance(results[1], ValueError) and str(results[1]) == "bad 2"


async def test_a_failed_batch_fails_its_callers_and_the_next_batch_still_runs() -> None:
    calls = 0

    async def run(items: list[int]) -> list[int | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database gone")
        return items

    batcher: Batcher[int, int] = Batcher(run)
    with pytest.raises(ConnectionError):
        await batcher.submit(1)
    assert await batcher.submit(2) == 2
