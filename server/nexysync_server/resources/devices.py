"""Devices: listed, registered, revoked and sealed to by the owner (human token); read by the device itself."""

from __future__ import annotations

import falcon
import falcon.asgi

from .. import caller, params, views
from . import Context, actor


class Collection:
    """``/v1/projects/{project_id}/devices``."""

    auth = "human"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str) -> None:
        """List the project's devices."""
        params.path_id(project_id, "Project")
        devices = await self._ctx.services.devices.of_project(caller.user_id(req), project_id)
        resp.media = {"data": [views.device(doc) for doc in devices]}

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str) -> None:
        """Register a device; the answer carries its token, once."""
        params.path_id(project_id, "Project")
        body = await self._ctx.body(req, "DeviceCreate")
        device, token = await self._ctx.services.devices.register(actor(req), caller.user_id(req), project_id, body)
        resp.status = falcon.HTTP_201
        resp.media = {"device": views.device(device), "token": token}


class Item:
    """``/v1/projects/{project_id}/devices/{device_id}``."""

    auth = "human"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_delete(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str, device_id: str
    ) -> None:
        """Revoke a device."""
        params.path_id(project_id, "Project")
        params.path_id(device_id, "Device")
        await self._ctx.services.devices.revoke(actor(req), caller.user_id(req), project_id, device_id)
        resp.status = falcon.HTTP_204


class Keys:
    """``/v1/projects/{project_id}/device-keys``."""

    auth = "human"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_put(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str) -> None:
        """Store the key ring sealed to each device."""
        params.path_id(project_id, "Project")
        body = await self._ctx.body(req, "DeviceKeysSeal")
        stored = await self._ctx.services.devices.seal(actor(req), caller.user_id(req), project_id, body["boxes"])
        resp.media = {"device_ids": stored}


class Own:
    """``/v1/device/keys`` (device token)."""

    auth = "device"

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Answer the calling device's sealed key ring."""
        resp.media = views.device_keys(caller.device(req))
