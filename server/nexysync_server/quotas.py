"""Per-project quotas: messages per day, agents, and storage for code references and files.

Counts live in MongoDB, so they hold across workers. A check reads today's message count at
most once a second per process (plus what this process counted since): across workers a
project can overshoot by what the others sent in that second, which keeps a read off every send.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .cache import TtlCache
from .errors import Problem
from .settings import Settings
from .store import Store
from .store.usage import today

_COUNT_TTL_S = 1.0


def _exceeded(what: str, limit: int) -> Problem:
    return Problem(
        403, "QUOTA_EXCEEDED", f"The project has reached its quota of {limit} {what}; ask its owner to raise it."
    )


class Quotas:
    """Check and report a project's usage against its limits.

    Args:
        settings: The limits.
        store: Where usage is counted.
    """

    def __init__(self, settings: Settings, store: Store) -> None:
        self._settings = settings
        self._store = store
        # (count in the database, the usage store's writes when it was read)
        self._stored_today: TtlCache[tuple[str, str], tuple[int, int]] = TtlCache(ttl_s=_COUNT_TTL_S)

    async def check_message(self, project_id: str) -> None:
        """Refuse a send when the project has used its messages for today."""
        key = (project_id, today())
        usage = self._store.usage
        cached = self._stored_today.get(key)
        if cached is None or cached[1] != usage.writes:
            # Read again after this process wrote counts: they left the pending ones then.
            writes = usage.writes
            cached = (await usage.stored_messages(project_id), writes)
            self._stored_today.put(key, cached)
        if cached[0] + usage.pending_messages(project_id) >= self._settings.quota_messages_per_day:
            raise _exceeded("messages per day", self._settings.quota_messages_per_day)

    async def check_agent(self, project_id: str) -> None:
        """Refuse a new agent when the project has as many as it may."""
        if await self._store.agents.count(project_id) >= self._settings.quota_agents:
            raise _exceeded("agents", self._settings.quota_agents)

    async def reserve_storage(self, project_id: str, size: int) -> None:
        """Count ``size`` more stored bytes, or refuse when the project's storage quota would pass.

        Call :meth:`release_storage` with the same size when the stored thing is deleted, or when
        storing it failed after the reservation.
        """
        limit_mb = self._settings.quota_storage_mb
        if not await self._store.usage.reserve_storage(project_id, size, limit_mb * 1024 * 1024):
            raise _exceeded("MB of storage", limit_mb)

    async def release_storage(self, project_id: str, size: int) -> None:
        """Give back ``size`` stored bytes."""
        await self._store.usage.release_storage(project_id, size)

    async def store_within_storage(
        self, project_id: str, size: int, write: Callable[[], Awaitable[tuple[dict[str, Any], bool]]]
    ) -> tuple[dict[str, Any], bool]:
        """Reserve ``size`` bytes, run an idempotent ``write``, and keep the bytes only if it created something.

        Args:
            project_id: Whose storage.
            size: The bytes the record takes.
            write: Stores the record; returns it and whether this call created it (False when a
                concurrent retry stored it first, and holds its own reservation).

        Raises:
            Problem: 403 QUOTA_EXCEEDED; and whatever ``write`` raises (the bytes are given back).
        """
        await self.reserve_storage(project_id, size)
        try:
            doc, created = await write()
        except BaseException:
            await self.release_storage(project_id, size)
            raise
        if not created:
            await self.release_storage(project_id, size)
        return doc, created

    async def usage(self, project_id: str) -> dict[str, Any]:
        """Report today's messages, storage and agents against their limits."""
        settings = self._settings
        return {
            "project_id": project_id,
            "day": today(),
            "messages_today": await self._store.usage.messages_today(project_id),
            "messages_per_day_limit": settings.quota_messages_per_day,
            "storage_bytes": await self._store.usage.storage_bytes(project_id),
            "storage_limit_bytes": settings.quota_storage_mb * 1024 * 1024,
            "agents": await self._store.agents.count(project_id),
            "agents_limit": settings.quota_agents,
        }
