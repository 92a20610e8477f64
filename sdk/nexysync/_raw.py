"""The types of ``client.with_raw_response``: each resource method, answered by a ``RawResponse``.

At run time ``with_raw_response`` is the raw-response client itself (a ``Client`` whose operations
answer ``RawResponse``); these classes only tell type checkers so, and are not built per access.
Python's type system cannot map a class's methods to "the same parameters, another return type", so
the classes name each operation method once (``self.send = _raw(messages.send)``) and let
:func:`_raw` carry the real method's parameters over through a ``ParamSpec``: arguments stay checked
against the one signature in ``nexysync.resources``, and only the return type changes. Nothing is
copied but the method names; a unit test builds the classes over a raw client and checks that every
operation method of every resource is here and is the resource's own.

Methods that are not one operation (``messages.wait``, ``messages.wait_for``, ``files.upload``,
``files.download``) are left out of the types: through the raw view they would receive a
``RawResponse`` where they expect a model.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, overload

if TYPE_CHECKING:
    from nexysync._client import RawResponse, _AsyncRawResponseClient, _RawResponseClient
    from nexysync._pagination import AsyncPager, SyncPager
    from nexysync.resources import (
        Agents,
        AsyncAgents,
        AsyncAuth,
        AsyncEvents,
        AsyncFiles,
        AsyncKv,
        AsyncMeResource,
        AsyncMessages,
        AsyncPresenceResource,
        AsyncProjectAgents,
        AsyncProjects,
        AsyncQuota,
        AsyncRefs,
        Auth,
        Events,
        Files,
        Kv,
        MeResource,
        Messages,
        PresenceResource,
        ProjectAgents,
        Projects,
        Quota,
        Refs,
    )

__all__ = ["AsyncClientWithRawResponse", "AsyncRawPager", "ClientWithRawResponse", "RawPager"]

P = ParamSpec("P")


class RawPager(Protocol):
    """What a list method answers through the raw view: its first page, unparsed.

    The pager's other ways in (``for``, ``pages()``) follow ``next_cursor`` of parsed pages, so they
    do not work on raw ones and are not part of this type.
    """

    def first_page(self) -> RawResponse:
        """Return the raw response of the first page."""
        ...


class AsyncRawPager(Protocol):
    """What an async list method answers through the raw view: its first page, unparsed."""

    async def first_page(self) -> RawResponse:
        """Return the raw response of the first page."""
        ...


# The overloads overlap (a pager is an object): the first that matches wins, as intended.
@overload
def _raw(method: Callable[P, SyncPager[Any]]) -> Callable[P, RawPager]: ...  # type: ignore[overload-overlap]
@overload
def _raw(method: Callable[P, object]) -> Callable[P, RawResponse]: ...
def _raw(method: Callable[..., Any]) -> Any:
    """Retype a method of a resource bound to a raw-response client (it already answers raw responses)."""
    return method


@overload
def _araw(method: Callable[P, AsyncPager[Any]]) -> Callable[P, AsyncRawPager]: ...
@overload
def _araw(method: Callable[P, Coroutine[Any, Any, object]]) -> Callable[P, Coroutine[Any, Any, RawResponse]]: ...
def _araw(method: Callable[..., Any]) -> Any:
    """Retype a method of a resource bound to an async raw-response client."""
    return method


class _RawView:
    """The type of a resource (or client) of the raw-response client."""

    def __init__(self, target: object) -> None:
        self._target = target


class MessagesWithRawResponse(_RawView):
    """``client.with_raw_response.messages``."""

    def __init__(self, messages: Messages) -> None:
        super().__init__(messages)
        self.send = _raw(messages.send)
        self.list = _raw(messages.list)
        self.get = _raw(messages.get)
        self.ack = _raw(messages.ack)
        self.thread = _raw(messages.thread)
        self.receipts = _raw(messages.receipts)
        self.react = _raw(messages.react)
        self.pin = _raw(messages.pin)
        self.unpin = _raw(messages.unpin)


class AsyncMessagesWithRawResponse(_RawView):
    """``client.with_raw_response.messages`` of an :class:`~nexysync.AsyncClient`."""

    def __init__(self, messages: AsyncMessages) -> None:
        super().__init__(messages)
        self.send = _araw(messages.send)
        self.list = _araw(messages.list)
        self.get = _araw(messages.get)
        self.ack = _araw(messages.ack)
        self.thread = _araw(messages.thread)
        self.receipts = _araw(messages.receipts)
        self.react = _araw(messages.react)
        self.pin = _araw(messages.pin)
        self.unpin = _araw(messages.unpin)


class MeWithRawResponse(_RawView):
    """``client.with_raw_response.me``."""

    def __init__(self, me: MeResource) -> None:
        super().__init__(me)
        self.get = _raw(me.get)
        self.update = _raw(me.update)


class AsyncMeWithRawResponse(_RawView):
    """``client.with_raw_response.me`` of an :class:`~nexysync.AsyncClient`."""

    def __init__(self, me: AsyncMeResource) -> None:
        super().__init__(me)
        self.get = _araw(me.get)
        self.update = _araw(me.update)


class AgentsWithRawResponse(_RawView):
    """``client.with_raw_response.agents``."""

    def __init__(self, agents: Agents) -> None:
        super().__init__(agents)
        self.list = _raw(agents.list)


class AsyncAgentsWithRawResponse(_RawView):
    """``client.with_raw_response.agents`` of an :class:`~nexysync.AsyncClient`."""

    def __init__(self, agents: AsyncAgents) -> None:
        super().__init__(agents)
        self.list = _araw(agents.list)


class EventsWithRawResponse(_RawView):
    """``client.with_raw_response.events``."""

    def __init__(self, events: Events) -> None:
        super().__init__(events)
        self.list = _raw(events.list)


class AsyncEventsWithRawResponse(_RawView):
    """``client.with_raw_response.events`` of an :class:`~nexysync.AsyncClient`."""

    def __init__(self, events: AsyncEvents) -> None:
        super().__init__(events)
        self.list = _araw(events.list)


class PresenceWithRawResponse(_RawView):
    """``client.with_raw_response.presence``."""

    def __init__(self, presence: PresenceResource) -> None:
        super().__init__(presence)
        self.list = _raw(presence.list)


class AsyncPresenceWithRawResponse(_RawView):
    """``client.with_raw_response.presence`` of an :class:`~nexysync.AsyncClient`."""

    def __init__(self, presence: AsyncPresenceResource) -> None:
        super().__init__(presence)
        self.list = _araw(presence.list)


class KvWithRawResponse(_RawView):
    """``client.with_raw_response.kv``."""

    def __init__(self, kv: Kv) -> None:
        super().__init__(kv)
        self.get = _raw(kv.get)
        self.put = _raw(kv.put)
        self.delete = _raw(kv.delete)
        self.list = _raw(kv.list)


class AsyncKvWithRawResponse(_RawView):
    """``client.with_raw_response.kv`` of an :class:`~nexysync.AsyncClient`."""

    def __init__(self, kv: AsyncKv) -> None:
        super().__init__(kv)
        self.get = _araw(kv.get)
        self.put = _araw(kv.put)
        self.delete = _araw(kv.delete)
        self.list = _araw(kv.list)


class FilesWithRawResponse(_RawView):
    """``client.with_raw_response.files``: the file records (``upload`` and ``download`` are not one call)."""

    def __init__(self, files: Files) -> None:
        super().__init__(files)
        self.create = _raw(files.create)
        self.list = _raw(files.list)
        self.get = _raw(files.get)
        self.delete = _raw(files.delete)


class AsyncFilesWithRawResponse(_RawView):
    """``client.with_raw_response.files`` of an :class:`~nexysync.AsyncClient`."""

    def __init__(self, files: AsyncFiles) -> None:
        super().__init__(files)
        self.create = _araw(files.create)
        self.list = _araw(files.list)
        self.get = _araw(files.get)
        self.delete = _araw(files.delete)


class RefsWithRawResponse(_RawView):
    """``client.with_raw_response.refs``."""

    def __init__(self, refs: Refs) -> None:
        super().__init__(refs)
        self.share = _raw(refs.share)
        self.list = _raw(refs.list)
        self.get = _raw(refs.get)
        self.delete = _raw(refs.delete)


class AsyncRefsWithRawResponse(_RawView):
    """``client.with_raw_response.refs`` of an :class:`~nexysync.AsyncClient`."""

    def __init__(self, refs: AsyncRefs) -> None:
        super().__init__(refs)
        self.share = _araw(refs.share)
        self.list = _araw(refs.list)
        self.get = _araw(refs.get)
        self.delete = _araw(refs.delete)


class QuotaWithRawResponse(_RawView):
    """``client.with_raw_response.quota``."""

    def __init__(self, quota: Quota) -> None:
        super().__init__(quota)
        self.get = _raw(quota.get)


class AsyncQuotaWithRawResponse(_RawView):
    """``client.with_raw_response.quota`` of an :class:`~nexysync.AsyncClient`."""

    def __init__(self, quota: AsyncQuota) -> None:
        super().__init__(quota)
        self.get = _araw(quota.get)


class AuthWithRawResponse(_RawView):
    """``client.with_raw_response.auth`` (a successful register, login, refresh or logout still signs in or out)."""

    def __init__(self, auth: Auth) -> None:
        super().__init__(auth)
        self.register = _raw(auth.register)
        self.login = _raw(auth.login)
        self.refresh = _raw(auth.refresh)
        self.logout = _raw(auth.logout)


class AsyncAuthWithRawResponse(_RawView):
    """``client.with_raw_response.auth`` of an :class:`~nexysync.AsyncClient`."""

    def __init__(self, auth: AsyncAuth) -> None:
        super().__init__(auth)
        self.register = _araw(auth.register)
        self.login = _araw(auth.login)
        self.refresh = _araw(auth.refresh)
        self.logout = _araw(auth.logout)


class ProjectsWithRawResponse(_RawView):
    """``client.with_raw_response.projects``."""

    def __init__(self, projects: Projects) -> None:
        super().__init__(projects)
        self.create = _raw(projects.create)
        self.list = _raw(projects.list)
        self.get = _raw(projects.get)
        self.update = _raw(projects.update)
        self.delete = _raw(projects.delete)
        self.usage = _raw(projects.usage)
        self.audit = _raw(projects.audit)
        self.messages = _raw(projects.messages)
        self.message_receipts = _raw(projects.message_receipts)
        self.presence = _raw(projects.presence)
        self.kv = _raw(projects.kv)
        self.refs = _raw(projects.refs)
        self.files = _raw(projects.files)


class AsyncProjectsWithRawResponse(_RawView):
    """``client.with_raw_response.projects`` of an :class:`~nexysync.AsyncClient`."""

    def __init__(self, projects: AsyncProjects) -> None:
        super().__init__(projects)
        self.create = _araw(projects.create)
        self.list = _araw(projects.list)
        self.get = _araw(projects.get)
        self.update = _araw(projects.update)
        self.delete = _araw(projects.delete)
        self.usage = _araw(projects.usage)
        self.audit = _araw(projects.audit)
        self.messages = _araw(projects.messages)
        self.message_receipts = _araw(projects.message_receipts)
        self.presence = _araw(projects.presence)
        self.kv = _araw(projects.kv)
        self.refs = _araw(projects.refs)
        self.files = _araw(projects.files)


class ProjectAgentsWithRawResponse(_RawView):
    """``client.with_raw_response.project_agents``."""

    def __init__(self, project_agents: ProjectAgents) -> None:
        super().__init__(project_agents)
        self.create = _raw(project_agents.create)
        self.list = _raw(project_agents.list)
        self.update = _raw(project_agents.update)
        self.delete = _raw(project_agents.delete)
        self.rotate_key = _raw(project_agents.rotate_key)
        self.clone = _raw(project_agents.clone)


class AsyncProjectAgentsWithRawResponse(_RawView):
    """``client.with_raw_response.project_agents`` of an :class:`~nexysync.AsyncClient`."""

    def __init__(self, project_agents: AsyncProjectAgents) -> None:
        super().__init__(project_agents)
        self.create = _araw(project_agents.create)
        self.list = _araw(project_agents.list)
        self.update = _araw(project_agents.update)
        self.delete = _araw(project_agents.delete)
        self.rotate_key = _araw(project_agents.rotate_key)
        self.clone = _araw(project_agents.clone)


class ClientWithRawResponse(_RawView):
    """``client.with_raw_response``: every resource method, and ``call``, answer a :class:`~nexysync.RawResponse`.

    A list method answers a pager whose :meth:`RawPager.first_page` is the raw first page. It shares
    the client's connection, session and options.
    """

    def __init__(self, client: _RawResponseClient) -> None:
        super().__init__(client)
        self.call = client.call
        self.call_raw = client.call_raw
        self.messages = MessagesWithRawResponse(client.messages)
        self.me = MeWithRawResponse(client.me)
        self.agents = AgentsWithRawResponse(client.agents)
        self.events = EventsWithRawResponse(client.events)
        self.presence = PresenceWithRawResponse(client.presence)
        self.kv = KvWithRawResponse(client.kv)
        self.files = FilesWithRawResponse(client.files)
        self.refs = RefsWithRawResponse(client.refs)
        self.quota = QuotaWithRawResponse(client.quota)
        self.auth = AuthWithRawResponse(client.auth)
        self.projects = ProjectsWithRawResponse(client.projects)
        self.project_agents = ProjectAgentsWithRawResponse(client.project_agents)


class AsyncClientWithRawResponse(_RawView):
    """``async_client.with_raw_response``: every resource method, and ``call``, answer an awaitable ``RawResponse``."""

    def __init__(self, client: _AsyncRawResponseClient) -> None:
        super().__init__(client)
        self.call = client.call
        self.call_raw = client.call_raw
        self.messages = AsyncMessagesWithRawResponse(client.messages)
        self.me = AsyncMeWithRawResponse(client.me)
        self.agents = AsyncAgentsWithRawResponse(client.agents)
        self.events = AsyncEventsWithRawResponse(client.events)
        self.presence = AsyncPresenceWithRawResponse(client.presence)
        self.kv = AsyncKvWithRawResponse(client.kv)
        self.files = AsyncFilesWithRawResponse(client.files)
        self.refs = AsyncRefsWithRawResponse(client.refs)
        self.quota = AsyncQuotaWithRawResponse(client.quota)
        self.auth = AsyncAuthWithRawResponse(client.auth)
        self.projects = AsyncProjectsWithRawResponse(client.projects)
        self.project_agents = AsyncProjectAgentsWithRawResponse(client.project_agents)
