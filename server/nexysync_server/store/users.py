"""Human accounts."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ..ids import iso, new_id, utcnow
from .documents import UserDoc


class EmailTaken(Exception):
    """An account with this email exists already."""


class UserStore:
    """The ``users`` collection."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.col: AsyncCollection[UserDoc] = db["users"]

    async def ensure_indexes(self) -> None:
        """Create the unique email index."""
        await self.col.create_index("email", unique=True)

    async def create(self, email: str, name: str, password_hash: str) -> UserDoc:
        """Insert a user.

        Raises:
            EmailTaken: the (case-folded) email is in use.
        """
        user: UserDoc = {
            "_id": new_id(),
            "email": email.lower(),
            "name": name,
            "password_hash": password_hash,
            "created_at": iso(utcnow()),
        }
        try:
            await self.col.insert_one(user)
        except DuplicateKeyError as exc:
            raise EmailTaken(email) from exc
        return user

    async def by_email(self, email: str) -> UserDoc | None:
        """Find a user by email, case-insensitively."""
        return await self.col.find_one({"email": email.lower()})

    async def replace_password_hash(self, user_id: str, old: str, new: str) -> None:
        """Store a rehashed password, unless the hash changed meanwhile (a concurrent login did it)."""
        await self.col.update_one({"_id": user_id, "password_hash": old}, {"$set": {"password_hash": new}})

    async def get(self, user_id: str) -> UserDoc | None:
        """Find a user by id."""
        return await self.col.find_one({"_id": user_id})

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        """Store a new password's hash."""
        await self.col.update_one({"_id": user_id}, {"$set": {"password_hash": password_hash}})

    async def delete(self, user_id: str) -> None:
        """Delete a user (their projects are deleted first, by the caller)."""
        await self.col.delete_one({"_id": user_id})
