"""Code references: ciphertext title, content and source file, plus the plaintext routing the server needs.

A reference is keyed ``<project_id>:<id>`` (the id is made by the client, as a message's is) and
carries ``readers``, the agent ids that may see it: the recipient and the author, or ``*`` and the
author for a reference shared with the whole project (so agents that join later see it too).
The array is written once at insert and never changed.

References do not expire. A TTL index would delete them behind the server's back, and the bytes
they count toward the project's storage quota would then never be given back; so they last until
their author deletes them or the project is deleted, and the storage quota bounds them instead.
(``DESIGN.md`` lists no retention for references either: only messages, events, tokens, audit
logs and files expire.)
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ..ids import iso, new_id, ulid_time
from .documents import AgentDoc, RefDoc
from .events import EVERYONE
from .failures import find_one_and_delete
from .idempotency import fingerprint, is_retry
from .pages import page

CONTENT_FIELDS = ("title", "content", "source_file")
_ROUTING_FIELDS = ("to", "language")


class IdConflict(Exception):
    """A reference with this id exists with a different body (or another author)."""


def _key(project_id: str, ref_id: str) -> str:
    return f"{project_id}:{ref_id}"


def stored_size(body: dict[str, Any]) -> int:
    """Return what a reference counts toward the storage quota: the length of its envelopes (ASCII)."""
    return sum(len(body[name]) for name in CONTENT_FIELDS if body.get(name) is not None)


def body_fingerprint(body: dict[str, Any]) -> str:
    """Hash the parts of a share request that define the reference, to compare idempotent retries."""
    return fingerprint({name: body.get(name) for name in (*_ROUTING_FIELDS, *CONTENT_FIELDS)})


def routing(ref: RefDoc) -> dict[str, Any]:
    """Return what a ``new_ref`` event tells: ids and plaintext routing, never content."""
    return {
        "id": ref["id"],
        "from": ref["from"],
        "to": ref["to"],
        "language": ref["language"],
        "created_at": ref["created_at"],
    }


def audience(ref: RefDoc) -> list[str]:
    """Return whom a reference's ``new_ref`` event is for: its recipient, or everyone."""
    return list(ref["readers"][:1])


def visible_to(ref: RefDoc, agent_id: str) -> bool:
    """Tell whether an agent may see a reference: it is addressed to it or to everyone, or it shared it."""
    return agent_id in ref["readers"] or EVERYONE in ref["readers"]


class RefStore:
    """The ``refs`` collection."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.col: AsyncCollection[RefDoc] = db["refs"]

    async def ensure_indexes(self) -> None:
        """Create the listing index."""
        await self.col.create_index([("project_id", 1), ("readers", 1), ("sk", 1)])

    async def insert(
        self, *, project_id: str, author: AgentDoc, body: dict[str, Any], recipient_id: str | None
    ) -> tuple[RefDoc, bool]:
        """Store a reference, or find the one stored earlier under the same id.

        Args:
            project_id: The project.
            author: The sharing agent's document.
            body: The validated ``RefCreate`` body.
            recipient_id: The agent id of ``to``, or None for the whole project.

        Returns:
            ``(ref, created)``; ``created`` is false when the id was already stored with an
            identical body by the same author (an idempotent retry).

        Raises:
            IdConflict: the id is stored with a different body or by another agent.
        """
        ref_id = body["id"]
        request_fingerprint = body_fingerprint(body)
        # A server-made sort key: client ids need not grow, and pages must not skip new references.
        sort_key = new_id()
        ref: RefDoc = {
            "_id": _key(project_id, ref_id),
            "id": ref_id,
            "project_id": project_id,
            "sk": sort_key,
            "from_id": author["_id"],
            "from": author["slug"],
            "to": body.get("to"),
            "readers": [recipient_id or EVERYONE, author["_id"]],
            "title": body["title"],
            "content": body["content"],
            "source_file": body.get("source_file"),
            "language": body.get("language"),
            "size_bytes": stored_size(body),
            "fingerprint": request_fingerprint,
            "created_at": iso(ulid_time(sort_key)),
        }
        try:
            await self.col.insert_one(ref)
        except DuplicateKeyError:
            stored = await self.col.find_one({"_id": ref["_id"]})
            if stored is None or not is_retry(stored, author["_id"], request_fingerprint):
                raise IdConflict(ref_id) from None
            return stored, False
        return ref, True

    async def get(self, project_id: str, ref_id: str) -> RefDoc | None:
        """Find a reference of a project by id."""
        return await self.col.find_one({"_id": _key(project_id, ref_id)})

    async def list(
        self,
        project_id: str,
        agent_id: str | None,
        *,
        author_slug: str | None,
        language: str | None,
        limit: int,
        cursor: str | None,
        budget: int = 0,
    ) -> tuple[list[RefDoc], str | None]:
        """Page through the references an agent may see (all of them for ``None``, the owner), in storage order.

        At most ``budget`` bytes a page.
        """
        query: dict[str, Any] = {"project_id": project_id}
        if agent_id is not None:
            query["readers"] = {"$in": [agent_id, EVERYONE]}
        if author_slug is not None:
            query["from"] = author_slug
        if language is not None:
            query["language"] = language
        return await page(self.col, query, "sk", limit, cursor, size=lambda ref: ref["size_bytes"], budget=budget)

    async def delete(self, project_id: str, ref_id: str, author_id: str) -> RefDoc | None:
        """Delete a reference if ``author_id`` shared it; return what was deleted, or ``None``."""
        return await find_one_and_delete(self.col, {"_id": _key(project_id, ref_id), "from_id": author_id})

    async def delete_project(self, project_id: str) -> None:
        """Delete every reference of a project."""
        await self.col.delete_many({"project_id": project_id})
