"""The management plane: ``client.projects`` and ``client.project_agents`` (human sessions)."""

from __future__ import annotations

import builtins  # `builtins.list` in annotations: the resources have a method named `list`
import datetime as dt

from nexysync._pagination import AsyncPager, SyncPager
from nexysync.resources._base import AsyncResource, SyncResource, compact, operation
from nexysync_generated.models import (
    Agent,
    AgentWithKey,
    AuditEntry,
    File,
    KvEntry,
    Message,
    PresenceList,
    Project,
    ReceiptList,
    Ref,
    Usage,
)

__all__ = ["AsyncProjectAgents", "AsyncProjects", "ProjectAgents", "Projects"]


def _owner_messages_query(
    agent: str | None,
    since: dt.datetime | None,
    status: str | None,
    from_: str | None,
    type: str | None,
    pinned: bool | None,
    limit: int | None,
) -> dict[str, object]:
    return {
        "agent": agent,
        "since": since,
        "status": status,
        "from": from_,
        "type": type,
        "pinned": pinned,
        "limit": limit,
    }


# The owner's read view of a whole project (what the console reads). Its content is decrypted
# like an agent's: the client needs the project's key ring and ``project_id`` (the one it reads).


def _pa(project_id: str, agent_id: str | None = None) -> dict[str, str]:
    return {"project_id": project_id} if agent_id is None else {"project_id": project_id, "agent_id": agent_id}


class Projects(SyncResource):
    """The signed-in human's projects."""

    @operation("projects_create")
    def create(self, *, name: str, default_ttl_hours: int | None = None) -> Project:
        """Create a project."""
        body = compact(name=name, default_ttl_hours=default_ttl_hours)
        result: Project = self._client.call("projects_create", body=body)
        return result

    @operation("projects_list")
    def list(self, *, limit: int | None = None) -> SyncPager[Project]:
        """List the human's projects."""
        return self._pager("projects_list", limit=limit)

    @operation("projects_get")
    def get(self, project_id: str) -> Project:
        """Return one project."""
        result: Project = self._client.call("projects_get", path_params=_pa(project_id))
        return result

    @operation("projects_update")
    def update(self, project_id: str, *, name: str | None = None, default_ttl_hours: int | None = None) -> Project:
        """Rename a project or change how long its messages are kept."""
        body = compact(name=name, default_ttl_hours=default_ttl_hours)
        result: Project = self._client.call("projects_update", path_params=_pa(project_id), body=body)
        return result

    @operation("projects_delete")
    def delete(self, project_id: str) -> None:
        """Delete a project with all its agents and messages."""
        self._client.call("projects_delete", path_params=_pa(project_id), query={"confirm": True})

    @operation("projects_usage")
    def usage(self, project_id: str) -> Usage:
        """Return today's usage and the project's limits."""
        result: Usage = self._client.call("projects_usage", path_params=_pa(project_id))
        return result

    @operation("projects_audit")
    def audit(self, project_id: str, *, limit: int | None = None) -> SyncPager[AuditEntry]:
        """Page through the project's audit log, oldest first."""
        return self._pager("projects_audit", path_params=_pa(project_id), limit=limit)

    @operation("owner_messages_list")
    def messages(
        self,
        project_id: str,
        *,
        agent: str | None = None,
        since: dt.datetime | None = None,
        status: str | None = None,
        from_: str | None = None,
        type: str | None = None,
        pinned: bool | None = None,
        limit: int | None = None,
    ) -> SyncPager[Message]:
        """List every message of the project (the owner's view), decrypted; ``agent``: sent or received by it."""
        query = _owner_messages_query(agent, since, status, from_, type, pinned, limit)
        return self._pager("owner_messages_list", path_params=_pa(project_id), **query)

    @operation("owner_message_receipts")
    def message_receipts(self, project_id: str, message_id: str) -> ReceiptList:
        """Return where each recipient's copy of a project's message is: queued, delivered, read or acked."""
        path = {**_pa(project_id), "message_id": message_id}
        result: ReceiptList = self._client.call("owner_message_receipts", path_params=path)
        return result

    @operation("owner_presence_list")
    def presence(self, project_id: str) -> PresenceList:
        """Return the project's agents that are online."""
        result: PresenceList = self._client.call("owner_presence_list", path_params=_pa(project_id))
        return result

    @operation("owner_kv_list")
    def kv(self, project_id: str, *, prefix: str | None = None, limit: int | None = None) -> SyncPager[KvEntry]:
        """List the project's key-value entries, values decrypted."""
        return self._pager("owner_kv_list", path_params=_pa(project_id), prefix=prefix, limit=limit)

    @operation("owner_refs_list")
    def refs(
        self, project_id: str, *, from_: str | None = None, language: str | None = None, limit: int | None = None
    ) -> SyncPager[Ref]:
        """List every code reference of the project (direct ones too), decrypted."""
        query = {"from": from_, "language": language, "limit": limit}
        return self._pager("owner_refs_list", path_params=_pa(project_id), **query)

    @operation("owner_files_list")
    def files(self, project_id: str, *, limit: int | None = None) -> SyncPager[File]:
        """List the project's ready files (names decrypted), each with a signed download URL."""
        return self._pager("owner_files_list", path_params=_pa(project_id), limit=limit)


class AsyncProjects(AsyncResource):
    """The signed-in human's projects (async)."""

    @operation("projects_create")
    async def create(self, *, name: str, default_ttl_hours: int | None = None) -> Project:
        """Create a project."""
        body = compact(name=name, default_ttl_hours=default_ttl_hours)
        result: Project = await self._client.call("projects_create", body=body)
        return result

    @operation("projects_list")
    def list(self, *, limit: int | None = None) -> AsyncPager[Project]:
        """List the human's projects (``async for``)."""
        return self._pager("projects_list", limit=limit)

    @operation("projects_get")
    async def get(self, project_id: str) -> Project:
        """Return one project."""
        result: Project = await self._client.call("projects_get", path_params=_pa(project_id))
        return result

    @operation("projects_update")
    async def update(
        self, project_id: str, *, name: str | None = None, default_ttl_hours: int | None = None
    ) -> Project:
        """Rename a project or change how long its messages are kept."""
        body = compact(name=name, default_ttl_hours=default_ttl_hours)
        result: Project = await self._client.call("projects_update", path_params=_pa(project_id), body=body)
        return result

    @operation("projects_delete")
    async def delete(self, project_id: str) -> None:
        """Delete a project with all its agents and messages."""
        await self._client.call("projects_delete", path_params=_pa(project_id), query={"confirm": True})

    @operation("projects_usage")
    async def usage(self, project_id: str) -> Usage:
        """Return today's usage and the project's limits."""
        result: Usage = await self._client.call("projects_usage", path_params=_pa(project_id))
        return result

    @operation("projects_audit")
    def audit(self, project_id: str, *, limit: int | None = None) -> AsyncPager[AuditEntry]:
        """Page through the project's audit log, oldest first (``async for``)."""
        return self._pager("projects_audit", path_params=_pa(project_id), limit=limit)

    @operation("owner_messages_list")
    def messages(
        self,
        project_id: str,
        *,
        agent: str | None = None,
        since: dt.datetime | None = None,
        status: str | None = None,
        from_: str | None = None,
        type: str | None = None,
        pinned: bool | None = None,
        limit: int | None = None,
    ) -> AsyncPager[Message]:
        """List every message of the project (the owner's view), decrypted; ``agent``: sent or received by it."""
        query = _owner_messages_query(agent, since, status, from_, type, pinned, limit)
        return self._pager("owner_messages_list", path_params=_pa(project_id), **query)

    @operation("owner_message_receipts")
    async def message_receipts(self, project_id: str, message_id: str) -> ReceiptList:
        """Return where each recipient's copy of a project's message is: queued, delivered, read or acked."""
        path = {**_pa(project_id), "message_id": message_id}
        result: ReceiptList = await self._client.call("owner_message_receipts", path_params=path)
        return result

    @operation("owner_presence_list")
    async def presence(self, project_id: str) -> PresenceList:
        """Return the project's agents that are online."""
        result: PresenceList = await self._client.call("owner_presence_list", path_params=_pa(project_id))
        return result

    @operation("owner_kv_list")
    def kv(self, project_id: str, *, prefix: str | None = None, limit: int | None = None) -> AsyncPager[KvEntry]:
        """List the project's key-value entries, values decrypted."""
        return self._pager("owner_kv_list", path_params=_pa(project_id), prefix=prefix, limit=limit)

    @operation("owner_refs_list")
    def refs(
        self, project_id: str, *, from_: str | None = None, language: str | None = None, limit: int | None = None
    ) -> AsyncPager[Ref]:
        """List every code reference of the project (direct ones too), decrypted."""
        query = {"from": from_, "language": language, "limit": limit}
        return self._pager("owner_refs_list", path_params=_pa(project_id), **query)

    @operation("owner_files_list")
    def files(self, project_id: str, *, limit: int | None = None) -> AsyncPager[File]:
        """List the project's ready files (names decrypted), each with a signed download URL."""
        return self._pager("owner_files_list", path_params=_pa(project_id), limit=limit)


class ProjectAgents(SyncResource):
    """The agents of a project, managed by its owner."""

    @operation("agents_create")
    def create(
        self,
        project_id: str,
        *,
        slug: str,
        name: str,
        role: str | None = None,
        capabilities: builtins.list[str] | None = None,
    ) -> AgentWithKey:
        """Create an agent; its API key is in the answer, shown once."""
        body = compact(slug=slug, name=name, role=role, capabilities=capabilities)
        result: AgentWithKey = self._client.call("agents_create", path_params=_pa(project_id), body=body)
        return result

    @operation("agents_list")
    def list(self, project_id: str, *, limit: int | None = None) -> SyncPager[Agent]:
        """List a project's agents."""
        return self._pager("agents_list", path_params=_pa(project_id), limit=limit)

    @operation("agents_update")
    def update(
        self,
        project_id: str,
        agent_id: str,
        *,
        name: str | None = None,
        role: str | None = None,
        capabilities: builtins.list[str] | None = None,
    ) -> Agent:
        """Change an agent's name, role or capabilities."""
        body = compact(name=name, role=role, capabilities=capabilities)
        result: Agent = self._client.call("agents_update", path_params=_pa(project_id, agent_id), body=body)
        return result

    @operation("agents_delete")
    def delete(self, project_id: str, agent_id: str) -> None:
        """Delete an agent; its key stops working at once."""
        self._client.call("agents_delete", path_params=_pa(project_id, agent_id))

    @operation("agents_rotate_key")
    def rotate_key(self, project_id: str, agent_id: str) -> AgentWithKey:
        """Replace an agent's API key; the old key fails at once."""
        result: AgentWithKey = self._client.call("agents_rotate_key", path_params=_pa(project_id, agent_id))
        return result

    @operation("agents_clone")
    def clone(self, project_id: str, agent_id: str, *, target_project_id: str) -> AgentWithKey:
        """Copy an agent into another project of the same owner, with a new key."""
        result: AgentWithKey = self._client.call(
            "agents_clone", path_params=_pa(project_id, agent_id), body={"target_project_id": target_project_id}
        )
        return result


class AsyncProjectAgents(AsyncResource):
    """The agents of a project, managed by its owner (async)."""

    @operation("agents_create")
    async def create(
        self,
        project_id: str,
        *,
        slug: str,
        name: str,
        role: str | None = None,
        capabilities: builtins.list[str] | None = None,
    ) -> AgentWithKey:
        """Create an agent; its API key is in the answer, shown once."""
        body = compact(slug=slug, name=name, role=role, capabilities=capabilities)
        result: AgentWithKey = await self._client.call("agents_create", path_params=_pa(project_id), body=body)
        return result

    @operation("agents_list")
    def list(self, project_id: str, *, limit: int | None = None) -> AsyncPager[Agent]:
        """List a project's agents (``async for``)."""
        return self._pager("agents_list", path_params=_pa(project_id), limit=limit)

    @operation("agents_update")
    async def update(
        self,
        project_id: str,
        agent_id: str,
        *,
        name: str | None = None,
        role: str | None = None,
        capabilities: builtins.list[str] | None = None,
    ) -> Agent:
        """Change an agent's name, role or capabilities."""
        body = compact(name=name, role=role, capabilities=capabilities)
        result: Agent = await self._client.call("agents_update", path_params=_pa(project_id, agent_id), body=body)
        return result

    @operation("agents_delete")
    async def delete(self, project_id: str, agent_id: str) -> None:
        """Delete an agent; its key stops working at once."""
        await self._client.call("agents_delete", path_params=_pa(project_id, agent_id))

    @operation("agents_rotate_key")
    async def rotate_key(self, project_id: str, agent_id: str) -> AgentWithKey:
        """Replace an agent's API key; the old key fails at once."""
        result: AgentWithKey = await self._client.call("agents_rotate_key", path_params=_pa(project_id, agent_id))
        return result

    @operation("agents_clone")
    async def clone(self, project_id: str, agent_id: str, *, target_project_id: str) -> AgentWithKey:
        """Copy an agent into another project of the same owner, with a new key."""
        result: AgentWithKey = await self._client.call(
            "agents_clone", path_params=_pa(project_id, agent_id), body={"target_project_id": target_project_id}
        )
        return result
