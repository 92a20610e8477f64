"""Move delivery receipts forward and tell each sender, once per step, on its stream."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from ..store import Store
from ..store import receipts as store_receipts
from .hub import Hub


class Receipts:
    """Record what became of a recipient's copies, and tell the senders (``message_receipt``).

    Args:
        store: The database.
        hub: This process's event fan-out.
    """

    def __init__(self, store: Store, hub: Hub) -> None:
        self._store = store
        self._hub = hub

    async def reach(self, agent: dict[str, Any], messages: Iterable[dict[str, Any]], state: str) -> None:
        """Move the agent's copies of ``messages`` to ``state``; tell the senders every step not yet told.

        The events go out before the steps are recorded as told, so a failure in between means
        a step told twice (each event names message, agent and state: consumers key on them),
        never a step not told.
        """
        steps = await self._store.receipts.advance(messages, agent["_id"], state)
        if not steps:
            return
        # Started in order, so one copy's steps get increasing seqs (delivered before read).
        await asyncio.gather(
            *(
                self._hub.emit(
                    agent["project_id"],
                    "message_receipt",
                    [step.sender_id],
                    {"message_id": step.message_id, "agent": agent["slug"], "state": step.state, "at": step.at},
                )
                for step in steps
            )
        )
        await self._store.receipts.told(steps)

    async def with_summaries(self, views: list[dict[str, Any]], docs: list[dict[str, Any]], agent_id: str) -> None:
        """Add ``receipts`` (counts per state) to the views of the messages ``agent_id`` sent."""
        sent = [doc for doc in docs if doc["from_id"] == agent_id]
        if not sent:
            return
        found = await self._store.receipts.of_messages(sent[0]["project_id"], [doc["id"] for doc in sent])
        by_id = {doc["id"]: doc for doc in sent}
        for view in views:
            doc = by_id.get(view["id"])
            if doc is not None:
                view["receipts"] = store_receipts.summary(len(doc["recipients"]), found[doc["id"]])
