"""The event feed a client reads: what a reconnecting stream missed, and pages for clients that poll.

Live events reach a stream through the hub; this is the part read from the log. A client that
asks for numbers the log no longer keeps (expired), or never had (a wiped database), gets a
``reset`` event and goes on from what is kept: it re-lists its inbox and loses nothing that exists.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from ..ids import iso, utcnow
from ..store.documents import EventBody
from ..store.events import EventStore, contiguous, visible_to

#: Events read from the log per round trip of a replay.
_REPLAY_PAGE = 500


def reset(seq: int, oldest: int | None, latest: int) -> EventBody:
    """Return the event that tells a client the events before ``seq`` are gone: it should re-list its inbox."""
    return {
        "seq": seq,
        "type": "reset",
        "created_at": iso(utcnow()),
        "data": {"oldest_seq": oldest, "latest_seq": latest},
    }


def resume(seq: int) -> EventBody:
    """Return the event that tells a client too far behind to reconnect with Last-Event-ID ``seq``: it loses nothing."""
    return {"seq": seq, "type": "resume", "created_at": iso(utcnow()), "data": {"last_event_id": seq}}


class EventFeed:
    """Reads a project's event log on behalf of one reader.

    Args:
        events: The event log.
        gap_wait_s: How long a missing ``seq`` may still be in flight (see :func:`.contiguous`).
    """

    def __init__(self, events: EventStore, gap_wait_s: float) -> None:
        self._events = events
        self._gap_wait_s = gap_wait_s

    async def missed(
        self, project_id: str, agent_id: str | None, settled: int, last: int | None
    ) -> AsyncIterator[EventBody]:
        """Yield what a stream reconnecting after ``last`` missed, up to ``settled`` (where live delivery starts).

        Args:
            project_id: Whose log.
            agent_id: The reader (``None``: the project's owner, who sees every addressed event).
            settled: The last ``seq`` stored for good when the stream subscribed.
            last: The client's Last-Event-ID (``None``: a new stream, which misses nothing).

        Yields:
            The events addressed to the reader, in ``seq`` order; a ``reset`` first where the
            client's number is unknown (from the future) or what it missed has expired.
        """
        events = self._events
        sent = settled if last is None else last
        if sent > settled and sent > await events.latest_seq(project_id):
            # An id from the future (a wiped database, another deployment): start over.
            yield reset(settled, None, settled)
            return
        if sent >= settled:
            return
        oldest = await events.oldest_seq(project_id)
        if oldest is None or oldest > sent + 1:
            # What the client missed has expired: say so, and go on from what is kept.
            gap_end = settled if oldest is None else oldest - 1
            yield reset(gap_end, oldest, settled)
            sent = gap_end
        while sent < settled:
            page = await events.after(project_id, sent, _REPLAY_PAGE, upto=settled)
            if not page:
                return
            for event in page:
                if visible_to(event, agent_id):
                    yield event
            sent = page[-1]["seq"]

    async def poll(self, project_id: str, agent_id: str, after: int, limit: int) -> tuple[list[EventBody], int, bool]:
        """Return the reader's events after ``after``, never past a ``seq`` still in flight.

        Returns:
            ``(events, last_seq, reset)``: ``last_seq`` is where the next poll starts;
            ``reset`` is true when events after ``after`` expired (or ``after`` was from the
            future), so the client should re-list its inbox.
        """
        events = self._events
        was_reset = False
        if after > 0:
            oldest = await events.oldest_seq(project_id)
            if oldest is not None and oldest > after + 1:
                was_reset, after = True, oldest - 1
        latest = await events.latest_seq(project_id)
        if after > latest:
            was_reset, after = True, latest
        page = await events.after(project_id, after, limit)
        taken, passed = contiguous(page, after, utcnow(), self._gap_wait_s)
        return [event for event in taken if visible_to(event, agent_id)], passed, was_reset
