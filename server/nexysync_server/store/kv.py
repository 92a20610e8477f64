"""The project-wide key-value store: plaintext keys, encrypted values, versions for ETags."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ..ids import iso, utcnow
from .documents import KvDoc, KvWrite
from .failures import DatabaseDidNotWrite, find_one_and_delete
from .pages import page

# The highest character a key may hold ('z'); a prefix range ends just above it.
_AFTER_LAST_KEY_CHAR = "{"
_WRITE_ATTEMPTS = 10

#: Takes bytes from the project's storage quota (raising when they are not there), or gives them back.
Storage = Callable[[int], Awaitable[None]]


async def _no_quota(size: int) -> None:
    return None


class PreconditionFailed(Exception):
    """The entry changed since the version the caller gave, or exists where it must not."""


def _repeats(entry: KvDoc, write_key: str, value: str, author: str) -> bool:
    """Tell whether a write is a retry of the entry's last one: same idempotency key, value and author."""
    return bool(entry.get("write_key") == write_key and entry["value"] == value and entry["updated_by"] == author)


class KvStore:
    """The ``kv`` collection."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.col: AsyncCollection[KvDoc] = db["kv"]

    async def ensure_indexes(self) -> None:
        """Create the per-project key index used for listing."""
        await self.col.create_index([("project_id", 1), ("key", 1)])

    async def get(self, project_id: str, key: str) -> KvDoc | None:
        """Find an entry."""
        return await self.col.find_one({"_id": f"{project_id}:{key}"})

    async def put(
        self,
        project_id: str,
        key: str,
        value: str,
        author: str,
        *,
        if_version: int | None = None,
        if_exists: bool = False,
        if_absent: bool = False,
        write_key: str | None = None,
        reserve: Storage = _no_quota,
        release: Storage = _no_quota,
    ) -> tuple[KvDoc, bool]:
        """Create or replace an entry; return it and whether it was created.

        The value's bytes count toward the project's storage: a new entry reserves them all, a
        replacement only what it adds (and gives back what it sheds), each entry keeping in
        ``counted_bytes`` what it holds of the quota, so a failed write gives back exactly what it took.

        A write with the ``write_key`` (the request's Idempotency-Key) of the entry's last write,
        the same value and the same author is a retry of that write: it gets the stored entry,
        unwritten, whatever its conditions say (they held for the first try).

        Args:
            project_id: The project.
            key: The entry's key.
            value: The new (encrypted) value.
            author: Slug of the writing agent.
            if_version: Replace only if the stored version is this one.
            if_exists: Replace only if the entry exists (``If-Match: *``).
            if_absent: Create only (``If-None-Match: *``).
            write_key: The request's idempotency key, kept with the entry.
            reserve: Takes bytes from the storage quota; raises when they are not there.
            release: Gives bytes back to the storage quota.

        Raises:
            PreconditionFailed: a condition does not hold.
        """
        doc_id = f"{project_id}:{key}"
        # What every write sets. ``seq`` is that of this version's kv_update, once it is stored
        # (see EventStore.announce).
        now = iso(utcnow())
        size = len(value)
        written: KvWrite = {
            "value": value,
            "updated_by": author,
            "updated_at": now,
            "write_key": write_key,
            "seq": None,
            "counted_bytes": size,
        }
        missed_version: int | None = None
        for _ in range(_WRITE_ATTEMPTS):
            current = await self.col.find_one({"_id": doc_id})
            if current is not None and current["version"] == missed_version:
                # Our update at this version matched nothing, yet nobody wrote a newer one: the
                # database answered without writing (the embedded one does so on a full disk).
                raise DatabaseDidNotWrite(f"the update of kv entry {key!r}")
            if current is not None and write_key is not None and _repeats(current, write_key, value, author):
                return current, False
            if current is not None and if_absent:
                raise PreconditionFailed(key)
            if current is None:
                if if_version is not None or if_exists:
                    raise PreconditionFailed(key)
                entry: KvDoc = {"_id": doc_id, "project_id": project_id, "key": key, "version": 1, **written}
                await reserve(size)
                try:
                    await self.col.insert_one(entry)
                except DuplicateKeyError:
                    await release(size)
                    if if_absent:
                        raise PreconditionFailed(key) from None
                    continue  # created meanwhile: replace it on the next round
                except BaseException:
                    await release(size)
                    raise
                return entry, True
            if if_version is not None and current["version"] != if_version:
                raise PreconditionFailed(key)
            # Entries written before values counted toward storage hold nothing of it.
            grows = size - int(current.get("counted_bytes", 0))
            if grows > 0:
                await reserve(grows)
            try:
                updated = await self.col.find_one_and_update(
                    {"_id": doc_id, "version": current["version"]},
                    {"$set": written, "$inc": {"version": 1}},
                    return_document=ReturnDocument.AFTER,
                )
            except BaseException:
                if grows > 0:
                    await release(grows)
                raise
            if updated is not None:
                if grows < 0:
                    await release(-grows)
                return updated, False
            if grows > 0:
                await release(grows)
            # Someone else wrote between our read and write (the next read tells, and a
            # conditional write then fails its precondition), or the database did not write.
            missed_version = current["version"]
        raise RuntimeError(f"entry {key!r} kept changing under {_WRITE_ATTEMPTS} writes in a row")

    async def delete(self, project_id: str, key: str, if_version: int | None = None) -> KvDoc | None:
        """Delete an entry (only at ``if_version`` if given); return what was deleted, or ``None``.

        Raises:
            PreconditionFailed: the entry exists at another version.
        """
        query: dict[str, Any] = {"_id": f"{project_id}:{key}"}
        if if_version is not None:
            query["version"] = if_version
        deleted = await find_one_and_delete(self.col, query)
        if deleted is None and if_version is not None and await self.get(project_id, key) is not None:
            raise PreconditionFailed(key)
        return deleted

    async def list(
        self, project_id: str, prefix: str | None, limit: int, cursor: str | None, budget: int = 0
    ) -> tuple[list[KvDoc], str | None]:
        """Page through entries in key order, optionally under a prefix, at most ``budget`` bytes of values a page."""
        query: dict[str, Any] = {"project_id": project_id}
        if prefix:
            query["key"] = {"$gte": prefix, "$lt": prefix + _AFTER_LAST_KEY_CHAR}
        return await page(self.col, query, "key", limit, cursor, size=lambda entry: len(entry["value"]), budget=budget)

    async def delete_project(self, project_id: str) -> None:
        """Delete every entry of a project."""
        await self.col.delete_many({"project_id": project_id})
