"""The ``devices`` collection: the machines paired into a project, and the key ring sealed to each.

A device is keyed ``<project_id>:<id>`` (the id is made by the client that registers it) and
found by the SHA-256 of its token. Its box (``sealed``) is the key ring a rotation sealed to its
X25519 public key; each rotation replaces it, since every box carries the whole ring. Times are
epoch milliseconds.
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ..ids import epoch_ms
from .documents import DeviceDoc
from .queries import eq


class DeviceIdTaken(Exception):
    """A device with this id is registered already."""


def _key(project_id: str, device_id: str) -> str:
    return f"{project_id}:{device_id}"


class DeviceStore:
    """The ``devices`` collection."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.col: AsyncCollection[DeviceDoc] = db["devices"]

    async def ensure_indexes(self) -> None:
        """Create the per-project and token indexes."""
        await self.col.create_index([("project_id", 1), ("created_ms", 1)])
        await self.col.create_index("token_hash", unique=True)

    async def add(
        self, project_id: str, device_id: str, name: str, public_key: str, attestation: str, token_hash: str
    ) -> DeviceDoc:
        """Register a device.

        Raises:
            DeviceIdTaken: the id is taken in this project.
        """
        doc: DeviceDoc = {
            "_id": _key(project_id, device_id),
            "id": device_id,
            "project_id": project_id,
            "name": name,
            "public_key": public_key,
            "attestation": attestation,
            "token_hash": token_hash,
            "created_ms": epoch_ms(),
            "sealed": None,
            "key_id": None,
            "sealed_ms": None,
        }
        try:
            await self.col.insert_one(doc)
        except DuplicateKeyError as exc:
            raise DeviceIdTaken from exc
        return doc

    async def count(self, project_id: str) -> int:
        """Count a project's devices."""
        return await self.col.count_documents({"project_id": eq(project_id)})

    async def of_project(self, project_id: str) -> list[DeviceDoc]:
        """Return a project's devices, oldest first."""
        return await self.col.find({"project_id": eq(project_id)}).sort("created_ms", 1).to_list(None)

    async def get(self, project_id: str, device_id: str) -> DeviceDoc | None:
        """Return one device, or None."""
        return await self.col.find_one({"_id": _key(project_id, device_id)})

    async def by_token(self, token_hash: str) -> DeviceDoc | None:
        """Return the device whose token hashes to ``token_hash``, or None."""
        return await self.col.find_one({"token_hash": eq(token_hash)})

    async def seal(self, project_id: str, device_id: str, key_id: str, sealed: str) -> bool:
        """Replace a device's box; False when the device is gone."""
        done = await self.col.update_one(
            {"_id": _key(project_id, device_id)},
            {"$set": {"sealed": sealed, "key_id": key_id, "sealed_ms": epoch_ms()}},
        )
        return done.matched_count == 1

    async def delete(self, project_id: str, device_id: str) -> bool:
        """Delete a device, its token and its box; False when there was none."""
        done = await self.col.delete_one({"_id": _key(project_id, device_id)})
        return done.deleted_count == 1

    async def delete_project(self, project_id: str) -> None:
        """Delete a project's devices."""
        await self.col.delete_many({"project_id": eq(project_id)})
