"""``client.auth``: human accounts. A successful register, login or refresh signs the client in."""

from __future__ import annotations

from nexysync.resources._base import AsyncResource, SyncResource, operation
from nexysync_generated.models import AuthTokens

__all__ = ["AsyncAuth", "Auth"]


def _refresh_body(given: str | None, session_token: str | None) -> dict[str, str]:
    token = given or session_token
    if not token:
        raise ValueError("no refresh token: log in first or pass one")
    return {"refresh_token": token}


class Auth(SyncResource):
    """Human sign-up and sessions; the client then sends the access token and refreshes it on 401."""

    @operation("auth_register")
    def register(self, *, email: str, name: str, password: str, tos_accepted: bool = True) -> AuthTokens:
        """Create an account (accepting the terms of service) and sign the client in."""
        body = {"email": email, "name": name, "password": password, "tos_accepted": tos_accepted}
        result: AuthTokens = self._client.call("auth_register", body=body)
        return result

    @operation("auth_login")
    def login(self, *, email: str, password: str) -> AuthTokens:
        """Sign the client in with email and password."""
        result: AuthTokens = self._client.call("auth_login", body={"email": email, "password": password})
        return result

    @operation("auth_refresh")
    def refresh(self, refresh_token: str | None = None) -> AuthTokens:
        """Trade the refresh token (the session's by default) for new tokens; the old one stops working."""
        body = _refresh_body(refresh_token, self._client._session.refresh_token)
        result: AuthTokens = self._client.call("auth_refresh", body=body)
        return result

    @operation("auth_logout")
    def logout(self, refresh_token: str | None = None) -> None:
        """Revoke the refresh token (the session's by default) and sign the client out."""
        self._client.call("auth_logout", body=_refresh_body(refresh_token, self._client._session.refresh_token))


class AsyncAuth(AsyncResource):
    """Human sign-up and sessions (async)."""

    @operation("auth_register")
    async def register(self, *, email: str, name: str, password: str, tos_accepted: bool = True) -> AuthTokens:
        """Create an account (accepting the terms of service) and sign the client in."""
        body = {"email": email, "name": name, "password": password, "tos_accepted": tos_accepted}
        result: AuthTokens = await self._client.call("auth_register", body=body)
        return result

    @operation("auth_login")
    async def login(self, *, email: str, password: str) -> AuthTokens:
        """Sign the client in with email and password."""
        result: AuthTokens = await self._client.call("auth_login", body={"email": email, "password": password})
        return result

    @operation("auth_refresh")
    async def refresh(self, refresh_token: str | None = None) -> AuthTokens:
        """Trade the refresh token (the session's by default) for new tokens."""
        body = _refresh_body(refresh_token, self._client._session.refresh_token)
        result: AuthTokens = await self._client.call("auth_refresh", body=body)
        return result

    @operation("auth_logout")
    async def logout(self, refresh_token: str | None = None) -> None:
        """Revoke the refresh token (the session's by default) and sign the client out."""
        await self._client.call("auth_logout", body=_refresh_body(refresh_token, self._client._session.refresh_token))
