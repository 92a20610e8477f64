"""The task board (agent key): add, list, read, claim, release, done, cancel."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi

from .. import caller, params, views
from . import Context, page_body

_STATES = ("open", "claimed", "done", "cancelled")


class Collection:
    """``/v1/tasks``."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """List the project's tasks, oldest first."""
        resp.media = await tasks_page(
            self._ctx, req, caller.agent(req)["project_id"], assignee=params.slug(req, "assignee")
        )

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Add a task (idempotent by client-made id)."""
        body = await self._ctx.body(req, "TaskCreate")
        task, created = await self._ctx.services.tasks.create(caller.agent(req), body)
        if created:
            resp.status = falcon.HTTP_201
            resp.location = f"/v1/tasks/{task['id']}"
        resp.media = views.task(task)


async def tasks_page(
    ctx: Context, req: falcon.asgi.Request, project_id: str, *, assignee: str | None
) -> dict[str, Any]:
    """Return a page of the project's tasks, with the ``state`` filter of the request."""
    docs, next_cursor = await ctx.services.tasks.list(
        project_id,
        state=params.choice(req, "state", _STATES),
        assignee=assignee,
        limit=params.limit(req),
        cursor=params.cursor(req),
    )
    return page_body([views.task(doc) for doc in docs], next_cursor)


class Item:
    """``/v1/tasks/{task_id}``."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: str) -> None:
        """Return one task."""
        params.path_id(task_id, "Task")
        resp.media = views.task(await self._ctx.services.tasks.get(caller.agent(req), task_id))


class Action:
    """``/v1/tasks/{task_id}/claim|release|done|cancel``: one per action.

    Args:
        ctx: The app's context.
        action: Which change this route makes.
    """

    auth = "agent"

    def __init__(self, ctx: Context, action: str) -> None:
        self._ctx = ctx
        self._action = action

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: str) -> None:
        """Make the change and answer the task as it now is."""
        params.path_id(task_id, "Task")
        agent = caller.agent(req)
        tasks = self._ctx.services.tasks
        if self._action == "claim":
            task = await tasks.claim(agent, task_id)
        elif self._action == "release":
            task = await tasks.release(agent, task_id, params.boolean(req, "force") is True)
        elif self._action == "done":
            body = await self._ctx.body(req, "TaskDone")
            task = await tasks.done(agent, task_id, body.get("text"))
        else:
            task = await tasks.cancel(agent, task_id)
        resp.media = views.task(task)
