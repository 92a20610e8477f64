"""Cross-cutting request handling: request ids, authentication, last-seen tracking, lifespan."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any, Protocol

import falcon.asgi
import jwt

from . import caller
from .errors import database_unavailable, unauthorized
from .ids import iso, new_id, utcnow
from .security import API_KEY_RE, DEVICE_TOKEN_RE, AccessToken, SessionlessToken, api_key_prefix, read_access_token
from .services import Services
from .services.audit import Actor
from .settings import Settings
from .store import Store
from .store.documents import AgentDoc, DeviceDoc
from .store.indexing import Indexes

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Answered even while the database is unavailable.
_WITHOUT_DATABASE = frozenset({"/v1/health/live", "/v1/openapi.yaml", "/metrics"})


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

    A resource class sets ``auth = "human"`` (JWT access token), ``auth = "agent"`` (API key) or
    ``auth = "device"`` (a paired device's token); without it the route is public. A resource
    whose methods differ maps them: ``auth = {"DELETE": "human"}`` (the others are public). The
    caller lands in ``req.context.user``, ``req.context.agent`` or ``req.context.device``.

    Args:
        settings: Token secret and last-seen interval.
        store: Where users and agents are.
        services: The request limits (per agent, per user, refused API keys per client IP).
    """

    def __init__(self, settings: Settings, store: Store, services: Services) -> None:
        self._settings = settings
        self._store = store
        self._limiter = services.agent_limiter
        self._human_limiter = services.user_limiter
        self._auth_limits = services.auth_limits
        self._audit = services.audit
        self._sessions = services.sessions
        self._devices = services.devices
        # agent id -> monotonic time of the last last_seen_at write from this process; writing
        # once a minute keeps a write off the path of every request.
        self._last_touch: dict[str, float] = {}

    async def process_resource(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, resource: Any, params: dict[str, Any]
    ) -> None:
        """Authenticate the request if the resource asks for it."""
        scheme = getattr(resource, "auth", None)
        if isinstance(scheme, dict):
            scheme = scheme.get(req.method)
        if scheme is None:
            return
        token = _bearer(req)
        ip = req.remote_addr or ""
        audit = self._audit
        if scheme == "human":
            access = self._access_from(token)
            if not await self._sessions.is_live(access.session_id):
                raise unauthorized("This session was signed out; sign in again.", "SESSION_ENDED")
            caller.set_user(req, access)
            user_id = access.user_id

            async def user_refused() -> None:
                who = Actor(f"user:{user_id}", ip)
                await audit.record(who, None, "limit.user_requests", who.name, "RATE_LIMITED")

            await self._human_limiter.hit(f"user:{user_id}", on_first_refusal=user_refused)
        elif scheme == "device":
            caller.set_device(req, await self._device_from(req, token))
        else:
            agent = await self._agent_from(req, token)
            caller.set_agent(req, agent)
            who = Actor(f"agent:{agent['slug']}", ip)

            async def agent_refused() -> None:
                await audit.record(who, agent["project_id"], "limit.agent_requests", who.name, "RATE_LIMITED")

            await self._limiter.hit(agent["_id"], on_first_refusal=agent_refused)

    def _access_from(self, token: str) -> AccessToken:
        if API_KEY_RE.match(token):
            raise unauthorized(
                "This operation needs a user access token, not an agent API key.", "WRONG_CREDENTIAL_KIND"
            )
        try:
            return read_access_token(self._settings.jwt_secret, token)
        except jwt.ExpiredSignatureError as exc:
            raise unauthorized("The access token has expired; refresh it.", "TOKEN_EXPIRED") from exc
        except SessionlessToken as exc:
            # Signed before tokens named their session: a refresh gives one that does.
            raise unauthorized("The access token predates sessions; refresh it.", "TOKEN_EXPIRED") from exc
        except jwt.InvalidTokenError as exc:
            raise unauthorized("The access token is not valid.", "INVALID_TOKEN") from exc

    async def _device_from(self, req: falcon.asgi.Request, token: str) -> DeviceDoc:
        device = await self._devices.by_token(token) if DEVICE_TOKEN_RE.match(token) else None
        if device is None:
            # A refused device token counts as an auth request of its address, as an API key does.
            await self._auth_limits.auth_request(req.remote_addr or "")
            raise unauthorized("The device token is not valid (the device was revoked?).", "INVALID_DEVICE_TOKEN")
        return device

    async def _agent_from(self, req: falcon.asgi.Request, token: str) -> AgentDoc:
        if not API_KEY_RE.match(token):
            raise unauthorized("This operation needs an agent API key (nsync_<slug>_<40 hex>).", "INVALID_API_KEY")
        agent = await self._store.agents.by_key(token)
        if agent is None:
            ip = req.remote_addr or ""
            # Key guessing counts as auth requests of its address: past the limit it is a 429, and
            # the audit log gets no more entries than the limit allows.
            await self._auth_limits.auth_request(ip)
            # On record for operators: which key (its public prefix only) was refused, from where.
            target = f"key:{api_key_prefix(token)}"
            await self._audit.record(Actor("anonymous", ip), None, "auth.api_key", target, "refused")
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


class Component(Protocol):
    """A part of the process that runs in the background between start-up and shutdown."""

    def start(self) -> None:
        """Start (without waiting on the database: it may not answer yet)."""

    async def stop(self) -> None:
        """Stop, writing what is held in memory."""


class Lifespan:
    """Open the database, create its indexes and start the background components; stop them at shutdown.

    A process whose database is unavailable at start-up starts all the same and answers 503
    ``DATABASE_UNAVAILABLE`` (but for liveness and the contract) until its indexes are made.

    Args:
        settings: How long a refused client should wait.
        store: The database, closed last.
        components: Started in this order once the indexes are under way, stopped in the reverse.
    """

    def __init__(self, settings: Settings, store: Store, components: Sequence[Component]) -> None:
        self._retry_after_s = settings.database_retry_after_s
        self._store = store
        self._components = list(components)
        self._indexes = Indexes(store.ensure_indexes)

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Refuse what needs the database until this process has made its indexes."""
        if not self._indexes.ready and req.path not in _WITHOUT_DATABASE:
            raise database_unavailable("This server has not reached its database since it started", self._retry_after_s)

    async def process_startup(self, scope: dict[str, Any], event: dict[str, Any]) -> None:
        """Create every index before the first request, then start the background components."""
        await self._indexes.start()
        for component in self._components:
            component.start()

    async def process_shutdown(self, scope: dict[str, Any], event: dict[str, Any]) -> None:
        """Stop the background components, write what is held in memory, close the database."""
        await self._indexes.stop()
        for component in reversed(self._components):
            await component.stop()
        await self._store.close()
