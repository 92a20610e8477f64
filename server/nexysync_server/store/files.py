"""File metadata: encrypted names, sizes of the encrypted content, upload status and expiry.

The content itself lives on the CDN's volume (:mod:`nexysync_server.store.blobs`). A file is
``pending`` from its announcement until the CDN has the whole upload, then ``ready``. Expiry
times are ISO 8601 strings (they sort in time order), compared by the sweep.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ..ids import epoch_ms, iso, new_id, utcnow
from .documents import AgentDoc, FileDoc
from .failures import find_one_and_delete, find_one_and_update
from .pages import page

PENDING = "pending"
READY = "ready"


def _doc_id(project_id: str, file_id: str) -> str:
    return f"{project_id}:{file_id}"


def routing(doc: FileDoc) -> dict[str, Any]:
    """Return the plaintext routing of a ``new_file`` event (never the name)."""
    return {
        "id": doc["id"],
        "from": doc["from"],
        "size": doc["size"],
        "content_type": doc["content_type"],
        "created_at": doc["created_at"],
    }


def is_same(doc: FileDoc, uploader_id: str, body: dict[str, Any]) -> bool:
    """Tell whether an announcement repeats the stored one (a retry) rather than reusing its id."""
    return bool(
        doc["from_id"] == uploader_id
        and doc["name"] == body["name"]
        and doc["size"] == body["size"]
        and doc["content_type"] == body.get("content_type")
    )


class FileStore:
    """The ``files`` collection.

    Args:
        db: The database.
        retention_days: How long a file is kept after its announcement.
        pending_ttl_s: How long an upload may stay incomplete before the file is dropped.
    """

    def __init__(self, db: AsyncDatabase[Any], retention_days: float, pending_ttl_s: float) -> None:
        self.col: AsyncCollection[FileDoc] = db["files"]
        self._retention = timedelta(days=retention_days)
        self._pending_ttl = timedelta(seconds=pending_ttl_s)

    async def ensure_indexes(self) -> None:
        """Create the listing index and the indexes the sweep reads by."""
        await self.col.create_index([("project_id", 1), ("status", 1), ("id", 1)])
        await self.col.create_index("expires_at")
        await self.col.create_index([("status", 1), ("pending_until", 1)])

    async def create(self, project_id: str, uploader: AgentDoc, body: dict[str, Any]) -> tuple[FileDoc, bool]:
        """Store a pending file; return it and whether it was created (``False``: the id was taken meanwhile)."""
        now = utcnow()
        doc: FileDoc = {
            "_id": _doc_id(project_id, body["id"]),
            "id": body["id"],
            "project_id": project_id,
            "name": body["name"],
            "size": body["size"],
            "content_type": body.get("content_type"),
            "status": PENDING,
            "from": uploader["slug"],
            "from_id": uploader["_id"],
            "created_at": iso(now),
            "expires_at": iso(now + self._retention),
            "pending_until": iso(now + self._pending_ttl),
            "lease_until_ms": 0,
        }
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError:
            stored = await self.get(project_id, body["id"])
            if stored is None:
                raise  # taken and already gone again: let the client retry
            return stored, False
        return doc, True

    async def get(self, project_id: str, file_id: str) -> FileDoc | None:
        """Find a file of a project."""
        return await self.col.find_one({"_id": _doc_id(project_id, file_id)})

    async def list_ready(self, project_id: str, limit: int, cursor: str | None) -> tuple[list[FileDoc], str | None]:
        """Page through a project's ready files in id order."""
        return await page(self.col, {"project_id": project_id, "status": READY}, "id", limit, cursor)

    async def mark_ready(self, project_id: str, file_id: str) -> FileDoc | None:
        """Turn a pending file ready; return it, or ``None`` if it is not pending (gone, or done already)."""
        return await find_one_and_update(
            self.col,
            {"_id": _doc_id(project_id, file_id), "status": PENDING},
            {"$set": {"status": READY, "ready_at": iso(utcnow())}},
            return_document=ReturnDocument.AFTER,
        )

    async def withdraw(self, project_id: str, file_id: str) -> FileDoc | None:
        """Delete a file's record while it is still pending; return it, or ``None`` (not pending, or gone)."""
        return await find_one_and_delete(self.col, {"_id": _doc_id(project_id, file_id), "status": PENDING})

    async def claim_upload(self, project_id: str, file_id: str, lease_s: float) -> str | None:
        """Take the right to upload a pending file's content for ``lease_s``; return its token, or ``None``.

        One upload at a time per file, across every CDN worker: a second one while the first's
        lease runs is refused. A holder that dies lets the lease run out, so the file is never stuck.
        """
        token = new_id()
        now_ms = epoch_ms()
        key = _doc_id(project_id, file_id)
        # No ``$or`` beside other terms, and the lease's end as a number: the embedded database
        # gets an ``$or`` beside other conditions wrong, and compares date-like strings to the
        # second in ``find``. A file announced before this lease gets "no lease" first.
        await self.col.update_one({"_id": key, "lease_until_ms": {"$exists": False}}, {"$set": {"lease_until_ms": 0}})
        await self.col.update_one(
            {"_id": key, "status": PENDING, "lease_until_ms": {"$lt": now_ms}},
            {"$set": {"upload_token": token, "lease_until_ms": now_ms + int(lease_s * 1000)}},
        )
        # Read back: the lease is ours only if the document names our token now.
        held = await self.col.find_one({"_id": key}, {"upload_token": 1})
        return token if held is not None and held.get("upload_token") == token else None

    async def renew_upload(self, project_id: str, file_id: str, token: str, lease_s: float) -> None:
        """Push back the end of an upload's lease (the upload is still receiving)."""
        until = epoch_ms() + int(lease_s * 1000)
        await self.col.update_one(
            {"_id": _doc_id(project_id, file_id), "upload_token": token}, {"$set": {"lease_until_ms": until}}
        )

    async def release_upload(self, project_id: str, file_id: str, token: str) -> None:
        """End an upload's lease (it finished or failed), so that a retry may upload at once."""
        await self.col.update_one(
            {"_id": _doc_id(project_id, file_id), "upload_token": token}, {"$set": {"lease_until_ms": 0}}
        )

    async def delete(self, project_id: str, file_id: str) -> FileDoc | None:
        """Delete a file's record; return it, or ``None`` if another deleter was first."""
        return await find_one_and_delete(self.col, {"_id": _doc_id(project_id, file_id)})

    async def due(self, limit: int = 500) -> list[FileDoc]:
        """Return files past their retention, and pending files whose upload never completed."""
        now = iso(utcnow())
        expired = self.col.find({"expires_at": {"$lt": now}}).limit(limit)
        found = [doc async for doc in expired]
        abandoned = self.col.find({"status": PENDING, "pending_until": {"$lt": now}}).limit(limit)
        seen = {doc["_id"] for doc in found}
        found += [doc async for doc in abandoned if doc["_id"] not in seen]
        return found

    async def with_records(self, project_id: str, file_ids: list[str]) -> set[str]:
        """Return which of a project's ``file_ids`` have a record (one query)."""
        keys = [_doc_id(project_id, file_id) for file_id in file_ids]
        return {doc["id"] async for doc in self.col.find({"_id": {"$in": keys}}, {"id": 1})}

    async def delete_project(self, project_id: str) -> None:
        """Delete every file record of a project."""
        await self.col.delete_many({"project_id": project_id})
