"""The project's key-value store: conditional writes, storage counted, every change announced."""

from __future__ import annotations

import functools

from ..settings import Settings
from ..store import Store, kv
from ..store.documents import AgentDoc, KvDoc
from .announcements import Announcements
from .errors import NotFound, PreconditionFailed
from .quotas import Quotas


def _changed(key: str) -> PreconditionFailed:
    return PreconditionFailed(
        "PRECONDITION_FAILED", f"Entry '{key}' changed since that version (or exists); read it again."
    )


def _missing(key: str) -> NotFound:
    return NotFound(f"Entry '{key}'", "KV_NOT_FOUND")


class KvService:
    """Read, write and delete a project's entries.

    Args:
        store: The database.
        settings: The read budget.
        quotas: The storage quota values count toward.
        announcements: Where writes and deletes are told.
    """

    def __init__(self, store: Store, settings: Settings, quotas: Quotas, announcements: Announcements) -> None:
        self._store = store
        self._settings = settings
        self._quotas = quotas
        self._announcements = announcements

    async def get(self, project_id: str, key: str) -> KvDoc:
        """Return an entry.

        Raises:
            NotFound: ``KV_NOT_FOUND``.
        """
        entry = await self._store.kv.get(project_id, key)
        if entry is None:
            raise _missing(key)
        return entry

    async def page(
        self, project_id: str, prefix: str | None, limit: int, cursor: str | None
    ) -> tuple[list[KvDoc], str | None]:
        """Return a page of entries in key order, up to the read budget."""
        return await self._store.kv.list(project_id, prefix, limit, cursor, self._settings.read_budget_bytes)

    async def put(
        self,
        agent: AgentDoc,
        key: str,
        value: str,
        *,
        if_version: int | None,
        if_exists: bool,
        if_absent: bool,
        write_key: str | None,
    ) -> tuple[KvDoc, bool]:
        """Create or replace an entry if its conditions hold, and announce it; return it and whether it is new.

        Raises:
            PreconditionFailed: a condition does not hold.
            QuotaExceeded: the value does not fit the project's storage.
        """
        project_id = agent["project_id"]
        try:
            entry, created = await self._store.kv.put(
                project_id,
                key,
                value,
                agent["slug"],
                if_version=if_version,
                if_exists=if_exists,
                if_absent=if_absent,
                write_key=write_key,
                reserve=functools.partial(self._quotas.reserve_storage, project_id),
                release=functools.partial(self._quotas.release_storage, project_id),
            )
        except kv.PreconditionFailed as exc:
            raise _changed(key) from exc
        # Unless the first try of this write did (a retry gets the entry it stored).
        await self._announcements.kv_written(entry)
        return entry, created

    async def delete(self, agent: AgentDoc, key: str, if_version: int | None) -> None:
        """Delete an entry if its condition holds, give its storage back and announce it.

        Raises:
            NotFound: ``KV_NOT_FOUND``.
            PreconditionFailed: the entry is at another version.
        """
        project_id = agent["project_id"]
        try:
            deleted = await self._store.kv.delete(project_id, key, if_version)
        except kv.PreconditionFailed as exc:
            raise _changed(key) from exc
        if deleted is None:
            raise _missing(key)
        await self._quotas.release_storage(project_id, int(deleted.get("counted_bytes", 0)))
        deleted["updated_by"] = agent["slug"]
        await self._announcements.kv_deleted(deleted)
