"""Follow the event log with a change stream and hand every new event to the hub.

One watcher per process, whatever the number of streams. Where the database cannot do change
streams (or the stream breaks), the hub's sweeper still reads the log by ``seq`` every
``event_poll_interval_s``, so delivery slows down but nothing is lost; the watcher retries with
backoff. When a change stream opens again after a failure (the database restarted, say), the
watcher first has the hub read every followed project's log after the last ``seq`` it released,
so what was written while it was away comes at once and in order, not at the next sweep.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..background import cancel_and_wait
from ..ids import stored_at
from ..metrics import DATABASE_ERRORS, WATCHER_LAG, WATCHER_POLLS
from ..store.events import EventStore
from ..store.failures import DatabaseError
from .hub import Hub

log = logging.getLogger(__name__)

# Backoff between attempts to open a change stream: doubling from the first to the last.
_RETRY_FIRST_S = 0.25
_RETRY_MAX_S = 2.0
# Back-off between empty polls of a database that answers them at once (the embedded one does not
# honour maxAwaitTimeMS): short while events flow, up to half a second when idle. Events written by
# this process reach its own streams without the watcher, so this bounds only cross-process delay
# (on the embedded database, a file's ``file_ready`` from the CDN, or another worker's events).
# An idle poll costs both processes about 1.5 ms of CPU: at 50 ms it was most of an idle server's.
_IDLE_MIN_S = 0.005
_IDLE_MAX_S = 0.5


class Watcher:
    """Follow the event log's inserts and publish each to the hub.

    Args:
        events: The event log.
        hub: Where events go.
    """

    def __init__(self, events: EventStore, hub: Hub) -> None:
        self._events = events
        self._hub = hub
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start watching in the background."""
        self._task = asyncio.create_task(self._run(), name="event-watcher")

    async def stop(self) -> None:
        """Stop watching."""
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        delay = _RETRY_FIRST_S
        failed = False
        while True:
            # Nothing to deliver while no stream of this process listens: do not poll at all.
            await self._hub.wait_for_listeners()
            try:
                await self._follow(resuming=failed)
                failed, delay = False, _RETRY_FIRST_S
                continue
            except asyncio.CancelledError:
                raise
            except DatabaseError as exc:
                DATABASE_ERRORS.labels("watcher").inc()
                log.warning("event change stream failed (%s); the sweeper covers, retrying in %.2g s", exc, delay)
            except Exception:
                log.exception("event watcher failed; the sweeper covers, retrying in %.2g s", delay)
            failed = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_S)

    async def _follow(self, *, resuming: bool) -> None:
        """Publish inserts until no stream listens any more.

        Events written while nobody listened are not needed: a stream that opens reads the log
        from where its feed starts.

        Args:
            resuming: The last change stream failed: once the new one is open, catch up from the log.
        """
        async with self._events.inserts() as feed:
            if resuming:
                # Opened first, read second: an event written in between is both read and
                # watched, and the hub releases it once; none falls between the two.
                await self._hub.catch_up()
                log.info("event change stream resumed after a failure; caught up from the log")
            idle_s = _IDLE_MIN_S
            while self._hub.has_listeners():
                changed, document = await feed.next()
                if not changed:
                    WATCHER_POLLS.labels("empty").inc()
                    if feed.waited:
                        continue  # the database held the poll open until its wait ran out
                    # One that answers at once (the embedded one) would be polled in a tight loop.
                    await asyncio.sleep(idle_s)
                    idle_s = min(idle_s * 2, _IDLE_MAX_S)
                    continue
                if document is None or not self._hub.publish(document):
                    WATCHER_POLLS.labels("seen").inc()
                    continue
                WATCHER_POLLS.labels("event").inc()
                WATCHER_LAG.observe(max(0.0, time.time() - stored_at(document["created_at"])))
                # Events of other processes are flowing: poll at once again. Events this process
                # wrote came to its streams without the watcher; polling fast for them would only
                # take the database's time from the writes.
                idle_s = _IDLE_MIN_S
