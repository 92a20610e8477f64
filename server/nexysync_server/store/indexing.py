"""Make a process's indexes at start-up, and keep trying in the background while the database is unavailable.

A worker that starts while the database is down (restarting, its disk full) must still start:
gunicorn stops the whole server when a worker fails to boot, so one worker replaced at the wrong
moment would take every other one down with it. Until its indexes are made, the process answers
503 ``DATABASE_UNAVAILABLE`` (see :attr:`Indexes.ready`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from pymongo.errors import PyMongoError

from ..background import cancel_and_wait
from .failures import database_trouble

log = logging.getLogger(__name__)

_RETRY_FIRST_S = 0.25
_RETRY_MAX_S = 5.0


class Indexes:
    """Run ``ensure`` (idempotent index creation) until it succeeds.

    Args:
        ensure: Creates the process's indexes.
    """

    def __init__(self, ensure: Callable[[], Awaitable[None]]) -> None:
        self._ensure = ensure
        self.ready = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Make the indexes now; if the database is unavailable, go on and keep trying in the background.

        Raises:
            PyMongoError: a database error that waiting will not cure (the start-up fails, as it should).
        """
        try:
            await self._ensure()
        except PyMongoError as exc:
            if database_trouble(exc) is None:
                raise
            log.warning("the database is unavailable at start-up (%s); answering 503 until it is back", exc)
            self._task = asyncio.create_task(self._retry(), name="indexes")
            return
        self.ready = True

    async def _retry(self) -> None:
        delay = _RETRY_FIRST_S
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_S)
            try:
                await self._ensure()
            except PyMongoError as exc:
                if database_trouble(exc) is None:
                    log.exception("making the indexes failed; retrying in %.2g s", delay)
                continue
            self.ready = True
            log.info("the database is back: indexes made, serving")
            return

    async def stop(self) -> None:
        """Stop trying."""
        await cancel_and_wait(self._task)
        self._task = None
