"""What the server makes of a database that is down or full, and of a full files volume."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import time
from typing import Any

import pytest
from metric_samples import sample
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    DuplicateKeyError,
    OperationFailure,
    ServerSelectionTimeoutError,
    WriteError,
)

from nexysync_server import cli
from nexysync_server.cdn.leases import LeaseReleases
from nexysync_server.errors import database_unavailable
from nexysync_server.ids import iso, utcnow
from nexysync_server.realtime.watcher import Watcher
from nexysync_server.store.blobs import volume_full
from nexysync_server.store.embedded import EmbeddedMongoError
from nexysync_server.store.events import EventStore
from nexysync_server.store.failures import DatabaseDidNotWrite, database_trouble


@pytest.mark.parametrize(
    "error",
    [
        ServerSelectionTimeoutError("no servers"),
        AutoReconnect("connection reset"),
        WriteError("disk I/O error", 8, {"code": 8, "errmsg": "disk I/O error"}),
        OperationFailure("database or disk is full", 13),
        OperationFailure("out of disk", 14031),
        BulkWriteError({"writeErrors": [{"index": 0, "code": 8, "errmsg": "disk I/O error"}]}),
        DatabaseDidNotWrite("the seq counter's upsert"),
    ],
)
def test_an_unreachable_or_full_database_is_trouble_to_wait_out(error: Exception) -> None:
    assert database_trouble(error)


@pytest.mark.parametrize(
    "error",
    [
        DuplicateKeyError("E11000 duplicate key", 11000),
        OperationFailure("unknown operator: $bad", 2),
        BulkWriteError({"writeErrors": [{"index": 0, "code": 11000, "errmsg": "E11000 duplicate key"}]}),
        ValueError("not a database error"),
    ],
)
def test_other_database_errors_are_ours(error: Exception) -> None:
    assert database_trouble(error) is None


def test_the_503_says_when_to_retry() -> None:
    problem = database_unavailable("The database does not answer", 2)
    assert problem.status_code == 503
    assert problem.code == "DATABASE_UNAVAILABLE"
    assert problem.headers == {"Retry-After": "2"}


@pytest.mark.parametrize(
    ("code", "full"), [(errno.ENOSPC, True), (errno.EDQUOT, True), (errno.EFBIG, True), (errno.EIO, False)]
)
def test_a_full_volume_is_told_apart_from_other_io_errors(code: int, full: bool) -> None:
    assert volume_full(OSError(code, "x")) is full
    assert not volume_full(ValueError("x"))


class _Changes:
    """A change stream that hands over one insert, then nothing."""

    def __init__(self, hub: _Hub) -> None:
        self._hub = hub
        self._sent = False

    async def __aenter__(self) -> _Changes:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def try_next(self) -> dict[str, Any] | None:
        if self._sent:
            self._hub.listening = False  # the last stream closed: the watcher stops following
            return None
        self._sent = True
        return {"operationType": "insert", "fullDocument": {"project_id": "p", "seq": 7}}


class _Events:
    """An events collection whose change stream fails ``failures`` times before it opens."""

    def __init__(self, hub: _Hub, failures: int) -> None:
        self._hub = hub
        self.failures = failures
        self.opened = 0

    async def watch(self, **options: Any) -> _Changes:
        if self.failures:
            self.failures -= 1
            raise AutoReconnect("the database is restarting")
        self.opened += 1
        return _Changes(self._hub)


def _log(events: object) -> EventStore:
    """Return the real event log over a fake ``events`` collection (the watcher reads its inserts)."""
    return EventStore({"events": events, "counters": None}, ttl_days=1)  # type: ignore[arg-type]


class _Hub:
    def __init__(self) -> None:
        self.listening = True
        self.catch_ups = 0
        self.published: list[int] = []
        self.done = asyncio.Event()

    async def wait_for_listeners(self) -> None:
        if not self.listening:
            self.done.set()
            await asyncio.Event().wait()

    def has_listeners(self) -> bool:
        return self.listening

    async def catch_up(self) -> None:
        self.catch_ups += 1

    def publish(self, event: dict[str, Any]) -> None:
        self.published.append(event["seq"])


@pytest.mark.parametrize(("failures", "catch_ups"), [(0, 0), (2, 1)])
async def test_the_watcher_catches_up_from_the_log_once_it_reconnects(failures: int, catch_ups: int) -> None:
    hub = _Hub()
    events = _Events(hub, failures)
    errors_before = sample("nexysync_database_errors_total", source="watcher")
    watcher = Watcher(_log(events), hub)  # type: ignore[arg-type]
    watcher.start()
    try:
        await asyncio.wait_for(hub.done.wait(), 10)
    finally:
        await watcher.stop()
    assert events.opened == 1
    assert sample("nexysync_database_errors_total", source="watcher") == errors_before + failures
    # Caught up only after a failure: what was written meanwhile is read from the log.
    assert hub.catch_ups == catch_ups
    assert hub.published == [7]


class _Scripted:
    """A change stream answering from a script: an event's seq, or ``None`` (nothing new yet).

    ``hold_s``: how long an empty answer takes (a database honouring maxAwaitTimeMS holds it open).
    """

    def __init__(self, hub: _NewsHub, script: list[int | None], hold_s: float = 0.0) -> None:
        self._hub = hub
        self._script = script
        self._hold_s = hold_s

    async def __aenter__(self) -> _Scripted:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def watch(self, **options: Any) -> _Scripted:
        return self

    async def try_next(self) -> dict[str, Any] | None:
        seq = self._script.pop(0) if self._script else None
        if seq is None and self._hold_s:
            time.sleep(self._hold_s)  # as a held-open getMore: the clock moves, the loop waits
        if not self._script and seq is None:
            self._hub.listening = False
            return None
        return (
            None
            if seq is None
            else {
                "operationType": "insert",
                "fullDocument": {"project_id": "p", "seq": seq, "created_at": iso(utcnow())},
            }
        )


class _NewsHub(_Hub):
    """A hub that had the events below 100 already (this process wrote them)."""

    def publish(self, event: dict[str, Any]) -> bool:  # type: ignore[override]
        super().publish(event)
        return event["seq"] >= 100


async def test_the_watcher_polls_fast_for_other_processes_events_and_backs_off_for_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub = _NewsHub()
    # Three events this process wrote, each followed by an empty poll; then one from elsewhere.
    stream = _Scripted(hub, [1, None, 2, None, 3, None, 100, None])
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float, result: Any = None) -> Any:
        waits.append(delay)
        return await real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    watcher = Watcher(_log(stream), hub)  # type: ignore[arg-type]
    watcher.start()
    try:
        await asyncio.wait_for(hub.done.wait(), 10)
    finally:
        await watcher.stop()
    assert hub.published == [1, 2, 3, 100]
    # Its own events do not make it poll the database faster; one from elsewhere does.
    assert waits[:4] == [0.005, 0.01, 0.02, 0.005]


async def test_an_idle_watcher_backs_off_to_half_a_second_on_a_database_that_answers_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub = _NewsHub()
    stream = _Scripted(hub, [None] * 10)
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float, result: Any = None) -> Any:
        waits.append(delay)
        return await real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    watcher = Watcher(_log(stream), hub)  # type: ignore[arg-type]
    watcher.start()
    try:
        await asyncio.wait_for(hub.done.wait(), 10)
    finally:
        await watcher.stop()
    assert waits[:9] == [0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.5, 0.5]


async def test_the_watcher_adds_no_sleep_when_the_database_held_the_poll_open(monkeypatch: pytest.MonkeyPatch) -> None:
    # MongoDB holds an empty getMore open for maxAwaitTimeMS: sleeping after it would only delay
    # the next event from another worker.
    monkeypatch.setattr("nexysync_server.store.events._MAX_AWAIT_MS", 20)
    hub = _NewsHub()
    stream = _Scripted(hub, [None, None, 100, None], hold_s=0.015)
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float, result: Any = None) -> Any:
        waits.append(delay)
        return await real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    watcher = Watcher(_log(stream), hub)  # type: ignore[arg-type]
    watcher.start()
    try:
        await asyncio.wait_for(hub.done.wait(), 10)
    finally:
        await watcher.stop()
    assert hub.published == [100]
    assert [wait for wait in waits if wait] == []


class _Mongo:
    """Stands in for EmbeddedMongo: dies when told, restarts (failing ``flaky`` times first)."""

    uri = "mongodb://127.0.0.1:1/?directConnection=true"
    console_path = "nx-27017.console.log"
    pid = 42
    exit_code = -9

    def __init__(self, flaky: int = 0) -> None:
        self.running = True
        self.flaky = flaky
        self.attempts = 0

    def restart(self) -> None:
        self.attempts += 1
        if self.flaky:
            self.flaky -= 1
            raise EmbeddedMongoError("port busy")
        self.running = True


async def _until(condition: Any) -> None:
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.005)


async def test_dev_restarts_its_database_with_backoff_but_not_while_stopping(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "_DATABASE_CHECK_S", 0.001)
    monkeypatch.setattr(cli, "_RESTART_FIRST_S", 0.001)
    mongo = _Mongo(flaky=1)
    stopping = False
    task = asyncio.create_task(cli.supervise_database(mongo, lambda: stopping))  # type: ignore[arg-type]
    try:
        mongo.running = False
        await _until(lambda: mongo.running)
        assert mongo.attempts == 2  # the first restart failed; the next one, later, worked
        stopping = True
        mongo.running = False
        await asyncio.sleep(0.05)
        assert mongo.attempts == 2 and not mongo.running  # dev is stopping: the database stays down
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    err = capsys.readouterr().err
    assert "exited with code -9; restarting it on" in err
    assert "did not restart: port busy" in err
    assert "the database is back" in err


class _Leases:
    """A files store whose release fails with ``errors`` in turn, then works."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.released: list[tuple[str, str, str]] = []

    async def release_upload(self, project_id: str, file_id: str, token: str) -> None:
        if self.errors:
            raise self.errors.pop(0)
        self.released.append((project_id, file_id, token))


async def test_a_lease_release_the_database_missed_is_done_once_it_answers_or_dropped_once_moot() -> None:
    files = _Leases(AutoReconnect("down"), AutoReconnect("still down"))
    releases = LeaseReleases(files)  # type: ignore[arg-type]
    await releases.release("p", "f", "t", lease_s=60)
    assert releases.kept == 1 and files.released == []
    await releases.retry()  # the database is still away: kept
    assert releases.kept == 1
    await releases.retry()
    assert releases.kept == 0 and files.released == [("p", "f", "t")]
    # A release whose lease ran out meanwhile is not tried again; another failure is not hidden.
    moot = _Leases(AutoReconnect("down"))
    releases = LeaseReleases(moot)  # type: ignore[arg-type]
    await releases.release("p", "f", "t", lease_s=0)
    await releases.retry()
    assert releases.kept == 0 and moot.released == []
    with pytest.raises(ValueError):
        await LeaseReleases(_Leases(ValueError("a bug"))).release("p", "f", "t", lease_s=60)  # type: ignore[arg-type]
