"""Liveness, readiness and the contract itself."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import falcon.asgi

from ..errors import database_unavailable
from . import Context


class Live:
    """``GET /v1/health/live``: the process answers."""

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Answer ok."""
        resp.media = {"status": "ok"}


class Ready:
    """``GET /v1/health/ready``: the database answers too."""

    def __init__(self, ctx: Context, ping: Callable[[], Awaitable[bool]]) -> None:
        self._ctx = ctx
        self._ping = ping

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Answer ok only when MongoDB answers a ping (which fails within the server-selection timeout)."""
        if not await self._ping():
            raise database_unavailable("The database does not answer", self._ctx.settings.database_retry_after_s)
        resp.media = {"status": "ok"}


class Spec:
    """``GET /v1/openapi.yaml``: the contract this server implements."""

    def __init__(self, spec_text: str) -> None:
        self._text = spec_text

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Serve the OpenAPI document."""
        resp.content_type = "application/yaml"
        resp.text = self._text
