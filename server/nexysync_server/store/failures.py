"""Which database failures are passing (down, restarting, disk full), and the one the store detects itself."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, ConnectionFailure, DuplicateKeyError, OperationFailure, PyMongoError

#: A collection's document type: what ``find_one_and_*`` give back is a document of the collection.
_Doc = TypeVar("_Doc", bound=Mapping[str, Any])

#: Every error the database (through its driver) raises: what code outside the store catches.
DatabaseError = PyMongoError

# MongoDB's OutOfDiskSpace; the embedded database (SQLite) reports a failed or full disk by message.
_OUT_OF_DISK_SPACE = 14031
# A unique index refused the write: an id (or a place in the event log) is taken.
DUPLICATE_KEY = 11000
_DISK_FULL_MESSAGES = ("disk i/o error", "database or disk is full", "no space left", "file too large")


class DatabaseDidNotWrite(OperationFailure):
    """The database answered a write without doing it.

    The embedded nx-27017 turns any failure inside ``findAndModify`` (a full disk, for one) into
    "no document", which for an upsert that returns the new document cannot be a real answer.
    """

    def __init__(self, what: str) -> None:
        super().__init__(f"the database answered {what} without writing it (is its disk full?)")


def database_trouble(exc: BaseException) -> str | None:
    """Say why ``exc`` means the database cannot serve now, or return ``None`` if it does not.

    Unreachable (down, restarting, partitioned) and unable to write (its disk is full) both pass:
    the same request retried later (writes are idempotent by their ids and Idempotency-Key)
    succeeds once. Anything else a database error says is a fault of ours (a 500).
    """
    if isinstance(exc, ConnectionFailure):
        return "The database does not answer"
    if isinstance(exc, DatabaseDidNotWrite):
        return _disk_full(_OUT_OF_DISK_SPACE, None)
    if isinstance(exc, BulkWriteError):
        errors = exc.details.get("writeErrors", [])
        return next(filter(None, (_disk_full(e.get("code"), e.get("errmsg")) for e in errors)), None)
    if isinstance(exc, OperationFailure):
        return _disk_full(exc.code, str(exc))
    return None


def _disk_full(code: object, message: object) -> str | None:
    text = str(message or "").lower()
    if code == _OUT_OF_DISK_SPACE or any(part in text for part in _DISK_FULL_MESSAGES):
        return "The database cannot write (its disk is full or failing)"
    return None


async def find_one_and_update(
    col: AsyncCollection[_Doc], query: Mapping[str, Any], update: Mapping[str, Any], **options: Any
) -> _Doc | None:
    """Run ``col.find_one_and_update`` (not an upsert), telling "nothing matched" from "not written".

    The embedded database answers a ``findAndModify`` whose write failed (a full disk) with no
    document, as if nothing matched; MongoDB raises. So a ``None`` is checked with a read of the
    same query: a document that matches means the write was not done. A writer that makes a
    document match between the two calls makes the check say so too; the request then answers a
    503 that its retry gets past.

    Raises:
        DatabaseDidNotWrite: a document matches, yet none came back.
    """
    found = await col.find_one_and_update(query, update, **options)
    if found is None and await col.find_one(query, {"_id": 1}) is not None:
        raise DatabaseDidNotWrite(f"an update in {col.name}")
    return found


async def find_one_and_delete(col: AsyncCollection[_Doc], query: Mapping[str, Any], **options: Any) -> _Doc | None:
    """Run ``col.find_one_and_delete``, telling "nothing matched" from "not deleted" (see :func:`find_one_and_update`).

    Raises:
        DatabaseDidNotWrite: a document matches, yet none came back.
    """
    found = await col.find_one_and_delete(query, **options)
    if found is None and await col.find_one(query, {"_id": 1}) is not None:
        raise DatabaseDidNotWrite(f"a delete in {col.name}")
    return found


async def insert_new(col: AsyncCollection[Any], docs: Sequence[Mapping[str, Any]]) -> set[int]:
    """Insert documents, each on its own (unordered); return the indexes of those whose ``_id`` was taken.

    Raises:
        OperationFailure: a write failed for another reason, or the write concern failed (the
            driver's own exception, raised as it came).
    """
    if not docs:
        return set()
    try:
        if len(docs) == 1:
            await col.insert_one(docs[0])
        else:
            await col.insert_many(docs, ordered=False)
    except DuplicateKeyError:
        return {0}
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if exc.details.get("writeConcernErrors") or any(error.get("code") != DUPLICATE_KEY for error in errors):
            raise
        return {int(error["index"]) for error in errors}
    return set()
