"""Projects and their usage (human token)."""

from __future__ import annotations

import falcon
import falcon.asgi

from .. import caller, params, views
from ..errors import Problem, not_found
from ..realtime.hub import Hub
from ..store.documents import ProjectDoc
from . import Context, audit, page_body


async def owned_project(ctx: Context, req: falcon.asgi.Request, project_id: str) -> ProjectDoc:
    """Return the caller's project or raise 404 (another user's project looks missing)."""
    params.path_id(project_id, "Project")
    project = await ctx.store.projects.get_owned(project_id, caller.user_id(req))
    if project is None:
        raise not_found("Project", "PROJECT_NOT_FOUND")
    return project


class Collection:
    """``/v1/projects``."""

    auth = "human"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """List the caller's projects."""
        docs, next_cursor = await self._ctx.store.projects.list_owned(
            caller.user_id(req), params.limit(req), params.cursor(req)
        )
        resp.media = page_body([views.project(doc) for doc in docs], next_cursor)

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Create a project."""
        body = await self._ctx.body(req, "ProjectCreate")
        ttl = body.get("default_ttl_hours", self._ctx.settings.default_message_ttl_hours)
        user_id = caller.user_id(req)
        await self._ctx.services.quotas.reserve_project(user_id)
        try:
            project = await self._ctx.store.projects.create(user_id, body["name"], ttl)
        except BaseException:
            await self._ctx.services.quotas.release_project(user_id)
            raise
        await audit(self._ctx, req, project["_id"], "project.create", f"project:{project['_id']}")
        resp.status = falcon.HTTP_201
        resp.location = f"/v1/projects/{project['_id']}"
        resp.media = views.project(project)


class Item:
    """``/v1/projects/{project_id}``."""

    auth = "human"

    def __init__(self, ctx: Context, hub: Hub) -> None:
        self._ctx = ctx
        self._hub = hub

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str) -> None:
        """Get one project."""
        resp.media = views.project(await owned_project(self._ctx, req, project_id))

    async def on_patch(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str) -> None:
        """Rename a project or change its retention."""
        await owned_project(self._ctx, req, project_id)
        body = await self._ctx.body(req, "ProjectUpdate")
        project = await self._ctx.store.projects.update(project_id, caller.user_id(req), body)
        if project is None:
            raise not_found("Project", "PROJECT_NOT_FOUND")
        await audit(self._ctx, req, project_id, "project.update", f"project:{project_id}")
        resp.media = views.project(project)

    async def on_delete(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str) -> None:
        """Delete a project and everything in it, when asked with ``confirm=true``."""
        await owned_project(self._ctx, req, project_id)
        if params.boolean(req, "confirm") is not True:
            raise Problem(
                400, "CONFIRMATION_REQUIRED", "Deleting a project removes all its data; repeat with ?confirm=true."
            )
        # Every key of the project dies with it: end their streams first, in the log's order.
        await self._hub.revoke(project_id)
        await self._ctx.store.delete_project_data(project_id)
        await self._ctx.services.quotas.release_project(caller.user_id(req))
        # Kept outside the deleted project, so that the deletion itself stays on record.
        await audit(self._ctx, req, None, "project.delete", f"project:{project_id}")
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
        docs, next_cursor = await self._ctx.store.audit.list(project_id, params.limit(req), params.cursor(req))
        resp.media = page_body([views.audit_entry(doc) for doc in docs], next_cursor)
