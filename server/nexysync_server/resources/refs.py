"""Code references (agent key): share, list, read and delete; storage counts toward the quota."""

from __future__ import annotations

import re
from typing import Any

import falcon
import falcon.asgi

from .. import caller, params, views
from . import Context, page_body

_LANGUAGE_RE = re.compile(r"^[a-z0-9+#.-]{1,32}$")


class Collection:
    """``/v1/refs``."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """List the references the caller may see, in storage order."""
        agent = caller.agent(req)
        resp.media = await refs_page(self._ctx, req, agent["project_id"], agent["_id"])

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Store a reference (idempotent by client-made id), counting its size toward the storage quota."""
        body = await self._ctx.body(req, "RefCreate")
        ref, created = await self._ctx.services.refs.share(caller.agent(req), body)
        if created:
            resp.status = falcon.HTTP_201
            resp.location = f"/v1/refs/{ref['id']}"
        resp.media = views.ref(ref)


class Item:
    """``/v1/refs/{ref_id}``."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, ref_id: str) -> None:
        """Return a reference the caller may see."""
        params.path_id(ref_id, "Reference")
        resp.media = views.ref(await self._ctx.services.refs.get(caller.agent(req), ref_id))

    async def on_delete(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, ref_id: str) -> None:
        """Delete a reference the caller shared and give its storage back."""
        params.path_id(ref_id, "Reference")
        await self._ctx.services.refs.delete(caller.agent(req), ref_id)
        resp.status = falcon.HTTP_204


async def refs_page(ctx: Context, req: falcon.asgi.Request, project_id: str, reader_id: str | None) -> dict[str, Any]:
    """Return a page of the references ``reader_id`` may see (all of them for ``None``, the owner)."""
    docs, next_cursor = await ctx.services.refs.page(
        project_id,
        reader_id,
        author_slug=params.slug(req, "from"),
        language=params.matching(req, "language", _LANGUAGE_RE, "1 to 32 of a-z, 0-9 and + # . -"),
        limit=params.limit(req),
        cursor=params.cursor(req),
    )
    return page_body([views.ref(doc) for doc in docs], next_cursor)
