"""Work a server process repeats in the background: started with the app, cancelled at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def cancel_and_wait(task: asyncio.Task[None] | None) -> None:
    """Cancel a background task and wait until it has ended (nothing to do for ``None``)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class Periodic:
    """Run ``step`` every ``interval_s`` in a task; a step that fails is logged and tried again next time.

    Args:
        name: The task's name, also used in the log.
        step: One round of the work.
        interval_s: Time between rounds.
        first_now: Run the first round at start instead of after one interval.
    """

    def __init__(
        self, name: str, step: Callable[[], Awaitable[object]], interval_s: float, *, first_now: bool = False
    ) -> None:
        self._name = name
        self._step = step
        self._interval_s = interval_s
        self._first_now = first_now
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the rounds in the background."""
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        """Stop; a round under way is cancelled."""
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        if not self._first_now:
            await asyncio.sleep(self._interval_s)
        while True:
            try:
                await self._step()
            except Exception:
                log.exception("%s failed; trying again in %.1f s", self._name, self._interval_s)
            await asyncio.sleep(self._interval_s)
