"""Leases on workspace paths (agent key): claim all or none, list, renew, release."""

from __future__ import annotations

import falcon
import falcon.asgi

from .. import caller, params, views
from . import Context


class Collection:
    """``/v1/leases``."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """List the project's live leases, or one agent's."""
        project_id = caller.agent(req)["project_id"]
        leases = await self._ctx.services.path_leases.live(project_id, params.slug(req, "agent"))
        resp.media = {"data": [views.lease(doc) for doc in leases]}

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Claim a lease per path, all or none."""
        body = await self._ctx.body(req, "LeaseClaim")
        granted = await self._ctx.services.path_leases.claim(
            caller.agent(req), body["leases"], body.get("exclusive", True), body["ttl_s"]
        )
        resp.status = falcon.HTTP_201
        resp.media = {"data": [views.lease(doc) for doc in granted]}


class Item:
    """``/v1/leases/{lease_id}``."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_delete(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, lease_id: str) -> None:
        """Release a lease (another agent's only with ``force=true``)."""
        params.path_id(lease_id, "Lease")
        force = params.boolean(req, "force") is True
        await self._ctx.services.path_leases.release(caller.agent(req), lease_id, force)
        resp.status = falcon.HTTP_204


class Renew:
    """``/v1/leases/{lease_id}/renew``."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, lease_id: str) -> None:
        """Extend one of the caller's live leases."""
        params.path_id(lease_id, "Lease")
        body = await self._ctx.body(req, "LeaseRenew")
        resp.media = views.lease(await self._ctx.services.path_leases.renew(caller.agent(req), lease_id, body["ttl_s"]))
