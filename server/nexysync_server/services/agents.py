"""Agents of a project and their API keys: created within the project's quota, revoked at once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ..ids import iso, utcnow
from ..realtime.hub import Hub
from ..store import Store
from ..store.agents import SlugTaken
from ..store.documents import AgentDoc
from .audit import Actor, AuditTrail
from .errors import Conflict, Forbidden, NotFound
from .quotas import Quotas

# A project has at most a few dozen agents (the agent quota); list them all.
_MAX_AGENTS = 1000


def _slug_taken(slug: str) -> Conflict:
    return Conflict("SLUG_TAKEN", f"The project already has an agent '{slug}'.")


def _not_found() -> NotFound:
    return NotFound("Agent", "AGENT_NOT_FOUND")


class Agents:
    """Create, change, clone and delete agents, and rotate their keys.

    The caller has checked that the project is the user's (:meth:`.projects.Projects.owned`).

    Args:
        store: The database.
        hub: Ends the streams of a key that stops working.
        quotas: Agents per project.
        audit: Where changes are recorded.
        presence_window_s: How recent a request must be for its agent to count as online.
    """

    def __init__(self, store: Store, hub: Hub, quotas: Quotas, audit: AuditTrail, presence_window_s: float) -> None:
        self._store = store
        self._hub = hub
        self._quotas = quotas
        self._audit = audit
        self._window_s = presence_window_s

    async def online(self, project_id: str) -> list[dict[str, Any]]:
        """Return the project's online agents: those holding a stream, then those seen recently through requests."""
        store = self._store
        streaming = await store.presence.streaming(project_id)
        horizon = iso(utcnow() - timedelta(seconds=self._window_s))
        online = []
        agents, _ = await store.agents.list(project_id, _MAX_AGENTS, None)
        for agent in agents:
            last_seen = agent.get("last_seen_at")
            if agent["slug"] in streaming:
                via_stream = last_seen or streaming[agent["slug"]]
                online.append({"agent": agent["slug"], "via": "stream", "last_seen_at": via_stream})
            elif last_seen and last_seen >= horizon:
                online.append({"agent": agent["slug"], "via": "request", "last_seen_at": last_seen})
        return online

    async def page(self, project_id: str, limit: int, cursor: str | None) -> tuple[list[AgentDoc], str | None]:
        """Page through a project's agents, oldest first."""
        return await self._store.agents.list(project_id, limit, cursor)

    async def create(self, actor: Actor, project_id: str, body: dict[str, Any]) -> tuple[AgentDoc, str]:
        """Create an agent (an ``AgentCreate``); return it with its API key, which exists nowhere else.

        Raises:
            QuotaExceeded: the project has as many agents as allowed.
            Conflict: the slug is taken (SLUG_TAKEN).
        """
        agent, api_key = await self._create(
            project_id, body["slug"], body["name"], body.get("role", ""), body.get("capabilities", [])
        )
        await self._audit.record(actor, project_id, "agent.create", f"agent:{agent['slug']}")
        return agent, api_key

    async def update(self, actor: Actor | None, project_id: str, agent_id: str, changes: dict[str, Any]) -> AgentDoc:
        """Change an agent's name, role or capabilities (an ``AgentUpdate``); an agent changing itself is not audited.

        Raises:
            NotFound: no such agent in the project.
        """
        agent = await self._store.agents.update(project_id, agent_id, changes)
        if agent is None:
            raise _not_found()
        if actor is not None:
            await self._audit.record(actor, project_id, "agent.update", f"agent:{agent['slug']}")
        return agent

    async def delete(self, actor: Actor, project_id: str, agent_id: str) -> None:
        """Delete an agent; its key stops working and its streams end at once.

        Raises:
            NotFound: no such agent in the project.
        """
        deleted = await self._store.agents.delete(project_id, agent_id)
        if deleted is None:
            raise _not_found()
        await self._quotas.release_agent(project_id)
        await self._hub.revoke(project_id, agent_id, deleted["key_hash"])
        await self._audit.record(actor, project_id, "agent.delete", f"agent:{agent_id}")

    async def rotate_key(self, actor: Actor, project_id: str, agent_id: str) -> tuple[AgentDoc, str]:
        """Give an agent a new key; the old one fails from now on. Return the agent and its new key.

        Raises:
            NotFound: no such agent in the project (or deleted or rotated by someone else meanwhile).
        """
        rotated = await self._store.agents.rotate_key(project_id, agent_id)
        if rotated is None:
            raise _not_found()
        agent, api_key, old_hash = rotated
        await self._hub.revoke(project_id, agent_id, old_hash)
        await self._audit.record(actor, project_id, "agent.rotate_key", f"agent:{agent['slug']}")
        return agent, api_key

    async def clone(
        self, actor: Actor, user_id: str, project_id: str, agent_id: str, target_id: str
    ) -> tuple[AgentDoc, str]:
        """Create the same agent in another project of the same user, with its own key.

        Raises:
            NotFound: no such agent in the project.
            Forbidden: the target is not the user's project (TARGET_PROJECT_FORBIDDEN): the path
                named an agent that exists, what is refused is the target.
            QuotaExceeded: the target has as many agents as allowed.
            Conflict: the slug is taken in the target (SLUG_TAKEN).
        """
        source = await self._store.agents.get(project_id, agent_id)
        if source is None:
            raise _not_found()
        if await self._store.projects.get_owned(target_id, user_id) is None:
            raise Forbidden("TARGET_PROJECT_FORBIDDEN", "Agents can be cloned only into another project you own.")
        agent, api_key = await self._create(
            target_id, source["slug"], source["name"], source["role"], source["capabilities"]
        )
        target = f"agent:{agent['slug']}"
        await self._audit.record(actor, project_id, "agent.clone", f"{target} -> project:{target_id}")
        await self._audit.record(actor, target_id, "agent.clone", f"{target} <- project:{project_id}")
        return agent, api_key

    async def _create(
        self, project_id: str, slug: str, name: str, role: str, capabilities: list[str]
    ) -> tuple[AgentDoc, str]:
        await self._quotas.reserve_agent(project_id)
        try:
            return await self._store.agents.create(project_id, slug, name, role, capabilities)
        except SlugTaken as exc:
            await self._quotas.release_agent(project_id)
            raise _slug_taken(slug) from exc
        except BaseException:
            await self._quotas.release_agent(project_id)
            raise
