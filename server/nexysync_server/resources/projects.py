"""Projects and their usage (human token)."""

from __future__ import annotations

import falcon
import falcon.asgi

from .. import caller, params, views
from ..store.documents import ProjectDoc
from . import Context, actor, page_body


async def owned_project(ctx: Context, req: falcon.asgi.Request, project_id: str) -> ProjectDoc:
    """Return the caller's project, after checking the id's form (another user's project looks missing)."""
    params.path_id(project_id, "Project")
    return await ctx.services.projects.owned(caller.user_id(req), project_id)


class Collection:
    """``/v1/projects``."""

    auth = "human"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """List the caller's projects."""
        projects = self._ctx.services.projects
        docs, next_cursor = await projects.page(caller.user_id(req), params.limit(req), params.cursor(req))
        resp.media = page_body([views.project(doc) for doc in docs], next_cursor)

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Create a project."""
        body = await self._ctx.body(req, "ProjectCreate")
        project = await self._ctx.services.projects.create(actor(req), caller.user_id(req), body)
        resp.status = falcon.HTTP_201
        resp.location = f"/v1/projects/{project['_id']}"
        resp.media = views.project(project)


class Item:
    """``/v1/projects/{project_id}``."""

    auth = "human"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str) -> None:
        """Get one project."""
        resp.media = views.project(await owned_project(self._ctx, req, project_id))

    async def on_patch(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str) -> None:
        """Rename a project or change its retention."""
        await owned_project(self._ctx, req, project_id)
        body = await self._ctx.body(req, "ProjectUpdate")
        project = await self._ctx.services.projects.update(actor(req), caller.user_id(req), project_id, body)
        resp.media = views.project(project)

    async def on_delete(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str) -> None:
        """Delete a project and everything in it, when asked with ``confirm=true``."""
        project = await owned_project(self._ctx, req, project_id)
        confirmed = params.boolean(req, "confirm") is True
        await self._ctx.services.projects.delete(actor(req), project, confirmed=confirmed)
        resp.status = falcon.HTTP_204


class Usage:
    """``/v1/projects/{project_id}/usage``."""

    auth = "human"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str) -> None:
        """Report today's messages, storage and agents against their limits."""
        await owned_project(self._ctx, req, project_id)
        resp.media = await self._ctx.services.quotas.usage(project_id)


class Audit:
    """``/v1/projects/{project_id}/audit``: who changed what in the project."""

    auth = "human"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str) -> None:
        """Page through the project's audit log, oldest first."""
        await owned_project(self._ctx, req, project_id)
        docs, next_cursor = await self._ctx.services.audit.page(project_id, params.limit(req), params.cursor(req))
        resp.media = page_body([views.audit_entry(doc) for doc in docs], next_cursor)
