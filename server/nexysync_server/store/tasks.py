"""The ``tasks`` collection: the project's task board, sealed title, body and result, plaintext state.

A task is keyed ``<project_id>:<id>`` (the id is made by the client, as a reference's is) and
sorted by ``sk``, a server-made ULID, so pages never skip a task added while a client pages.
Every change is one conditional write on the ``version`` the writer read (:meth:`TaskStore.change`):
of any number of agents changing a task at once, one write lands and the others find the version
moved, read again and decide again. A claim is such a change from ``open``, so racing claimers get
exactly one winner, on MongoDB and on the embedded database alike.

Tasks do not expire: the project's task limit and storage quota bound them, and they last until
the project is deleted. Times are epoch milliseconds.
"""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ..ids import epoch_ms, new_id
from .documents import AgentDoc, TaskDoc
from .failures import find_one_and_update
from .idempotency import fingerprint, is_retry
from .pages import page
from .queries import eq

#: The states no change leaves.
FINAL_STATES = ("done", "cancelled")


class IdConflict(Exception):
    """A task with this id exists with a different body (or another creator)."""


def _key(project_id: str, task_id: str) -> str:
    return f"{project_id}:{task_id}"


def stored_size(*envelopes: str | None) -> int:
    """Return what sealed fields count toward the storage quota: the length of their envelopes (ASCII)."""
    return sum(len(envelope) for envelope in envelopes if envelope is not None)


def body_fingerprint(body: dict[str, Any]) -> str:
    """Hash the parts of a create request that define the task, to compare idempotent retries."""
    return fingerprint({name: body.get(name) for name in ("title", "body", "blocked_by")})


class TaskStore:
    """The ``tasks`` collection."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.col: AsyncCollection[TaskDoc] = db["tasks"]

    async def ensure_indexes(self) -> None:
        """Create the listing indexes (all tasks, and by state)."""
        await self.col.create_index([("project_id", 1), ("sk", 1)])
        await self.col.create_index([("project_id", 1), ("state", 1), ("sk", 1)])

    async def insert(self, project_id: str, creator: AgentDoc, body: dict[str, Any]) -> tuple[TaskDoc, bool]:
        """Store a new open task, or find the one stored earlier under the same id.

        Returns:
            ``(task, created)``; ``created`` is false for an idempotent retry (same creator, same body).

        Raises:
            IdConflict: the id is stored with a different body or by another agent.
        """
        now = epoch_ms()
        request_fingerprint = body_fingerprint(body)
        task: TaskDoc = {
            "_id": _key(project_id, body["id"]),
            "id": body["id"],
            "project_id": project_id,
            "sk": new_id(),
            "from_id": creator["_id"],
            "created_by": creator["slug"],
            "fingerprint": request_fingerprint,
            "title": body["title"],
            "body": body.get("body"),
            "blocked_by": list(body.get("blocked_by") or []),
            "state": "open",
            "assignee_id": None,
            "assignee": None,
            "result": None,
            "result_by": None,
            "size_bytes": stored_size(body["title"], body.get("body")),
            "version": 1,
            "created_ms": now,
            "updated_ms": now,
            "claimed_ms": None,
        }
        try:
            await self.col.insert_one(task)
        except DuplicateKeyError:
            stored = await self.col.find_one({"_id": task["_id"]})
            if stored is None or not is_retry(stored, creator["_id"], request_fingerprint):
                raise IdConflict(body["id"]) from None
            return stored, False
        return task, True

    async def get(self, project_id: str, task_id: str) -> TaskDoc | None:
        """Find a task of a project by id."""
        return await self.col.find_one({"_id": _key(project_id, task_id)})

    async def many(self, project_id: str, task_ids: list[str]) -> list[TaskDoc]:
        """Return the tasks of a project among ``task_ids`` (those that exist), by ``_id``."""
        if not task_ids:
            return []
        keys = [_key(project_id, task_id) for task_id in task_ids]
        return [doc async for doc in self.col.find({"_id": {"$in": keys}})]

    async def count(self, project_id: str) -> int:
        """Return how many tasks the project holds."""
        return await self.col.count_documents({"project_id": eq(project_id)})

    async def change(self, task: TaskDoc, fields: dict[str, Any]) -> TaskDoc | None:
        """Set ``fields`` on a task if it is still at the version read; return it changed, or ``None`` if it moved."""
        return await find_one_and_update(
            self.col,
            {"_id": task["_id"], "version": task["version"]},
            {"$set": {**fields, "updated_ms": epoch_ms()}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )

    async def list(
        self, project_id: str, *, state: str | None, assignee: str | None, limit: int, cursor: str | None
    ) -> tuple[list[TaskDoc], str | None]:
        """Return a page of the project's tasks, oldest first, and the next cursor."""
        query: dict[str, Any] = {"project_id": eq(project_id)}
        if state is not None:
            query["state"] = eq(state)
        if assignee is not None:
            query["assignee"] = eq(assignee)
        return await page(self.col, query, "sk", limit, cursor)

    async def delete_project(self, project_id: str) -> None:
        """Delete a project's tasks."""
        await self.col.delete_many({"project_id": project_id})
