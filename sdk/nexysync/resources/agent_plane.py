"""The agent's own view: ``client.me``, ``agents``, ``events``, ``presence`` and ``quota``."""

from __future__ import annotations

from nexysync._pagination import AsyncPager, SyncPager
from nexysync.resources._base import AsyncResource, SyncResource, compact, operation
from nexysync_generated.models import Agent, EventPage, Me, PresenceList, Usage

__all__ = [
    "Agents",
    "AsyncAgents",
    "AsyncEvents",
    "AsyncMeResource",
    "AsyncPresenceResource",
    "AsyncQuota",
    "Events",
    "MeResource",
    "PresenceResource",
    "Quota",
]


class MeResource(SyncResource):
    """The calling agent."""

    @operation("me_get")
    def get(self) -> Me:
        """Return the calling agent and its project id."""
        result: Me = self._client.call("me_get")
        return result

    @operation("me_update")
    def update(self, *, name: str | None = None, role: str | None = None, capabilities: list[str] | None = None) -> Me:
        """Change the calling agent's name, role or capabilities (what is not given is kept)."""
        result: Me = self._client.call("me_update", body=compact(name=name, role=role, capabilities=capabilities))
        return result


class AsyncMeResource(AsyncResource):
    """The calling agent (async)."""

    @operation("me_get")
    async def get(self) -> Me:
        """Return the calling agent and its project id."""
        result: Me = await self._client.call("me_get")
        return result

    @operation("me_update")
    async def update(
        self, *, name: str | None = None, role: str | None = None, capabilities: list[str] | None = None
    ) -> Me:
        """Change the calling agent's name, role or capabilities (what is not given is kept)."""
        result: Me = await self._client.call("me_update", body=compact(name=name, role=role, capabilities=capabilities))
        return result


class Agents(SyncResource):
    """The directory of the agents of the caller's project."""

    @operation("agents_directory")
    def list(self, *, limit: int | None = None) -> SyncPager[Agent]:
        """List the project's agents, with when each was last seen."""
        return self._pager("agents_directory", limit=limit)


class AsyncAgents(AsyncResource):
    """The directory of the agents of the caller's project (async)."""

    @operation("agents_directory")
    def list(self, *, limit: int | None = None) -> AsyncPager[Agent]:
        """List the project's agents, with when each was last seen (``async for``)."""
        return self._pager("agents_directory", limit=limit)


class Events(SyncResource):
    """The project's event log, for polling instead of streaming."""

    @operation("events_list")
    def list(self, *, after: int | None = None, limit: int | None = None) -> EventPage:
        """Return the events after ``after`` (a ``seq``); pass ``page.last_seq`` next time."""
        result: EventPage = self._client.call("events_list", query={"after": after, "limit": limit})
        return result


class AsyncEvents(AsyncResource):
    """The project's event log, for polling instead of streaming (async)."""

    @operation("events_list")
    async def list(self, *, after: int | None = None, limit: int | None = None) -> EventPage:
        """Return the events after ``after`` (a ``seq``); pass ``page.last_seq`` next time."""
        result: EventPage = await self._client.call("events_list", query={"after": after, "limit": limit})
        return result


class PresenceResource(SyncResource):
    """Who is online."""

    @operation("presence_list")
    def list(self) -> PresenceList:
        """Return the agents online now and how each is connected."""
        result: PresenceList = self._client.call("presence_list")
        return result


class AsyncPresenceResource(AsyncResource):
    """Who is online (async)."""

    @operation("presence_list")
    async def list(self) -> PresenceList:
        """Return the agents online now and how each is connected."""
        result: PresenceList = await self._client.call("presence_list")
        return result


class Quota(SyncResource):
    """What is left of the project's quotas."""

    @operation("quota_get")
    def get(self) -> Usage:
        """Return today's usage of the caller's project and its limits."""
        result: Usage = self._client.call("quota_get")
        return result


class AsyncQuota(AsyncResource):
    """What is left of the project's quotas (async)."""

    @operation("quota_get")
    async def get(self) -> Usage:
        """Return today's usage of the caller's project and its limits."""
        result: Usage = await self._client.call("quota_get")
        return result
