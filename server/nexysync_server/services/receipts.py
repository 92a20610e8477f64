"""Move delivery receipts forward and tell each sender, once per step, on its stream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from .. import views
from ..background import Periodic
from ..realtime.hub import Hub
from ..store import Store
from ..store import receipts as store_receipts
from ..store.documents import AgentRef, MessageDoc, MessageRef
from ..store.messages import carried_ref

log = logging.getLogger(__name__)

#: How long copies handed over by streams gather before they are recorded delivered: the
#: recording (a receipt and a ``message_receipt`` event per copy) waits until a broadcast's
#: fan-out is done rather than competing with it, and a busy second is a few writes.
HANDED_GATHER_S = 0.2


class Receipts:
    """Record what became of a recipient's copies, and tell the senders (``message_receipt``).

    A step is recorded before the request that took it answers; the sender is told right after,
    without holding that answer back (the fetch on a push is what brings a message to the
    recipient's session). A teller that dies leaves its steps untold in the database, and the
    sweep tells them.

    Args:
        store: The database.
        hub: This process's event fan-out.
        sweep_interval_s: How often to look for steps nobody told.
        untold_after_s: How old an untold step must be before the sweep takes it over.
    """

    def __init__(self, store: Store, hub: Hub, sweep_interval_s: float = 5.0, untold_after_s: float = 5.0) -> None:
        self._store = store
        self._hub = hub
        self._untold_after_s = untold_after_s
        self._telling: set[asyncio.Task[None]] = set()
        self._sweeper = Periodic("receipt-sweeper", self.sweep, sweep_interval_s)
        # Copies streams handed over whole, waiting to be recorded as delivered.
        self._handed: list[tuple[MessageRef, AgentRef]] = []
        self._recording: asyncio.Task[None] | None = None

    def handed_over(self, agent: AgentRef, events: Iterable[Mapping[str, Any]]) -> None:
        """Record, soon, that ``agent``'s stream (or poll) gave it these events' messages whole.

        A ``new_message`` event that carries its message puts it in the recipient's hands, as a
        fetch does: its ``delivered`` step. The caller does not wait for it: the copies handed
        over within :data:`HANDED_GATHER_S`, and while a write is under way, are recorded
        together (one write, and one telling, per round, whatever the number of streams and
        recipients). A write that fails is logged: the copy stays ``queued`` until the recipient
        reads it, and its first read records both steps.
        """
        self._handed += [(ref, agent) for ref in map(carried_ref, events) if ref is not None]
        if self._handed and self._recording is None:
            self._recording = asyncio.create_task(self._record_handed(), name="delivered-receipts")

    async def _record_handed(self) -> None:
        try:
            await asyncio.sleep(HANDED_GATHER_S)
            while self._handed:
                handed, self._handed = self._handed, []
                try:
                    self._tell_soon(await self._store.receipts.advance_copies(handed, "delivered", first_steps=True))
                except Exception:
                    log.warning(
                        "recording %d delivered receipt(s) failed; reads record them", len(handed), exc_info=True
                    )
        finally:
            self._recording = None

    async def reach(self, agent: AgentRef, messages: Iterable[MessageRef], state: str) -> None:
        """Move the agent's copies of ``messages`` to ``state``; tell the senders every step not yet told."""
        self._tell_soon(await self._store.receipts.advance(messages, agent, state))

    def _tell_soon(self, steps: list[store_receipts.Step]) -> None:
        """Tell these steps in the background (the request that took them does not wait)."""
        if steps:
            task = asyncio.create_task(self._tell(steps))
            self._telling.add(task)
            task.add_done_callback(self._telling.discard)

    async def _tell(self, steps: list[store_receipts.Step]) -> None:
        """Tell the senders, then record it: a failure in between tells a step twice, never not at all.

        Each event names message, agent and state, so consumers key on them.
        """
        try:
            # Started in order, so one copy's steps get increasing seqs (delivered before read).
            await asyncio.gather(
                *(
                    self._hub.emit(
                        step.project_id,
                        "message_receipt",
                        [step.sender_id],
                        {"message_id": step.message_id, "agent": step.agent, "state": step.state, "at": step.at},
                    )
                    for step in steps
                )
            )
            await self._store.receipts.told(steps)
        except Exception:
            log.warning("telling %d receipt step(s) failed; the sweep tells them", len(steps), exc_info=True)

    async def sweep(self) -> None:
        """Tell the steps whose teller died (any server's), once they are old enough to be abandoned."""
        steps = await self._store.receipts.untold(self._untold_after_s)
        if steps:
            await self._tell(steps)

    def start(self) -> None:
        """Start the sweep in the background."""
        self._sweeper.start()

    async def stop(self) -> None:
        """Stop the sweep; record what streams handed over and let the tellings under way finish.

        The sweep of another server covers tellings this one does not finish.
        """
        await self._sweeper.stop()
        if self._recording is not None:
            await asyncio.wait({self._recording}, timeout=5)
        if self._telling:
            await asyncio.wait(set(self._telling), timeout=5)

    async def with_summaries(self, shown: list[dict[str, Any]], docs: list[MessageDoc], agent_id: str) -> None:
        """Add ``receipts`` (counts per state) to the views of the messages ``agent_id`` sent."""
        sent = [doc for doc in docs if doc["from_id"] == agent_id]
        if not sent:
            return
        found = await self._store.receipts.of_messages(sent[0]["project_id"], [doc["id"] for doc in sent])
        by_id = {doc["id"]: doc for doc in sent}
        for view in shown:
            doc = by_id.get(view["id"])
            if doc is not None:
                view["receipts"] = views.receipt_summary(len(doc["recipients"]), found[doc["id"]])
