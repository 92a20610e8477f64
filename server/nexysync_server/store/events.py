"""The per-project event log: every change an agent may need to hear of, numbered by ``seq``.

``seq`` comes from a per-project counter (an atomic ``$inc``), so it is dense and strictly
increasing; but concurrent writers may commit out of order, so a reader must never move past a
``seq`` it has not seen unless that ``seq`` is known to be lost (its writer died between taking
the number and writing the event). :func:`contiguous` makes that cut.

Events carry ids and plaintext routing only, never content, and expire after a TTL.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from ..ids import iso, parse_rfc3339, utcnow
from .batching import Batcher
from .failures import DUPLICATE_KEY, DatabaseDidNotWrite

EVERYONE = "*"
# The type of an event that only fills a reserved seq (the write it was for did not happen);
# it is addressed to nobody, so no client ever sees it.
FILLER = "filler"


def event_key(project_id: str, seq: int) -> str:
    """Return the ``_id`` of a project's event ``seq``."""
    return f"{project_id}:{seq:015d}"


def public(event: dict[str, Any]) -> dict[str, Any]:
    """Return the API representation of an event."""
    return {"seq": event["seq"], "type": event["type"], "created_at": event["created_at"], "data": event["data"]}


def visible_to(event: dict[str, Any], agent_id: str | None) -> bool:
    """Tell whether an event is addressed to an agent (directly or to everyone).

    ``agent_id`` ``None`` is the project's owner, who sees every event addressed to anyone
    (fillers, addressed to nobody, stay hidden).
    """
    recipients = event["recipients"]
    if agent_id is None:
        return bool(recipients)
    return agent_id in recipients or EVERYONE in recipients


def contiguous(
    events: list[dict[str, Any]], after: int, now: datetime, gap_wait_s: float
) -> tuple[list[dict[str, Any]], int]:
    """Cut a ``seq``-ordered run of events at the first gap that may still be filled.

    Args:
        events: Events with ``seq > after`` in ``seq`` order.
        after: The ``seq`` the reader has already passed.
        now: The current time.
        gap_wait_s: How long a missing ``seq`` may still be in flight; a gap whose next event is
            older than this is taken as lost and skipped.

    Returns:
        The events the reader may take, and the ``seq`` it has then passed.
    """
    taken: list[dict[str, Any]] = []
    passed = after
    for event in events:
        if event["seq"] != passed + 1:
            written = parse_rfc3339(event["created_at"])
            if (now - written).total_seconds() < gap_wait_s:
                break
        taken.append(event)
        passed = event["seq"]
    return taken, passed


class EventStore:
    """The ``events`` collection and its per-project ``seq`` counters.

    Args:
        db: The database.
        ttl_days: How long events are kept.
    """

    def __init__(self, db: AsyncDatabase, ttl_days: float) -> None:
        self.col = db["events"]
        self.counters = db["counters"]
        self._ttl = timedelta(days=ttl_days)
        # Concurrent appends are numbered with one $inc per project and written with one
        # insert_many, as one batch.
        self._appends: Batcher[tuple[str, str, list[str], dict[str, Any]], dict[str, Any]] = Batcher(self._append_batch)

    async def ensure_indexes(self) -> None:
        """Create the (project, seq) index and the TTL index."""
        await self.col.create_index([("project_id", 1), ("seq", 1)])
        await self.col.create_index("expires_at", expireAfterSeconds=0)

    async def append(self, project_id: str, kind: str, recipients: list[str], data: dict[str, Any]) -> dict[str, Any]:
        """Number and store one event; return it with its ``seq``."""
        return await self._appends.submit((project_id, kind, recipients, data))

    async def _append_batch(
        self, items: list[tuple[str, str, list[str], dict[str, Any]]]
    ) -> list[dict[str, Any] | BaseException]:
        events = await self.number([project_id for project_id, *_ in items])
        for event, (_, kind, recipients, data) in zip(events, items, strict=True):
            event.update(type=kind, recipients=recipients, data=data)
        await self.write(events)
        return list(events)

    async def number(self, project_ids: list[str]) -> list[dict[str, Any]]:
        """Take the next ``seq`` of each project listed (once per listing); return the events-to-be.

        The events come back as fillers addressed to nobody; fill in type, recipients and data,
        then :meth:`write` every one of them, fillers too: until a taken ``seq`` is stored, every
        reader of the project holds later events back (for up to the gap wait).
        """
        counts = Counter(project_ids)
        firsts: dict[str, int] = {}
        try:
            for project_id, count in counts.items():
                counter = await self.counters.find_one_and_update(
                    {"_id": f"events:{project_id}"},
                    {"$inc": {"seq": count}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
                if counter is None:
                    raise DatabaseDidNotWrite("the seq counter's upsert")
                firsts[project_id] = int(counter["seq"]) - count + 1
        except BaseException:
            # Another project's numbers failed: what was taken already is written, as fillers.
            if firsts:
                await self.write(self._fillers([p for p in project_ids if p in firsts], firsts))
            raise
        return self._fillers(project_ids, firsts)

    def _fillers(self, project_ids: list[str], firsts: dict[str, int]) -> list[dict[str, Any]]:
        """Return filler events for ``project_ids``, numbered from each project's first taken ``seq``."""
        now = utcnow()
        following = dict(firsts)
        events: list[dict[str, Any]] = []
        for project_id in project_ids:
            seq = following[project_id]
            following[project_id] += 1
            events.append(
                {
                    "_id": event_key(project_id, seq),
                    "project_id": project_id,
                    "seq": seq,
                    "type": FILLER,
                    "recipients": [],
                    "data": {},
                    "created_at": iso(now),
                    "expires_at": now + self._ttl,
                }
            )
        return events

    async def write(self, events: list[dict[str, Any]], *, stored_ok: bool = False) -> None:
        """Store numbered events.

        Args:
            events: The events.
            stored_ok: Some may be stored already (a write whose outcome is unknown stored them):
                keep those as stored rather than fail. An event's ``_id`` is its place in the log,
                so a stored one is never a different event of the same number.
        """
        if not events:
            return
        try:
            if len(events) == 1:
                await self.col.insert_one(events[0])
            else:
                await self.col.insert_many(events, ordered=False)
        except DuplicateKeyError:
            if not stored_ok:
                raise
        except BulkWriteError as exc:
            details = exc.details
            duplicates_only = all(error.get("code") == DUPLICATE_KEY for error in details.get("writeErrors", []))
            if not (stored_ok and duplicates_only and not details.get("writeConcernErrors")):
                raise

    async def announce(
        self,
        records: AsyncCollection,
        record: dict[str, Any],
        kind: str,
        recipients: list[str],
        data: dict[str, Any],
        *,
        unchanged: tuple[str, ...] = (),
    ) -> dict[str, Any] | None:
        """Append ``record``'s ``kind`` event unless one is stored already; return the new event, or ``None``.

        The record keeps the ``seq`` of its event, written only once the event is stored, so a
        record with a ``seq`` was announced (even when its event has expired since). A retry of a
        write that stored its record but died before the event (or before naming it) so still
        tells the others; at worst they hear of the record twice, never not at all.

        Args:
            records: The record's collection.
            record: The stored record (``_id``, ``project_id``, and ``seq`` once announced).
            kind: The event type.
            recipients: Agent ids the event is for (or ``EVERYONE``).
            data: The event's data.
            unchanged: Fields of a record that changes (a kv entry's ``version``) that must still
                hold the values of ``record`` for its ``seq`` to be set: a newer write is announced
                by its own writer.
        """
        if record.get("seq") is not None:
            return None
        event = await self.append(record["project_id"], kind, recipients, data)
        match = {"_id": record["_id"], **{name: record[name] for name in unchanged}}
        await records.update_one(match, {"$set": {"seq": event["seq"]}})
        return event

    def still_kept(self, written_at: datetime) -> bool:
        """Tell whether an event written at ``written_at`` is still in the log (not past its TTL)."""
        return utcnow() - written_at < self._ttl

    async def of_kind(self, keys: list[str], kind: str) -> set[str]:
        """Return which of the events ``keys`` (see :func:`event_key`) are stored with type ``kind``."""
        return {doc["_id"] async for doc in self.col.find({"_id": {"$in": keys}, "type": kind}, {"_id": 1})}

    async def after(self, project_id: str, after: int, limit: int, upto: int | None = None) -> list[dict[str, Any]]:
        """Return up to ``limit`` of the project's events with ``after < seq (<= upto)``, in ``seq`` order."""
        bounds: dict[str, int] = {"$gt": after}
        if upto is not None:
            bounds["$lte"] = upto
        cursor = self.col.find({"project_id": project_id, "seq": bounds}).sort("seq", 1).limit(limit)
        return [doc async for doc in cursor]

    async def latest_seq(self, project_id: str) -> int:
        """Return the last ``seq`` handed out in the project (0 if none)."""
        counter = await self.counters.find_one({"_id": f"events:{project_id}"})
        return int(counter["seq"]) if counter else 0

    async def oldest_seq(self, project_id: str) -> int | None:
        """Return the smallest ``seq`` still kept, or ``None`` when the log is empty."""
        cursor = self.col.find({"project_id": project_id}, {"seq": 1}).sort("seq", 1).limit(1)
        docs = [doc async for doc in cursor]
        return int(docs[0]["seq"]) if docs else None

    async def delete_project(self, project_id: str) -> None:
        """Delete a project's events and its counter."""
        await self.col.delete_many({"project_id": project_id})
        await self.counters.delete_one({"_id": f"events:{project_id}"})
