"""HTTP resources: each reads a request, calls a service and renders the answer (:mod:`..views`).

A resource never touches a collection and holds no query and no use case. Refusals found in the
request itself (a malformed id, a bad header) are ``Problem`` errors; everything else comes from
the service as a domain error (:mod:`..services.errors`). Who asked reaches a service as the
caller's document or id (:mod:`..caller`), and as an :class:`~..services.audit.Actor` where the
use case is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import falcon.asgi

from .. import caller
from ..services import Services
from ..services.audit import Actor
from ..settings import Settings
from ..validation import SchemaValidator, read_json


@dataclass(slots=True)
class Context:
    """What every resource needs: settings, the services and the contract's validator (never the store)."""

    settings: Settings
    services: Services
    validator: SchemaValidator

    async def body(self, req: falcon.asgi.Request, schema_name: str) -> Any:
        """Read the JSON body and check it against the contract's schema ``schema_name``."""
        document = await read_json(req, self.settings.max_body_bytes)
        self.validator.check(schema_name, document)
        return document


def actor(req: falcon.asgi.Request) -> Actor:
    """Return who sent the request, as the audit log names them, and from where."""
    user_id = caller.user_id_or_none(req)
    agent = caller.agent_or_none(req)
    name = f"user:{user_id}" if user_id else f"agent:{agent['slug']}" if agent else "anonymous"
    return Actor(name, client_ip(req))


def client_ip(req: falcon.asgi.Request) -> str:
    """Return the client's address: the peer's, or X-Forwarded-For's when the peer is a trusted proxy.

    uvicorn rewrites the peer address from X-Forwarded-For only for the proxies listed in
    ``NEXYSYNC_FORWARDED_ALLOW_IPS`` (``serve`` and ``dev`` alike), so a client cannot pick its own.
    """
    return req.remote_addr or ""


def page_body(data: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    """Shape a list response: ``{"data": [...], "next_cursor": ...}``."""
    return {"data": data, "next_cursor": next_cursor}
