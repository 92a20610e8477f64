"""The usage counters (nexysync_server.store.usage): a count in flight still counts."""

from __future__ import annotations

import asyncio
from typing import Any


async def test_a_message_count_stays_pending_until_its_write_is_done() -> None:
    from nexysync_server.store.usage import UsageStore

    release = asyncio.Event()
    written: list[dict[str, int]] = []

    class Collection:
        async def update_one(self, query: dict[str, Any], update: dict[str, Any], upsert: bool) -> None:
            await release.wait()
            written.append(update["$inc"])

    usage = UsageStore({"usage_daily": Collection()})  # type: ignore[arg-type]
    usage.add_messages("p", 3, 300)
    flushing = asyncio.create_task(usage.flush())
    await asyncio.sleep(0)  # the flush is now waiting on its write
    usage.add_messages("p", 2, 200)
    # A quota check made while the write is under way still counts what it is writing.
    assert usage.pending_messages("p") == (5, 500)
    release.set()
    await flushing
    assert written == [{"messages": 3, "message_bytes": 300}] and usage.pending_messages("p") == (2, 200)
