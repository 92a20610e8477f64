"""The per-project event log: every change an agent may need to hear of, numbered by ``seq``.

``seq`` comes from a per-project counter (an atomic ``$inc``), so it is dense and strictly
increasing; but concurrent writers may commit out of order, so a reader must never move past a
``seq`` it has not seen unless that ``seq`` is known to be lost (its writer died between taking
the number and writing the event). :func:`contiguous` makes that cut.

Events carry ids and plaintext routing only, never content, and expire after a TTL.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from pymongo import InsertOne, ReturnDocument, UpdateOne
from pymongo.asynchronous.change_stream import AsyncChangeStream
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, ClientBulkWriteException, DuplicateKeyError, InvalidOperation, WriteError

from ..ids import iso, parse_rfc3339, utcnow
from .batching import Batcher
from .documents import Announced, EventDoc
from .expiry import Expiry
from .failures import DUPLICATE_KEY, DatabaseDidNotWrite, insert_new
from .queries import eq

log = logging.getLogger(__name__)

EVERYONE = "*"
# How long a project's seqs are asked for before they are taken again in the writing command,
# after such a claim found that another process had written in it.
_CLAIM_PAUSE_S = 2.0
# Projects whose last seq a process remembers; past that it starts over (a guess is only a guess).
_MAX_GUESSES = 10_000
# The type of an event that only fills a reserved seq (the write it was for did not happen);
# it is addressed to nobody, so no client ever sees it.
FILLER = "filler"
# How long a change stream waits for a change before it answers "none yet".
_MAX_AWAIT_MS = 1000

#: The kinds of record announced with an event of their own, and the collection each lives in.
RecordKind = Literal["kv", "ref", "file"]
_RECORD_COLLECTIONS: dict[str, str] = {"kv": "kv", "ref": "refs", "file": "files"}

Result = TypeVar("Result")
#: A record announced with an event of its own (a message).
_Record = TypeVar("_Record", bound=Announced)
#: One outcome per record written with :meth:`EventStore.write_with_records`: ``None`` (stored) or why not.
Outcomes = list[BaseException | None]


def _bulk_write_errors(exc: ClientBulkWriteException) -> list[dict[str, Any]]:
    """Return a client bulkWrite's write errors as the server sent them (dicts; pymongo annotates them otherwise)."""
    errors: list[dict[str, Any]] = exc.details.get("writeErrors") or []
    return errors


def _outcome_known(exc: ClientBulkWriteException) -> bool:
    """Tell whether a failed ordered bulkWrite says how far it got: a write failed, and the connection held."""
    return exc.error is None and not exc.write_concern_errors and bool(_bulk_write_errors(exc))


def _claim_missed(exc: ClientBulkWriteException) -> bool:
    """Tell whether an ordered bulkWrite that starts with a :meth:`EventStore._claim` stopped at the claim.

    Then another writer had moved the counter on, and nothing was written.
    """
    if not _outcome_known(exc):
        return False
    first = _bulk_write_errors(exc)[0]
    return int(first["idx"]) == 0 and first.get("code") == DUPLICATE_KEY


class _ClaimMissed(Exception):
    """The seqs claimed for a write were taken by another writer; nothing was written."""


def _write_error(error: dict[str, Any]) -> WriteError:
    """Return the exception for one failed write of a bulk command: a duplicate id, or another failure."""
    if error.get("code") == DUPLICATE_KEY:
        return DuplicateKeyError(error.get("errmsg", "duplicate key"), DUPLICATE_KEY, error)
    return WriteError(error.get("errmsg", "write failed"), error.get("code"), error)


def event_key(project_id: str, seq: int) -> str:
    """Return the ``_id`` of a project's event ``seq``."""
    return f"{project_id}:{seq:015d}"


def visible_to(event: EventDoc, agent_id: str | None) -> bool:
    """Tell whether an event is addressed to an agent (directly or to everyone).

    ``agent_id`` ``None`` is the project's owner, who sees every event addressed to anyone
    (fillers, addressed to nobody, stay hidden).
    """
    recipients = event["recipients"]
    if agent_id is None:
        return bool(recipients)
    return agent_id in recipients or EVERYONE in recipients


def contiguous(events: list[EventDoc], after: int, now: datetime, gap_wait_s: float) -> tuple[list[EventDoc], int]:
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
    taken: list[EventDoc] = []
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

    def __init__(self, db: AsyncDatabase[Any], ttl_days: float, expiry: Expiry | None = None) -> None:
        self._expiry = expiry or Expiry()
        self._db = db
        self.col = db["events"]
        self.counters = db["counters"]
        self._ttl = timedelta(days=ttl_days)
        # Concurrent appends are numbered with one $inc per project and written with one
        # insert_many, as one batch.
        self._appends: Batcher[tuple[str, str, list[str], dict[str, Any]], EventDoc] = Batcher(self._append_batch)
        # Per project, the highest seq this process has taken, while it may still be the last
        # one taken by anyone: what :meth:`_claim` expects the counter to stand at.
        self._last_taken: dict[str, int] = {}
        # Per project, until when (monotonic) not to claim, after a claim found another writer.
        self._claims_paused: dict[str, float] = {}
        # Cleared for good when the server turns out to be older than MongoDB 8.0.
        self._together = True

    async def _write_together(self, models: list[InsertOne[Any] | UpdateOne]) -> bool:
        """Run writes to several collections as one ordered client-level bulkWrite (MongoDB 8.0+).

        Returns:
            ``False`` if the server is older than 8.0 (pymongo says so before sending anything):
            nothing was written, and every later call says so at once.

        Raises:
            ClientBulkWriteException: a write failed (those before it were done), or the outcome
                is unknown (``error`` set: the connection broke).
        """
        if not self._together:
            return False
        try:
            await self._db.client.bulk_write(models, ordered=True)
        except InvalidOperation:
            log.info("the database has no client-level bulkWrite (MongoDB < 8.0): writes take a command each")
            self._together = False
            return False
        return True

    async def ensure_indexes(self) -> None:
        """Create the (project, seq) index and the TTL index."""
        await self.col.create_index([("project_id", 1), ("seq", 1)])
        await self._expiry.index(self.col, "expires_at")

    async def append(self, project_id: str, kind: str, recipients: list[str], data: dict[str, Any]) -> EventDoc:
        """Number and store one event; return it with its ``seq``."""
        return await self._appends.submit((project_id, kind, recipients, data))

    async def _append_batch(
        self, items: list[tuple[str, str, list[str], dict[str, Any]]]
    ) -> list[EventDoc | BaseException]:
        events = await self.number([project_id for project_id, *_ in items])
        for event, (_, kind, recipients, data) in zip(events, items, strict=True):
            event.update({"type": kind, "recipients": recipients, "data": data})
        await self.write(events)
        return list(events)

    async def number(self, project_ids: list[str]) -> list[EventDoc]:
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
                self._took(project_id, int(counter["seq"]))
        except BaseException:
            # Another project's numbers failed: what was taken already is written, as fillers.
            if firsts:
                await self.write(self._fillers([p for p in project_ids if p in firsts], firsts))
            raise
        return self._fillers(project_ids, firsts)

    def _claim(self, project_ids: list[str]) -> tuple[UpdateOne, list[EventDoc]] | None:
        """Guess the next seqs of one project's events-to-be, to take them in the command that writes them.

        A process that wrote the project's last event can tell the counter's value without
        asking: the returned update moves the counter on only if it still stands there, and
        otherwise fails with a duplicate key (its upsert meets the counter's ``_id``), which
        stops an ordered bulkWrite before anything after it. One round trip then numbers and
        stores a send, where asking first takes two.

        Returns:
            The counter's update (for a client-level bulkWrite) and the events-to-be (fillers,
            as :meth:`number` makes them), or ``None`` when there is no good guess: events of
            several projects, a project this process has not numbered, or one whose claim found
            another writer a moment ago (see :meth:`_claim_failed`).
        """
        project_id = project_ids[0]
        last = self._last_taken.get(project_id)
        if last is None or any(other != project_id for other in project_ids):
            return None
        if time.monotonic() < self._claims_paused.get(project_id, 0.0):
            return None
        update = UpdateOne(
            {"_id": f"events:{project_id}", "seq": last},
            {"$inc": {"seq": len(project_ids)}},
            upsert=True,
            namespace=self.counters.full_name,
        )
        return update, self._fillers(project_ids, {project_id: last + 1})

    def _claimed(self, events: list[EventDoc]) -> None:
        """Note that a claim's seqs (the events :meth:`_claim` returned) were taken."""
        self._took(events[-1]["project_id"], events[-1]["seq"])

    def _claim_failed(self, project_id: str) -> None:
        """Forget the guess for a project whose counter had moved on, and pause its claims.

        Another process writes in the project too: a guess would likely miss again and cost a
        round trip each time, so for a while seqs are asked for first.
        """
        self._last_taken.pop(project_id, None)
        self._claims_paused[project_id] = time.monotonic() + _CLAIM_PAUSE_S

    def _took(self, project_id: str, seq: int) -> None:
        if len(self._last_taken) >= _MAX_GUESSES and project_id not in self._last_taken:
            self._last_taken.clear()
            self._claims_paused.clear()
        self._last_taken[project_id] = max(seq, self._last_taken.get(project_id, 0))

    def _fillers(self, project_ids: list[str], firsts: dict[str, int]) -> list[EventDoc]:
        """Return filler events for ``project_ids``, numbered from each project's first taken ``seq``."""
        now = utcnow()
        following = dict(firsts)
        events: list[EventDoc] = []
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

    async def write(self, events: list[EventDoc], *, stored_ok: bool = False) -> None:
        """Store numbered events.

        Args:
            events: The events.
            stored_ok: Some may be stored already (a write whose outcome is unknown stored them):
                keep those as stored rather than fail. An event's ``_id`` is its place in the log,
                so a stored one is never a different event of the same number.
        """
        taken = await insert_new(self.col, events)
        if taken and not stored_ok:
            seqs = sorted(events[index]["seq"] for index in taken)
            raise DuplicateKeyError(
                f"events {seqs} of project {events[0]['project_id']} are stored already", DUPLICATE_KEY
            )

    async def write_with_records(
        self,
        collection: str,
        docs: list[_Record],
        announce: Callable[[EventDoc, _Record], None],
        settle: Callable[[list[EventDoc], Outcomes], Awaitable[list[Result]]],
    ) -> list[Result]:
        """Store new records with one event each, numbered in the project's log; the one call a record store makes.

        Each record is named after its event (``seq``), so that a retry can tell whether the event
        was stored. The records go first and the write is ordered, so an event is never stored
        for a record that is not. Where this process numbered the project last, one client-level
        bulkWrite (MongoDB 8.0+) claims the seqs, stores the records and their events; otherwise
        the seqs are asked for first. On an older server the records go as one insert and the
        events as another. Every seq taken is stored in the end: as the record's event, or as a
        filler addressed to nobody, so readers never wait for it.

        Args:
            collection: The records' collection.
            docs: The records to insert (each with its ``_id`` and ``project_id``).
            announce: Makes a numbered event (a filler) the event of a record: ``announce(event, doc)``.
            settle: Given the events and one outcome per record (``None``: stored; a
                ``DuplicateKeyError``: its ``_id`` was taken), answers each record; it may
                announce a stored record with the event of a duplicate (a retry). The events
                not stored yet are stored after it, also when it fails.

        Returns:
            What ``settle`` answered.
        """
        project_ids = [doc["project_id"] for doc in docs]
        claim = self._claim(project_ids) if self._together else None
        if claim is not None:
            counter, events = claim
            _name(docs, events)
            try:
                outcomes, stored = await self._insert_with_events(collection, docs, events, announce, counter)
            except _ClaimMissed:
                self._claim_failed(project_ids[0])
            except BaseException:
                # Maybe unknown whether the seqs were taken: no filler may be written for them
                # (they may be another writer's). A seq taken and left unwritten is skipped by
                # readers after the gap wait, as when a server dies between numbering and writing.
                self._claim_failed(project_ids[0])
                raise
            else:
                self._claimed(events)
                return await self._settle(events, outcomes, stored, settle)
        events = await self.number(project_ids)
        _name(docs, events)
        try:
            outcomes, stored = await self._insert_with_events(collection, docs, events, announce)
        except BaseException:
            # These numbers are taken: write every one, as fillers where nothing is announced,
            # keeping what a write whose outcome is unknown (the connection broke) stored.
            await self.write(events, stored_ok=True)
            raise
        return await self._settle(events, outcomes, stored, settle)

    async def _settle(
        self,
        events: list[EventDoc],
        outcomes: Outcomes,
        stored: int,
        settle: Callable[[list[EventDoc], Outcomes], Awaitable[list[Result]]],
    ) -> list[Result]:
        """Have the records answered, then store the events not stored yet (from ``stored`` on)."""
        try:
            return await settle(events, outcomes)
        finally:
            await self.write(events[stored:])

    async def _insert_with_events(
        self,
        collection: str,
        docs: list[_Record],
        events: list[EventDoc],
        announce: Callable[[EventDoc, _Record], None],
        counter: UpdateOne | None = None,
    ) -> tuple[Outcomes, int]:
        """Store the records, and if every one is new, their events, in one command.

        At the first record that fails (a retry's duplicate id), the command stops before any
        event, and the rest of the records go as one insert.

        Returns:
            One outcome per record (``None``: stored), and how many of ``events``, from the first,
            are stored (announced in place).

        Raises:
            _ClaimMissed: the counter had moved on; nothing was written.
        """
        records = self._db[collection]
        announced = [event.copy() for event in events]
        for event, doc in zip(announced, docs, strict=True):
            announce(event, doc)
        models: list[InsertOne[Any] | UpdateOne] = [] if counter is None else [counter]
        models += [InsertOne(doc, namespace=records.full_name) for doc in docs]
        models += [InsertOne(event, namespace=self.col.full_name) for event in announced]
        try:
            together = await self._write_together(models)
        except ClientBulkWriteException as exc:
            if not _outcome_known(exc):
                # The caller decides what to write. The connection's own error goes up, so that
                # an outage still answers 503.
                if isinstance(exc.error, BaseException):
                    raise exc.error from exc
                raise
            if counter is not None and _claim_missed(exc):
                raise _ClaimMissed from None
            error = _bulk_write_errors(exc)[0]
            failed = int(error["idx"]) - (0 if counter is None else 1)
            if failed < 0:
                raise _write_error(error) from None  # the claim was not written (a full disk, say)
            if failed >= len(docs):
                # Every record is stored, and the events before the failed one.
                for event, written in zip(events, announced, strict=True):
                    event.update(written)
                return [None] * len(docs), failed - len(docs)
            outcome = _write_error(error)
            rest = await _insert_each(records, docs[failed + 1 :]) if failed + 1 < len(docs) else []
            return [*([None] * failed), outcome, *rest], 0
        if not together:
            # An older server: the numbers are asked for first, the writes go one collection at a time.
            if counter is not None:
                raise _ClaimMissed
            return await _insert_each(records, docs), 0
        for event, written in zip(events, announced, strict=True):
            event.update(written)
        return [None] * len(docs), len(events)

    async def announce(
        self,
        kind: RecordKind,
        record: Mapping[str, Any],
        event_type: str,
        recipients: list[str],
        data: dict[str, Any],
        *,
        unchanged: tuple[str, ...] = (),
    ) -> EventDoc | None:
        """Append a stored record's ``event_type`` event unless one is stored already; return it, or ``None``.

        The record keeps the ``seq`` of its event, written only once the event is stored, so a
        record with a ``seq`` was announced (even when its event has expired since). A retry of a
        write that stored its record but died before the event (or before naming it) so still
        tells the others; at worst they hear of the record twice, never not at all.

        Args:
            kind: What the record is (``kv``, ``ref``, ``file``): where it is stored.
            record: The stored record (``_id``, ``project_id``, and ``seq`` once announced).
            event_type: The event type.
            recipients: Agent ids the event is for (or ``EVERYONE``).
            data: The event's data.
            unchanged: Fields of a record that changes (a kv entry's ``version``) that must still
                hold the values of ``record`` for its ``seq`` to be set: a newer write is announced
                by its own writer.
        """
        if record.get("seq") is not None:
            return None
        records = self._db[_RECORD_COLLECTIONS[kind]]
        project_id = record["project_id"]
        match = {"_id": record["_id"], **{name: record[name] for name in unchanged}}
        claim = self._claim([project_id]) if self._together else None
        if claim is not None:
            # One command: the claim of the seq, the event, then the record naming it.
            counter, (event,) = claim
            event.update({"type": event_type, "recipients": recipients, "data": data})
            named = UpdateOne(match, {"$set": {"seq": event["seq"]}}, namespace=records.full_name)
            try:
                done = await self._write_together([counter, InsertOne(event, namespace=self.col.full_name), named])
            except ClientBulkWriteException as exc:
                self._claim_failed(project_id)
                if not _claim_missed(exc):
                    # The seq may be taken and unwritten (skipped by readers after the gap wait),
                    # or the event stored and the record not named (a retry announces it again).
                    if isinstance(exc.error, BaseException):
                        raise exc.error from exc
                    raise
            else:
                if done:
                    self._claimed([event])
                    return event
        event = await self.append(project_id, event_type, recipients, data)
        await records.update_one(match, {"$set": {"seq": event["seq"]}})
        return event

    @contextlib.asynccontextmanager
    async def inserts(self) -> AsyncIterator[InsertFeed]:
        """Follow the events stored from now on (a change stream), for the realtime watcher.

        Raises:
            PyMongoError: the database cannot open a change stream (or went away).
        """
        async with await self.col.watch(max_await_time_ms=_MAX_AWAIT_MS) as stream:
            yield InsertFeed(stream, _MAX_AWAIT_MS / 1000)

    def still_kept(self, written_at: datetime) -> bool:
        """Tell whether an event written at ``written_at`` is still in the log (not past its TTL)."""
        return utcnow() - written_at < self._ttl

    async def of_kind(self, keys: list[str], kind: str) -> set[str]:
        """Return which of the events ``keys`` (see :func:`event_key`) are stored with type ``kind``."""
        return {doc["_id"] async for doc in self.col.find({"_id": {"$in": keys}, "type": kind}, {"_id": 1})}

    async def after(self, project_id: str, after: int, limit: int, upto: int | None = None) -> list[EventDoc]:
        """Return up to ``limit`` of the project's events with ``after < seq (<= upto)``, in ``seq`` order."""
        bounds: dict[str, int] = {"$gt": after}
        if upto is not None:
            bounds["$lte"] = upto
        cursor = self.col.find({"project_id": eq(project_id), "seq": bounds}).sort("seq", 1).limit(limit)
        return [doc async for doc in cursor]

    async def latest_seq(self, project_id: str) -> int:
        """Return the last ``seq`` handed out in the project (0 if none)."""
        counter = await self.counters.find_one({"_id": f"events:{project_id}"})
        return int(counter["seq"]) if counter else 0

    async def oldest_seq(self, project_id: str) -> int | None:
        """Return the smallest ``seq`` still kept, or ``None`` when the log is empty."""
        cursor = self.col.find({"project_id": eq(project_id)}, {"seq": 1}).sort("seq", 1).limit(1)
        docs = [doc async for doc in cursor]
        return int(docs[0]["seq"]) if docs else None

    async def delete_project(self, project_id: str) -> None:
        """Delete a project's events and its counter."""
        self._last_taken.pop(project_id, None)
        await self.col.delete_many({"project_id": project_id})
        await self.counters.delete_one({"_id": f"events:{project_id}"})


class InsertFeed:
    """The events stored since a change stream opened (see :meth:`EventStore.inserts`).

    Args:
        stream: The change stream.
        max_await_s: How long the database is asked to hold an empty poll open.
    """

    def __init__(self, stream: AsyncChangeStream[Any], max_await_s: float) -> None:
        self._stream = stream
        self._max_await_s = max_await_s
        #: Whether the last empty poll was held open by the database (MongoDB honours
        #: ``maxAwaitTimeMS``; the embedded database answers at once, so its caller must pace itself).
        self.waited = False

    async def next(self) -> tuple[bool, EventDoc | None]:
        """Take the next change, if one came within the wait.

        Returns:
            Whether a change came, and the event it stored (``None`` for a change that stored none).
        """
        started = time.monotonic()
        change = await self._stream.try_next()
        if change is None:
            self.waited = time.monotonic() - started >= self._max_await_s / 2
            return False, None
        document = change.get("fullDocument")
        if change.get("operationType") != "insert" or not document or "seq" not in document:
            return True, None
        return True, document


def _name(docs: list[_Record], events: list[EventDoc]) -> None:
    """Name each record's event in it, so that a retry can tell whether the event was stored."""
    for doc, event in zip(docs, events, strict=True):
        doc["seq"] = event["seq"]


async def _insert_each(records: AsyncCollection[Any], docs: Sequence[Announced]) -> Outcomes:
    """Insert records each on its own (unordered); return one outcome per record."""
    if len(docs) == 1:
        try:
            await records.insert_one(docs[0])
        except DuplicateKeyError as exc:
            return [exc]
        return [None]
    try:
        await records.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        failed = {error["index"]: error for error in exc.details.get("writeErrors", [])}
        if exc.details.get("writeConcernErrors"):
            raise
        return [None if failed.get(index) is None else _write_error(failed[index]) for index in range(len(docs))]
    return [None] * len(docs)
