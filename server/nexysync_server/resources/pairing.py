"""Pairing slots: opened and finished by the owner (human token), read and accepted by anyone with the number."""

from __future__ import annotations

from typing import ClassVar

import falcon
import falcon.asgi

from .. import caller, params, views
from ..errors import Problem
from . import Context, actor

_NUMBER_CHARS = frozenset("0123456789")


def _number(value: str) -> str:
    """Check a slot number from the path (1 to 9999, no leading zero)."""
    if not (0 < len(value) <= 4 and set(value) <= _NUMBER_CHARS and value[0] != "0"):
        raise Problem(400, "BAD_PAIRING_NUMBER", "A pairing slot number is 1 to 9999.")
    return value


class Collection:
    """``/v1/pairing``."""

    auth = "human"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Open a slot with the offering side's SPAKE2 message."""
        body = await self._ctx.body(req, "PairingCreate")
        slot = await self._ctx.services.pairing.open(
            actor(req), caller.user_id(req), body["project_id"], body["msg"], body.get("ttl_s", 300)
        )
        resp.status = falcon.HTTP_201
        resp.media = views.pairing_slot(slot)


class Item:
    """``/v1/pairing/{number}``: read by anyone, burned by its owner."""

    auth: ClassVar[dict[str, str]] = {"DELETE": "human"}

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, number: str) -> None:
        """Read a slot, waiting up to ``wait`` seconds for it to leave ``state``."""
        wait = params.integer(req, "wait", 0, minimum=0, maximum=25)
        known = params.choice(req, "state", ("waiting", "accepted", "done", "burned", "expired"))
        slot = await self._ctx.services.pairing.read(actor(req).ip, _number(number), wait, known)
        resp.media = views.pairing_slot(slot)

    async def on_delete(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, number: str) -> None:
        """Burn a slot of the caller's."""
        await self._ctx.services.pairing.burn(actor(req), caller.user_id(req), _number(number))
        resp.status = falcon.HTTP_204


class Accept:
    """``/v1/pairing/{number}/accept`` (no credentials)."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, number: str) -> None:
        """Take a waiting slot."""
        _number(number)
        body = await self._ctx.body(req, "PairingAccept")
        resp.media = views.pairing_slot(await self._ctx.services.pairing.accept(actor(req), number, body))


class Finish:
    """``/v1/pairing/{number}/finish`` (owner)."""

    auth = "human"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, number: str) -> None:
        """Finish an accepted slot with the offering side's confirmation and the sealed bundle."""
        _number(number)
        body = await self._ctx.body(req, "PairingFinish")
        slot = await self._ctx.services.pairing.finish(
            actor(req), caller.user_id(req), number, body["confirm"], body["sealed"]
        )
        resp.media = views.pairing_slot(slot)
