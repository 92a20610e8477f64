"""Human accounts: register, login, refresh and logout."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi

from .. import caller, views
from ..services.accounts import Session
from . import Context, actor, client_ip


def _session(session: Session) -> dict[str, Any]:
    return {
        "access_token": session.access_token,
        "refresh_token": session.refresh_token,
        "token_type": "Bearer",
        "expires_in": session.expires_in,
        "user": views.user(session.user),
    }


class Register:
    """``POST /v1/auth/register``."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Create an account and sign it in (a taken email is a 409, after the same work)."""
        who = actor(req)
        # Counted before the body is read: a flood of bad bodies runs out as fast as good ones.
        await self._ctx.services.auth_limits.auth_request(who.ip)
        body = await self._ctx.body(req, "RegisterRequest")
        session = await self._ctx.services.accounts.register(who, body["email"], body["name"], body["password"])
        resp.status = falcon.HTTP_201
        resp.media = _session(session)


class Login:
    """``POST /v1/auth/login``."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Check email and password and start a token family."""
        who = actor(req)
        await self._ctx.services.auth_limits.auth_request(who.ip)
        body = await self._ctx.body(req, "LoginRequest")
        resp.media = _session(await self._ctx.services.accounts.login(who, body["email"], body["password"]))


class Refresh:
    """``POST /v1/auth/refresh``."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Trade a live refresh token for a new pair of the same family."""
        await self._ctx.services.auth_limits.auth_request(client_ip(req))
        body = await self._ctx.body(req, "RefreshRequest")
        resp.media = _session(await self._ctx.services.accounts.refresh(body["refresh_token"]))


class Logout:
    """``POST /v1/auth/logout``."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Revoke the token's family; answer the same whether or not the token was known."""
        await self._ctx.services.auth_limits.auth_request(client_ip(req))
        body = await self._ctx.body(req, "RefreshRequest")
        await self._ctx.services.accounts.logout(body["refresh_token"])
        resp.status = falcon.HTTP_204


class LogoutAll:
    """``POST /v1/auth/logout-all``: sign out every session of the account, this one too."""

    auth = "human"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """End every session; their access tokens and owner streams stop within seconds."""
        await self._ctx.services.accounts.logout_all(actor(req), caller.user_id(req))
        resp.status = falcon.HTTP_204


class Password:
    """``POST /v1/auth/password``: change the password (the current one required)."""

    auth = "human"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Set the new password, end every session and sign this client in again."""
        who = actor(req)
        body = await self._ctx.body(req, "PasswordChange")
        accounts = self._ctx.services.accounts
        session = await accounts.change_password(
            who, caller.user_id(req), body["current_password"], body["new_password"]
        )
        resp.media = _session(session)


class DeleteAccount:
    """``POST /v1/auth/delete-account``: delete the account and everything it owns (the password required)."""

    auth = "human"

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Delete every project of the account with its data, then the account and its sessions."""
        body = await self._ctx.body(req, "AccountDeletion")
        await self._ctx.services.accounts.delete(actor(req), caller.user_id(req), body["password"])
        resp.status = falcon.HTTP_204
