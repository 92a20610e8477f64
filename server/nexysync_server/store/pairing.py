"""The ``pairing_slots`` collection: the relay of one SPAKE2 exchange between two machines.

A slot is keyed by its number, the first part of the pairing code, drawn at random among the
numbers no live slot holds. It moves ``waiting`` → ``accepted`` → ``done``, or to ``burned``,
each step one conditional write on the state it leaves, so a slot is accepted once whatever the
number of machines that try: the one online guess a code gives. A number becomes free again some
minutes after its slot expires (:data:`REUSE_AFTER_MS`), and the document is deleted a day later.
Times are epoch milliseconds.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ..ids import epoch_ms, utcnow
from .documents import PairingSlotDoc
from .expiry import Expiry
from .queries import eq

#: Numbers run 1 to this: four digits to type.
MAX_NUMBER = 9999
#: How long after its expiry a slot's number stays taken (so a late reader sees "expired").
REUSE_AFTER_MS = 10 * 60 * 1000
_GARBAGE_AFTER = timedelta(days=1)
#: Numbers tried before the store gives up (only with thousands of live slots).
_DRAWS = 20


def view_state(slot: PairingSlotDoc, now_ms: int | None = None) -> str:
    """Return the state a slot is shown in: ``expired`` once a live slot's time has passed."""
    now = epoch_ms() if now_ms is None else now_ms
    if slot["state"] in ("waiting", "accepted") and now >= slot["expires_ms"]:
        return "expired"
    return slot["state"]


class NoFreeNumber(Exception):
    """Every number drawn is held by a live slot."""


class PairingStore:
    """The ``pairing_slots`` collection."""

    def __init__(self, db: AsyncDatabase[Any], expiry: Expiry | None = None) -> None:
        self._expiry = expiry or Expiry()
        self.col: AsyncCollection[PairingSlotDoc] = db["pairing_slots"]

    async def ensure_indexes(self) -> None:
        """Create the per-project index and the garbage TTL index."""
        await self.col.create_index("project_id")
        await self._expiry.index(self.col, "gc_at")

    async def open(self, user_id: str, project_id: str, offer_msg: str, ttl_s: int) -> PairingSlotDoc:
        """Open a waiting slot under a free number.

        Raises:
            NoFreeNumber: no free number after a few draws.
        """
        now = epoch_ms()
        expires_ms = now + ttl_s * 1000
        for _ in range(_DRAWS):
            number = str(secrets.randbelow(MAX_NUMBER) + 1)
            await self.col.delete_one({"_id": number, "reusable_ms": {"$lt": now}})
            doc: PairingSlotDoc = {
                "_id": number,
                "user_id": user_id,
                "project_id": project_id,
                "state": "waiting",
                "offer_msg": offer_msg,
                "accept_msg": None,
                "public_key": None,
                "name": None,
                "accept_confirm": None,
                "offer_confirm": None,
                "sealed": None,
                "created_ms": now,
                "expires_ms": expires_ms,
                "reusable_ms": expires_ms + REUSE_AFTER_MS,
                "gc_at": utcnow() + _GARBAGE_AFTER,
            }
            try:
                await self.col.insert_one(doc)
            except DuplicateKeyError:
                continue
            return doc
        raise NoFreeNumber

    async def get(self, number: str) -> PairingSlotDoc | None:
        """Return a slot, or None."""
        return await self.col.find_one({"_id": number})

    async def move(
        self, number: str, state: str, new_state: str, fields: dict[str, Any], *, before_ms: int
    ) -> PairingSlotDoc | None:
        """Move a slot from ``state`` to ``new_state`` with ``fields``, if it is in ``state``.

        Args:
            before_ms: Move it only until this long after its expiry.

        Returns:
            The slot as moved, or None when it was not in that state (or the time had passed).
        """
        query = {"_id": number, "state": eq(state), "expires_ms": {"$gt": epoch_ms() - before_ms}}
        found: PairingSlotDoc | None = await self.col.find_one_and_update(
            query,
            {"$set": {**fields, "state": new_state}},
            return_document=ReturnDocument.AFTER,
        )
        return found

    async def delete_project(self, project_id: str) -> None:
        """Delete a project's slots."""
        await self.col.delete_many({"project_id": eq(project_id)})
