"""The key-value store (agent key): ETags are versions; If-Match / If-None-Match make writes conditional."""

from __future__ import annotations

import re
from typing import Any

import falcon
import falcon.asgi

from .. import caller, params
from ..errors import Problem, not_found
from ..store.documents import KvDoc
from ..views import kv_entry
from . import Context, page_body

_KEY_RE = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")
# Quotes are what RFC 9110 asks for; a bare version is accepted too, as clients often send one.
_ETAG_RE = re.compile(r'^"?([0-9]{1,15})"?$')


def _key(value: str | None, what: str = "Entry") -> str:
    if value is None or not _KEY_RE.match(value):
        raise not_found(what, "KV_NOT_FOUND")
    return value


def _if_match(req: falcon.asgi.Request) -> tuple[int | None, bool]:
    """Read If-Match: a quoted version, or ``*`` for "must exist"."""
    raw = req.get_header("If-Match")
    if raw is None:
        return None, False
    if raw.strip() == "*":
        return None, True
    match = _ETAG_RE.match(raw.strip())
    if match is None:
        raise Problem(400, "INVALID_PARAMETER", 'If-Match must be an ETag from this API (e.g. "3") or *.')
    return int(match.group(1)), False


def _etag(entry: KvDoc) -> str:
    return f'"{entry["version"]}"'


_WRITE_KEY_RE = re.compile(r"^[!-~]{1,128}$")


class Collection:
    """``GET /v1/kv``."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """List entries in key order."""
        resp.media = await entries_page(self._ctx, req, caller.agent(req)["project_id"])


async def entries_page(ctx: Context, req: falcon.asgi.Request, project_id: str) -> dict[str, Any]:
    """Return a page of a project's entries in key order, as ``?prefix=&limit=&cursor=`` ask."""
    prefix = params.matching(req, "prefix", _KEY_RE, "the start of a key")
    docs, next_cursor = await ctx.services.kv.page(project_id, prefix, params.limit(req), params.cursor(req, _KEY_RE))
    return page_body([kv_entry(doc) for doc in docs], next_cursor)


class Item:
    """``/v1/kv/{key}``."""

    auth = "agent"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, key: str) -> None:
        """Return an entry with its ETag."""
        entry = await self._ctx.services.kv.get(caller.agent(req)["project_id"], _key(key))
        resp.set_header("ETag", _etag(entry))
        resp.media = kv_entry(entry)

    async def on_put(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, key: str) -> None:
        """Create or replace an entry, if its preconditions hold; announce it."""
        _key(key)
        version, must_exist = _if_match(req)
        none_match = req.get_header("If-None-Match")
        if none_match is not None and none_match.strip() != "*":
            raise Problem(400, "INVALID_PARAMETER", "If-None-Match supports only *.")
        write_key = req.get_header("Idempotency-Key")
        if write_key is not None and not _WRITE_KEY_RE.match(write_key):
            raise Problem(400, "INVALID_PARAMETER", "Idempotency-Key must be 1 to 128 printable ASCII characters.")
        body = await self._ctx.body(req, "KvPut")
        entry, created = await self._ctx.services.kv.put(
            caller.agent(req),
            key,
            body["value"],
            if_version=version,
            if_exists=must_exist,
            if_absent=none_match is not None,
            write_key=write_key,
        )
        if created:
            resp.status = falcon.HTTP_201
            resp.location = f"/v1/kv/{key}"
        resp.set_header("ETag", _etag(entry))
        resp.media = kv_entry(entry)

    async def on_delete(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, key: str) -> None:
        """Delete an entry, if its precondition holds; announce it."""
        _key(key)
        version, _ = _if_match(req)
        await self._ctx.services.kv.delete(caller.agent(req), key, version)
        resp.status = falcon.HTTP_204
