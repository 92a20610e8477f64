"""Agents of a project and their keys (human token)."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi

from .. import caller, params, views
from ..store.documents import AgentDoc
from . import Context, actor, page_body
from .projects import owned_project


def _with_key(agent: AgentDoc, api_key: str) -> dict[str, Any]:
    return {"agent": views.agent(agent), "api_key": api_key}


class Collection:
    """``/v1/projects/{project_id}/agents``."""

    auth = "human"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str) -> None:
        """List a project's agents."""
        await owned_project(self._ctx, req, project_id)
        docs, next_cursor = await self._ctx.services.agents.page(project_id, params.limit(req), params.cursor(req))
        resp.media = page_body([views.agent(doc) for doc in docs], next_cursor)

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str) -> None:
        """Create an agent; its API key is in this response and nowhere else."""
        await owned_project(self._ctx, req, project_id)
        body = await self._ctx.body(req, "AgentCreate")
        agent, api_key = await self._ctx.services.agents.create(actor(req), project_id, body)
        resp.status = falcon.HTTP_201
        resp.location = f"/v1/projects/{project_id}/agents/{agent['_id']}"
        resp.media = _with_key(agent, api_key)


class Item:
    """``/v1/projects/{project_id}/agents/{agent_id}``."""

    auth = "human"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_patch(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str, agent_id: str
    ) -> None:
        """Change an agent's name, role or capabilities."""
        await owned_project(self._ctx, req, project_id)
        params.path_id(agent_id, "Agent")
        body = await self._ctx.body(req, "AgentUpdate")
        resp.media = views.agent(await self._ctx.services.agents.update(actor(req), project_id, agent_id, body))

    async def on_delete(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str, agent_id: str
    ) -> None:
        """Delete an agent; its key stops working at once."""
        await owned_project(self._ctx, req, project_id)
        params.path_id(agent_id, "Agent")
        await self._ctx.services.agents.delete(actor(req), project_id, agent_id)
        resp.status = falcon.HTTP_204


class RotateKey:
    """``POST /v1/projects/{project_id}/agents/{agent_id}/rotate-key``."""

    auth = "human"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_post(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str, agent_id: str
    ) -> None:
        """Give the agent a new key; the old one fails from now on."""
        await owned_project(self._ctx, req, project_id)
        params.path_id(agent_id, "Agent")
        agent, api_key = await self._ctx.services.agents.rotate_key(actor(req), project_id, agent_id)
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
        target_id = body["target_project_id"]
        agent, api_key = await self._ctx.services.agents.clone(
            actor(req), caller.user_id(req), project_id, agent_id, target_id
        )
        resp.status = falcon.HTTP_201
        resp.location = f"/v1/projects/{target_id}/agents/{agent['_id']}"
        resp.media = _with_key(agent, api_key)
