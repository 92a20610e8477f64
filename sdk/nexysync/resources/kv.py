"""``client.kv``: the project-wide key-value store; values are encrypted, keys route in plaintext."""

from __future__ import annotations

from nexysync._pagination import AsyncPager, SyncPager
from nexysync.resources._base import AsyncResource, SyncResource, operation
from nexysync.types import KvEntry

__all__ = ["AsyncKv", "Kv"]


def _etag(version: int | str | None) -> str | None:
    """Return an entry version as an ETag (``"3"``); strings are passed through."""
    if version is None or isinstance(version, str):
        return version
    return f'"{version}"'


class Kv(SyncResource):
    """The project's key-value store; a value is encrypted under its key."""

    @operation("kv_get")
    def get(self, key: str) -> KvEntry:
        """Return an entry, its value decrypted."""
        result: KvEntry = self._client.call("kv_get", path_params={"key": key})
        return result

    @operation("kv_put")
    def put(self, key: str, value: str, *, if_match: int | str | None = None, if_none_match: bool = False) -> KvEntry:
        """Create or replace an entry.

        Args:
            key: The entry's key (letters, digits and ``. _ : -``; not encrypted).
            value: The value (encrypted).
            if_match: Replace only if the entry is still at this version (else 412).
            if_none_match: Create only; 412 if the key exists.

        Raises:
            PreconditionFailedError: a condition did not hold.
        """
        headers = {"If-Match": _etag(if_match), "If-None-Match": "*" if if_none_match else None}
        result: KvEntry = self._client.call("kv_put", path_params={"key": key}, body={"value": value}, headers=headers)
        return result

    @operation("kv_delete")
    def delete(self, key: str, *, if_match: int | str | None = None) -> None:
        """Delete an entry, optionally only if it is still at version ``if_match``."""
        self._client.call("kv_delete", path_params={"key": key}, headers={"If-Match": _etag(if_match)})

    @operation("kv_list")
    def list(self, *, prefix: str | None = None, limit: int | None = None) -> SyncPager[KvEntry]:
        """List entries (optionally those whose key starts with ``prefix``), values decrypted.

        A value that fails to decrypt (another project key, tampered with) is skipped, not raised:
        it is listed in ``pager.undecryptable`` (and each page's ``undecryptable``) and logged.
        """
        return self._pager("kv_list", prefix=prefix, limit=limit)


class AsyncKv(AsyncResource):
    """The project's key-value store (async)."""

    @operation("kv_get")
    async def get(self, key: str) -> KvEntry:
        """Return an entry, its value decrypted."""
        result: KvEntry = await self._client.call("kv_get", path_params={"key": key})
        return result

    @operation("kv_put")
    async def put(
        self, key: str, value: str, *, if_match: int | str | None = None, if_none_match: bool = False
    ) -> KvEntry:
        """Create or replace an entry, as :meth:`Kv.put`."""
        headers = {"If-Match": _etag(if_match), "If-None-Match": "*" if if_none_match else None}
        result: KvEntry = await self._client.call(
            "kv_put", path_params={"key": key}, body={"value": value}, headers=headers
        )
        return result

    @operation("kv_delete")
    async def delete(self, key: str, *, if_match: int | str | None = None) -> None:
        """Delete an entry, optionally only if it is still at version ``if_match``."""
        await self._client.call("kv_delete", path_params={"key": key}, headers={"If-Match": _etag(if_match)})

    @operation("kv_list")
    def list(self, *, prefix: str | None = None, limit: int | None = None) -> AsyncPager[KvEntry]:
        """List entries (``async for``), values decrypted; those that fail to decrypt are in ``undecryptable``."""
        return self._pager("kv_list", prefix=prefix, limit=limit)
