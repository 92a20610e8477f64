"""Cross-cutting request handling: request ids, authentication, last-seen tracking, lifespan."""

from __future__ import annotations

import re
import time
from typing import Any

import falcon.asgi
import jwt

from .errors import database_unavailable, unauthorized
from .ids import iso, new_id, utcnow
from .ratelimit import RateLimiter
from .realtime.hub import Hub
from .realtime.presence import Presence
from .realtime.watcher import Watcher
from .security import API_KEY_RE, api_key_prefix, read_access_token
from .settings import Settings
from .store import Store
from .store.indexing import Indexes

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Answered even while the database is unavailable.
_WITHOUT_DATABASE = frozenset({"/v1/health/live", "/v1/openapi.yaml"})


class RequestId:
    """Give every request an id (the client's ``X-Request-Id`` if sane) and echo it back."""

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Pick the request id before anything can fail."""
        incoming = req.get_header("X-Request-Id")
        req.context.request_id = incoming if incoming and _REQUEST_ID_RE.match(incoming) else new_id()

    async def process_response(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, resource: object, req_succeeded: bool
    ) -> None:
        """Send the request id back, on errors too."""
        resp.set_header("X-Request-Id", req.context.request_id)


class Authentication:
    """Resolve the caller from ``Authorization: Bearer`` for resources that declare ``auth``.

    A resource class sets ``auth = "human"`` (JWT access token) or ``auth = "agent"`` (API key);
    without it the route is public. The caller lands in ``req.context.user`` or
    ``req.context.agent``.

    Args:
        settings: Token secret and last-seen interval.
        store: Where users and agents are.
    """

    def __init__(self, settings: Settings, store: Store, limiter: RateLimiter) -> None:
        self._settings = settings
        self._store = store
        self._limiter = limiter
        # agent id -> monotonic time of the last last_seen_at write from this process; writing
        # once a minute keeps a write off the path of every request.
        self._last_touch: dict[str, float] = {}

    async def process_resource(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, resource: Any, params: dict[str, Any]
    ) -> None:
        """Authenticate the request if the resource asks for it."""
        scheme = getattr(resource, "auth", None)
        if scheme is None:
            return
        token = _bearer(req)
        if scheme == "human":
            req.context.user_id = self._user_from(token)
        else:
            req.context.agent = await self._agent_from(req, token)
            await self._limiter.hit(req.context.agent["_id"])

    def _user_from(self, token: str) -> str:
        if API_KEY_RE.match(token):
            raise unauthorized(
                "This operation needs a user access token, not an agent API key.", "WRONG_CREDENTIAL_KIND"
            )
        try:
            return read_access_token(self._settings.jwt_secret, token)
        except jwt.ExpiredSignatureError as exc:
            raise unauthorized("The access token has expired; refresh it.", "TOKEN_EXPIRED") from exc
        except jwt.InvalidTokenError as exc:
            raise unauthorized("The access token is not valid.", "INVALID_TOKEN") from exc

    async def _agent_from(self, req: falcon.asgi.Request, token: str) -> dict[str, Any]:
        if not API_KEY_RE.match(token):
            raise unauthorized("This operation needs an agent API key (nsync_<slug>_<40 hex>).", "INVALID_API_KEY")
        agent = await self._store.agents.by_key(token)
        if agent is None:
            # On record for operators: which key (its public prefix only) was refused, from where.
            await self._store.audit.record(
                None, "anonymous", "auth.api_key", f"key:{api_key_prefix(token)}", "refused", req.remote_addr or ""
            )
            raise unauthorized("The API key is not valid (deleted, rotated or mistyped).", "INVALID_API_KEY")
        now = time.monotonic()
        if now - self._last_touch.get(agent["_id"], -1e9) >= self._settings.last_seen_interval_s:
            self._last_touch[agent["_id"]] = now
            seen = iso(utcnow())
            await self._store.agents.touch(agent["_id"], seen)
            agent["last_seen_at"] = seen
        return agent


def _bearer(req: falcon.asgi.Request) -> str:
    header = req.get_header("Authorization")
    if not header:
        raise unauthorized("Send credentials as 'Authorization: Bearer <token>'.", "MISSING_CREDENTIALS")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthorized("Send credentials as 'Authorization: Bearer <token>'.", "MISSING_CREDENTIALS")
    return token


class Lifespan:
    """Open the database, create its indexes and start the background tasks; stop them at shutdown.

    A process whose database is unavailable at start-up starts all the same and answers 503
    ``DATABASE_UNAVAILABLE`` (but for liveness and the contract) until its indexes are made.
    """

    def __init__(
        self, settings: Settings, store: Store, hub: Hub, watcher: Watcher, presence: Presence, limiter: RateLimiter
    ) -> None:
        self._retry_after_s = settings.database_retry_after_s
        self._store = store
        self._hub = hub
        self._watcher = watcher
        self._presence = presence
        self._limiter = limiter
        self._indexes = Indexes(self._ensure_indexes)

    async def _ensure_indexes(self) -> None:
        await self._store.ensure_indexes()
        await self._limiter.ensure_indexes()

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Refuse what needs the database until this process has made its indexes."""
        if not self._indexes.ready and req.path not in _WITHOUT_DATABASE:
            raise database_unavailable("This server has not reached its database since it started", self._retry_after_s)

    async def process_startup(self, scope: dict[str, Any], event: dict[str, Any]) -> None:
        """Create every index before the first request, then start the background tasks."""
        await self._indexes.start()
        self._store.usage.start()
        self._limiter.start()
        self._hub.start()
        self._watcher.start()
        self._presence.start()

    async def process_shutdown(self, scope: dict[str, Any], event: dict[str, Any]) -> None:
        """Stop the background tasks, write what is held in memory, close the database."""
        await self._indexes.stop()
        await self._presence.stop()
        await self._watcher.stop()
        await self._hub.stop()
        await self._store.usage.stop()
        await self._limiter.stop()
        await self._store.close()
