"""Agents of a project and their keys (human token)."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi

from .. import caller, params, views
from ..errors import Problem, not_found
from ..realtime.hub import Hub
from ..store import agents
from ..store.documents import AgentDoc
from . import Context, audit, page_body
from .projects import owned_project


def _with_key(agent: AgentDoc, api_key: str) -> dict[str, Any]:
    return {"agent": views.agent(agent), "api_key": api_key}


def _slug_taken(slug: str) -> Problem:
    return Problem(409, "SLUG_TAKEN", f"The project already has an agent '{slug}'.")


class Collection:
    """``/v1/projects/{project_id}/agents``."""

    auth = "human"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str) -> None:
        """List a project's agents."""
        await owned_project(self._ctx, req, project_id)
        docs, next_cursor = await self._ctx.store.agents.list(project_id, params.limit(req), params.cursor(req))
        resp.media = page_body([views.agent(doc) for doc in docs], next_cursor)

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str) -> None:
        """Create an agent; its API key is in this response and nowhere else."""
        await owned_project(self._ctx, req, project_id)
        body = await self._ctx.body(req, "AgentCreate")
        quotas = self._ctx.services.quotas
        await quotas.reserve_agent(project_id)
        try:
            agent, api_key = await self._ctx.store.agents.create(
                project_id, body["slug"], body["name"], body.get("role", ""), body.get("capabilities", [])
            )
        except agents.SlugTaken as exc:
            await quotas.release_agent(project_id)
            raise _slug_taken(body["slug"]) from exc
        except BaseException:
            await quotas.release_agent(project_id)
            raise
        await audit(self._ctx, req, project_id, "agent.create", f"agent:{agent['slug']}")
        resp.status = falcon.HTTP_201
        resp.location = f"/v1/projects/{project_id}/agents/{agent['_id']}"
        resp.media = _with_key(agent, api_key)


class Item:
    """``/v1/projects/{project_id}/agents/{agent_id}``."""

    auth = "human"

    def __init__(self, ctx: Context, hub: Hub) -> None:
        self._ctx = ctx
        self._hub = hub

    async def on_patch(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str, agent_id: str
    ) -> None:
        """Change an agent's name, role or capabilities."""
        await owned_project(self._ctx, req, project_id)
        params.path_id(agent_id, "Agent")
        body = await self._ctx.body(req, "AgentUpdate")
        agent = await self._ctx.store.agents.update(project_id, agent_id, body)
        if agent is None:
            raise not_found("Agent", "AGENT_NOT_FOUND")
        await audit(self._ctx, req, project_id, "agent.update", f"agent:{agent['slug']}")
        resp.media = views.agent(agent)

    async def on_delete(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str, agent_id: str
    ) -> None:
        """Delete an agent; its key stops working at once."""
        await owned_project(self._ctx, req, project_id)
        params.path_id(agent_id, "Agent")
        deleted = await self._ctx.store.agents.delete(project_id, agent_id)
        if deleted is None:
            raise not_found("Agent", "AGENT_NOT_FOUND")
        await self._ctx.services.quotas.release_agent(project_id)
        await self._hub.revoke(project_id, agent_id, deleted["key_hash"])
        await audit(self._ctx, req, project_id, "agent.delete", f"agent:{agent_id}")
        resp.status = falcon.HTTP_204


class RotateKey:
    """``POST /v1/projects/{project_id}/agents/{agent_id}/rotate-key``."""

    auth = "human"

    def __init__(self, ctx: Context, hub: Hub) -> None:
        self._ctx = ctx
        self._hub = hub

    async def on_post(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str, agent_id: str
    ) -> None:
        """Give the agent a new key; the old one fails from now on."""
        await owned_project(self._ctx, req, project_id)
        params.path_id(agent_id, "Agent")
        rotated = await self._ctx.store.agents.rotate_key(project_id, agent_id)
        if rotated is None:
            raise not_found("Agent", "AGENT_NOT_FOUND")
        agent, api_key, old_hash = rotated
        await self._hub.revoke(project_id, agent_id, old_hash)
        await audit(self._ctx, req, project_id, "agent.rotate_key", f"agent:{agent['slug']}")
        resp.media = _with_key(agent, api_key)


class Clone:
    """``POST /v1/projects/{project_id}/agents/{agent_id}/clone``."""

    auth = "human"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_post(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str, agent_id: str
    ) -> None:
        """Create the same agent in another project of the same owner, with its own key."""
        await owned_project(self._ctx, req, project_id)
        params.path_id(agent_id, "Agent")
        body = await self._ctx.body(req, "AgentClone")
        source = await self._ctx.store.agents.get(project_id, agent_id)
        if source is None:
            raise not_found("Agent", "AGENT_NOT_FOUND")
        target_id = body["target_project_id"]
        if await self._ctx.store.projects.get_owned(target_id, caller.user_id(req)) is None:
            # 403, not 404: the path named an agent that exists; what is refused is the target.
            raise Problem(403, "TARGET_PROJECT_FORBIDDEN", "Agents can be cloned only into another project you own.")
        quotas = self._ctx.services.quotas
        await quotas.reserve_agent(target_id)
        try:
            agent, api_key = await self._ctx.store.agents.create(
                target_id, source["slug"], source["name"], source["role"], source["capabilities"]
            )
        except agents.SlugTaken as exc:
            await quotas.release_agent(target_id)
            raise _slug_taken(source["slug"]) from exc
        except BaseException:
            await quotas.release_agent(target_id)
            raise
        target = f"agent:{agent['slug']}"
        await audit(self._ctx, req, project_id, "agent.clone", f"{target} -> project:{target_id}")
        await audit(self._ctx, req, target_id, "agent.clone", f"{target} <- project:{project_id}")
        resp.status = falcon.HTTP_201
        resp.location = f"/v1/projects/{target_id}/agents/{agent['_id']}"
        resp.media = _with_key(agent, api_key)
