"""The calling agent and its project's directory (agent key)."""

from __future__ import annotations

import falcon.asgi

from .. import caller, params, views
from . import Context, page_body


class Me:
    """``/v1/me``."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Describe the calling agent."""
        agent = caller.agent(req)
        resp.media = {"agent": views.agent(agent), "project_id": agent["project_id"]}

    async def on_patch(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Change the calling agent's name, role or capabilities."""
        body = await self._ctx.body(req, "AgentUpdate")
        me = caller.agent(req)
        # Not audited: the agent changes only itself.
        agent = await self._ctx.services.agents.update(None, me["project_id"], me["_id"], body)
        resp.media = {"agent": views.agent(agent), "project_id": agent["project_id"]}


class Directory:
    """``/v1/agents``: who else is in the project."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """List the project's agents with when each was last seen."""
        project_id = caller.agent(req)["project_id"]
        docs, next_cursor = await self._ctx.services.agents.page(project_id, params.limit(req), params.cursor(req))
        resp.media = page_body([views.agent(doc) for doc in docs], next_cursor)


class Quota:
    """``/v1/quota``: the caller's project usage against its limits."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Report the same counters as the owner's /usage."""
        resp.media = await self._ctx.services.quotas.usage(caller.agent(req)["project_id"])
