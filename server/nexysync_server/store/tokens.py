"""Refresh tokens, stored only as SHA-256 hashes, grouped in rotation families."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from ..ids import iso, new_id, utcnow
from ..security import new_refresh_token, sha256_hex
from .documents import RefreshTokenDoc
from .expiry import Expiry


class RefreshTokenStore:
    """The ``refresh_tokens`` collection.

    A login starts a family; each refresh kills the presented token and issues the next one of
    the same family. Presenting a killed token again means it was copied: the whole family dies.
    """

    def __init__(self, db: AsyncDatabase[Any], expiry: Expiry | None = None) -> None:
        self._expiry = expiry or Expiry()
        self.col: AsyncCollection[RefreshTokenDoc] = db["refresh_tokens"]

    async def ensure_indexes(self) -> None:
        """Create the family index and the TTL index that drops expired tokens."""
        await self.col.create_index("family_id")
        await self.col.create_index("user_id")
        await self._expiry.index(self.col, "expires_at")

    async def issue(self, user_id: str, ttl_days: int, family_id: str | None = None) -> str:
        """Store and return a new refresh token (of a new family unless one is given)."""
        token = new_refresh_token()
        now = utcnow()
        await self.col.insert_one(
            {
                "_id": sha256_hex(token),
                "user_id": user_id,
                "family_id": family_id or new_id(),
                "used": False,
                "revoked": False,
                "created_at": iso(now),
                "expires_at": now + timedelta(days=ttl_days),
            }
        )
        return token

    async def consume(self, token: str) -> tuple[RefreshTokenDoc | None, bool]:
        """Mark a refresh token used.

        Returns:
            ``(record, reused)``: the record if the token was live (now used up), or ``None``;
            ``reused`` is true when the token was known but already used or revoked, in which
            case its whole family has now been revoked.
        """
        token_hash = sha256_hex(token)
        record = await self.col.find_one({"_id": token_hash})
        if record is None or record["revoked"] or _expired(record):
            # Unknown, signed out (logout or a family revoked after a reuse) or expired.
            return None, False
        claimed = await self.col.update_one(
            {"_id": token_hash, "used": False, "revoked": False}, {"$set": {"used": True}}
        )
        if claimed.modified_count == 1:
            return record, False
        await self.revoke_family(record["family_id"])
        return None, True

    async def revoke_family(self, family_id: str) -> None:
        """Revoke every token of a family."""
        await self.col.update_many({"family_id": family_id}, {"$set": {"revoked": True}})

    async def family_of(self, token: str) -> str | None:
        """Return the family of ``token``, if the token is known."""
        record = await self.col.find_one({"_id": sha256_hex(token)}, {"family_id": 1})
        return record["family_id"] if record is not None else None

    async def revoke_user(self, user_id: str) -> None:
        """Revoke every token of every family of a user."""
        await self.col.update_many({"user_id": user_id}, {"$set": {"revoked": True}})

    async def delete_user(self, user_id: str) -> None:
        """Forget every token of a user (the account is gone)."""
        await self.col.delete_many({"user_id": user_id})

    async def live_families(self, family_ids: set[str]) -> set[str]:
        """Return which of these families still hold a token that is neither revoked nor expired."""
        if not family_ids:
            return set()
        query = {"family_id": {"$in": sorted(family_ids)}, "revoked": False}
        cursor = self.col.find(query, {"family_id": 1, "expires_at": 1})
        return {record["family_id"] async for record in cursor if not _expired(record)}


def _expired(record: RefreshTokenDoc) -> bool:
    # TTL deletion runs only periodically, so check expiry ourselves as well.
    expires = record["expires_at"]
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return bool(expires < utcnow())
