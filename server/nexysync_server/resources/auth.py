"""Human accounts: register, login, refresh and logout."""

from __future__ import annotations

import asyncio
from typing import Any

import falcon
import falcon.asgi

from .. import views
from ..errors import Problem, unauthorized
from ..ids import utcnow
from ..security import make_access_token
from ..store import users
from ..store.documents import UserDoc
from . import Context, audit, client_ip


async def _tokens(ctx: Context, user: UserDoc, family_id: str | None = None) -> dict[str, Any]:
    settings = ctx.settings
    refresh = await ctx.store.tokens.issue(user["_id"], settings.refresh_token_ttl_days, family_id)
    return {
        "access_token": make_access_token(settings.jwt_secret, user["_id"], utcnow(), settings.access_token_ttl_s),
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_in": settings.access_token_ttl_s,
        "user": views.user(user),
    }


class Register:
    """``POST /v1/auth/register``."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Create an account and sign it in.

        A taken email is answered 409 (a person needs to know to sign in instead), after the
        same hashing work as a new one, and registrations per address are limited: probing
        which emails have accounts costs the same time either way and runs out fast.
        """
        ip = client_ip(req)
        await self._ctx.services.auth_limits.auth_request(ip)
        body = await self._ctx.body(req, "RegisterRequest")
        await self._ctx.services.auth_limits.registration(ip)
        # Hashing is deliberately slow; keep it off the event loop.
        password_hash = await asyncio.to_thread(self._ctx.hasher.hash, body["password"])
        try:
            user = await self._ctx.store.users.create(body["email"], body["name"], password_hash)
        except users.EmailTaken as exc:
            raise Problem(409, "EMAIL_TAKEN", "An account with this email exists; sign in instead.") from exc
        resp.status = falcon.HTTP_201
        resp.media = await _tokens(self._ctx, user)


class Login:
    """``POST /v1/auth/login``."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Check email and password and start a token family; upgrade an old password hash."""
        ip = client_ip(req)
        limits = self._ctx.services.auth_limits
        await limits.auth_request(ip)
        body = await self._ctx.body(req, "LoginRequest")
        email = body["email"]
        # Before the password is checked: a spent account refuses the right password too.
        await limits.check_login(email, ip)
        hasher = self._ctx.hasher
        user = await self._ctx.store.users.by_email(email)
        stored = user["password_hash"] if user else hasher.dummy_hash
        matches = await asyncio.to_thread(hasher.verify, body["password"], stored)
        if user is None or not matches:
            await limits.login_failed(email, ip)
            await audit(self._ctx, req, None, "auth.login", f"email:{email.lower()}", "refused")
            raise unauthorized("The email or the password is wrong.", "INVALID_CREDENTIALS")
        if hasher.needs_rehash(stored):
            # The password is at hand only now: store it at today's cost.
            fresh = await asyncio.to_thread(hasher.hash, body["password"])
            await self._ctx.store.users.replace_password_hash(user["_id"], stored, fresh)
        resp.media = await _tokens(self._ctx, user)


class Refresh:
    """``POST /v1/auth/refresh``."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Trade a live refresh token for a new pair of the same family."""
        await self._ctx.services.auth_limits.auth_request(client_ip(req))
        body = await self._ctx.body(req, "RefreshRequest")
        record, reused = await self._ctx.store.tokens.consume(body["refresh_token"])
        if reused:
            raise unauthorized(
                "This refresh token was already used; every session of its family is now signed out.",
                "REFRESH_TOKEN_REUSED",
            )
        if record is None:
            raise unauthorized("The refresh token is not valid or has expired; sign in again.", "INVALID_REFRESH_TOKEN")
        user = await self._ctx.store.users.get(record["user_id"])
        if user is None:
            raise unauthorized("The account no longer exists.", "INVALID_REFRESH_TOKEN")
        resp.media = await _tokens(self._ctx, user, record["family_id"])


class Logout:
    """``POST /v1/auth/logout``."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Revoke the token's family; answer the same whether or not the token was known."""
        await self._ctx.services.auth_limits.auth_request(client_ip(req))
        body = await self._ctx.body(req, "RefreshRequest")
        await self._ctx.store.tokens.revoke_family_of(body["refresh_token"])
        resp.status = falcon.HTTP_204
