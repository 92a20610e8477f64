"""Code references (agent key): share, list, read and delete; storage counts toward the quota."""

from __future__ import annotations

import re
from typing import Any

import falcon
import falcon.asgi

from .. import params
from ..errors import Problem, not_found
from ..realtime.hub import Hub
from ..store import refs
from ..store.idempotency import is_retry
from . import Context, page_body

_LANGUAGE_RE = re.compile(r"^[a-z0-9+#.-]{1,32}$")


def _conflict(ref_id: str) -> Problem:
    return Problem(409, "ID_CONFLICT", f"Reference {ref_id} was already shared with a different body.")


async def _visible_ref(ctx: Context, req: falcon.asgi.Request, ref_id: str) -> dict[str, Any]:
    """Return a reference the caller may see, or raise 404 (also for other projects' ids)."""
    params.path_id(ref_id, "Reference")
    agent = req.context.agent
    ref = await ctx.store.refs.get(agent["project_id"], ref_id)
    if ref is None or not refs.visible_to(ref, agent["_id"]):
        raise not_found("Reference", "REF_NOT_FOUND")
    return ref


class Collection:
    """``/v1/refs``."""

    auth = "agent"

    def __init__(self, ctx: Context, hub: Hub) -> None:
        self._ctx = ctx
        self._hub = hub

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """List the references the caller may see, in storage order."""
        agent = req.context.agent
        resp.media = await refs_page(self._ctx, req, agent["project_id"], agent["_id"])

    async def _announce(self, ref: dict[str, Any]) -> None:
        store = self._ctx.store
        event = await store.events.announce(store.refs.col, ref, "new_ref", refs.audience(ref), refs.routing(ref))
        if event is not None:
            self._hub.publish(event)

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Store a reference (idempotent by client-made id), counting its size toward the storage quota."""
        body = await self._ctx.body(req, "RefCreate")
        store = self._ctx.store
        author = req.context.agent
        project_id = author["project_id"]
        # A retry is answered before the quota is asked: repeating a stored share must not be refused.
        stored = await store.refs.get(project_id, body["id"])
        if stored is not None:
            if not is_retry(stored, author["_id"], refs.body_fingerprint(body)):
                raise _conflict(body["id"])
            await self._announce(stored)  # unless the first try did
            resp.media = refs.public(stored)
            return
        recipient_id = None
        if body.get("to") is not None:
            recipient_id = await store.agents.id_for_slug(project_id, body["to"])
            if recipient_id is None:
                raise not_found(f"Agent '{body['to']}'", "RECIPIENT_NOT_FOUND")
        try:
            ref, created = await self._ctx.quotas.store_within_storage(
                project_id,
                refs.stored_size(body),
                lambda: store.refs.insert(project_id=project_id, author=author, body=body, recipient_id=recipient_id),
            )
        except refs.IdConflict as exc:
            raise _conflict(body["id"]) from exc
        if not created:
            # Stored meanwhile by a concurrent try, whose server may have died before telling.
            await self._announce(ref)
            resp.media = refs.public(ref)
            return
        await self._announce(ref)
        resp.status = falcon.HTTP_201
        resp.location = f"/v1/refs/{ref['id']}"
        resp.media = refs.public(ref)


class Item:
    """``/v1/refs/{ref_id}``."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, ref_id: str) -> None:
        """Return a reference the caller may see."""
        resp.media = refs.public(await _visible_ref(self._ctx, req, ref_id))

    async def on_delete(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, ref_id: str) -> None:
        """Delete a reference the caller shared and give its storage back."""
        ref = await _visible_ref(self._ctx, req, ref_id)
        agent = req.context.agent
        if ref["from_id"] != agent["_id"]:
            raise Problem(403, "NOT_REF_AUTHOR", "Only the agent that shared a reference may delete it.")
        deleted = await self._ctx.store.refs.delete(agent["project_id"], ref_id, agent["_id"])
        if deleted is None:
            raise not_found("Reference", "REF_NOT_FOUND")  # deleted meanwhile, and its storage given back then
        await self._ctx.quotas.release_storage(agent["project_id"], deleted["size_bytes"])
        resp.status = falcon.HTTP_204


async def refs_page(ctx: Context, req: falcon.asgi.Request, project_id: str, reader_id: str | None) -> dict[str, Any]:
    """Return a page of the references ``reader_id`` may see (all of them for ``None``, the owner)."""
    docs, next_cursor = await ctx.store.refs.list(
        project_id,
        reader_id,
        author_slug=params.slug(req, "from"),
        language=params.matching(req, "language", _LANGUAGE_RE, "1 to 32 of a-z, 0-9 and + # . -"),
        limit=params.limit(req),
        cursor=params.cursor(req),
        budget=ctx.settings.read_budget_bytes,
    )
    return page_body([refs.public(doc) for doc in docs], next_cursor)
