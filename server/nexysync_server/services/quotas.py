"""Quotas: per project, messages (a count and bytes) per day, agents, and storage for every
stored byte (files, code references, kv values); per user, projects.

Counts live in MongoDB, so they hold across workers. Storage, agents and projects are reserved
with one conditional ``$inc`` each, exact under any concurrency (the first reservation too). A
send is reserved in this process's memory at once (so this process never overshoots) and checked
against today's count as stored, read at most once a second, which keeps a database write off
every send far from the quota. Near it a process works on its share of what is left, as the rate
limiter does (:func:`~.limits.must_settle`): a send that would take its unwritten count past a
sixteenth of what is left writes it, and itself, at once, and is stored only if the new totals
are within the quota; so four workers together overshoot by at most 3/16 of it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..settings import Settings
from ..store import Store
from ..store.usage import today
from .errors import QuotaExceeded
from .limits import must_settle


def _exceeded(what: str, limit: int, name: str) -> QuotaExceeded:
    return QuotaExceeded(f"The project has reached its quota of {limit} {what}; ask its owner to raise it.", name)


#: A record written within the storage quota (a file, a reference).
_Record = TypeVar("_Record")


class Quotas:
    """Check and report a project's usage against its limits.

    Args:
        settings: The limits.
        store: Where usage is counted.
    """

    def __init__(self, settings: Settings, store: Store) -> None:
        self._settings = settings
        self._store = store

    async def reserve_message(self, project_id: str, size: int) -> None:
        """Count a send of ``size`` bytes, or refuse it when the project has used today's messages or bytes.

        Call :meth:`release_message` with the same size when the send stored nothing.
        """
        usage = self._store.usage
        stored, unwritten = await usage.counted_today(project_id)
        messages, mib = self._settings.quota_messages_per_day, self._settings.quota_message_mb_per_day
        byte_limit = mib * 1024 * 1024
        self._check_messages(stored[0] + unwritten[0] + 1, stored[1] + unwritten[1] + size)
        if not (
            must_settle(messages, stored[0], unwritten[0], 1) or must_settle(byte_limit, stored[1], unwritten[1], size)
        ):
            # No await since the check: no other send of this process can slip in between.
            usage.add_messages(project_id, 1, size)
            return
        count, sent_bytes = await usage.settle_messages(project_id, 1, size)
        try:
            self._check_messages(count, sent_bytes)
        except QuotaExceeded:
            # Given back at once, so that usage reports (on any worker) never count refused sends.
            await usage.settle_messages(project_id, -1, -size)
            raise

    def _check_messages(self, count: int, sent_bytes: int) -> None:
        """Refuse when today's messages would be ``count`` messages of ``sent_bytes`` in all, past a quota."""
        settings = self._settings
        if count > settings.quota_messages_per_day:
            raise _exceeded("messages per day", settings.quota_messages_per_day, "messages_per_day")
        if sent_bytes > settings.quota_message_mb_per_day * 1024 * 1024:
            raise _exceeded("MB of messages per day", settings.quota_message_mb_per_day, "message_bytes_per_day")

    def release_message(self, project_id: str, size: int) -> None:
        """Give back a send reserved with :meth:`reserve_message` that stored nothing."""
        self._store.usage.add_messages(project_id, -1, -size)

    async def reserve_project(self, user_id: str) -> None:
        """Count one more project of ``user_id``, or refuse it when the user owns as many as allowed."""
        limit = self._settings.quota_projects_per_user
        owned = await self._store.projects.count_owned(user_id)
        if not await self._store.usage.reserve_project(user_id, limit, owned):
            raise QuotaExceeded(f"This account owns {limit} projects, as many as it may; delete one first.", "projects")

    async def release_project(self, user_id: str) -> None:
        """Give back one project of ``user_id``."""
        await self._store.usage.release_project(user_id)

    async def reserve_agent(self, project_id: str) -> None:
        """Count one more agent of the project, or refuse it when the project has as many as it may.

        Call :meth:`release_agent` when the agent is deleted, or when creating it failed.
        """
        limit = self._settings.quota_agents
        count = await self._store.agents.count(project_id)
        if not await self._store.usage.reserve_agent(project_id, limit, count):
            raise _exceeded("agents", limit, "agents")

    async def release_agent(self, project_id: str) -> None:
        """Give back one agent of the project."""
        await self._store.usage.release_agent(project_id)

    async def reserve_storage(self, project_id: str, size: int) -> None:
        """Count ``size`` more stored bytes, or refuse when the project's storage quota would pass.

        Call :meth:`release_storage` with the same size when the stored thing is deleted, or when
        storing it failed after the reservation.
        """
        limit_mb = self._settings.quota_storage_mb
        if not await self._store.usage.reserve_storage(project_id, size, limit_mb * 1024 * 1024):
            raise _exceeded("MB of storage", limit_mb, "storage_bytes")

    async def release_storage(self, project_id: str, size: int) -> None:
        """Give back ``size`` stored bytes."""
        await self._store.usage.release_storage(project_id, size)

    async def store_within_storage(
        self, project_id: str, size: int, write: Callable[[], Awaitable[tuple[_Record, bool]]]
    ) -> tuple[_Record, bool]:
        """Reserve ``size`` bytes, run an idempotent ``write``, and keep the bytes only if it created something.

        Args:
            project_id: Whose storage.
            size: The bytes the record takes.
            write: Stores the record; returns it and whether this call created it (False when a
                concurrent retry stored it first, and holds its own reservation).

        Raises:
            QuotaExceeded: the storage quota would pass; and whatever ``write`` raises (the bytes
                are given back).
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
            "message_bytes_today": await self._store.usage.message_bytes_today(project_id),
            "message_bytes_per_day_limit": settings.quota_message_mb_per_day * 1024 * 1024,
            "storage_bytes": await self._store.usage.storage_bytes(project_id),
            "storage_limit_bytes": settings.quota_storage_mb * 1024 * 1024,
            "agents": await self._store.agents.count(project_id),
            "agents_limit": settings.quota_agents,
        }
