"""Bearer authentication as an ``httpx.Auth``: the session's token on every API request, refreshed once on 401."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass

import httpx

from nexysync._errors import error_from_response
from nexysync.crypto import KeyRing

__all__ = ["BearerAuth", "Session"]

#: Paths whose 401 is the answer itself: signing in, out, or refreshing cannot be cured by a refresh.
_NO_REFRESH_PATHS = frozenset({"/v1/auth/login", "/v1/auth/register", "/v1/auth/refresh", "/v1/auth/logout"})
_REFRESH_PATH = "/v1/auth/refresh"
#: Marks the refresh request the flow sends, so the flow reads its (small) body before going on.
_REFRESH_MARK = "nexysync.refresh"


@dataclass
class Session:
    """State shared by a client, its ``with_options`` copies and its raw view."""

    token: str | None
    refresh_token: str | None
    project_id: str | None
    ring: KeyRing | None
    #: The agent's slug: the author bound into what it encrypts (read from its API key, else ``GET /v1/me``).
    agent_slug: str | None = None
    #: Called with (access token, refresh token) whenever the session signs in, refreshes or out.
    on_tokens: Callable[[str | None, str | None], None] | None = None

    def adopt(self, access_token: str | None, refresh_token: str | None) -> None:
        """Take new tokens (or None after a logout) and tell ``on_tokens``."""
        self.token = access_token
        self.refresh_token = refresh_token
        if self.on_tokens is not None:
            self.on_tokens(access_token, refresh_token)


class BearerAuth(httpx.Auth):
    """Send the session's bearer token; on a 401, refresh a human session once and resend.

    One flow serves ``httpx.Client`` and ``httpx.AsyncClient``, and every caller of the transport
    (operations and the SSE stream alike), so a refresh is never skipped by a side door. A refresh
    the server refuses raises its typed error (``AuthenticationError``), not the first 401.

    Args:
        session: The session whose tokens it sends and renews.
        base_url: The API root, for the refresh request.
    """

    def __init__(self, session: Session, base_url: str) -> None:
        self._session = session
        self._refresh_url = base_url.rstrip("/") + _REFRESH_PATH

    def _may_refresh(self, request: httpx.Request) -> bool:
        return bool(self._session.refresh_token) and request.url.path not in _NO_REFRESH_PATHS

    def _sign(self, request: httpx.Request) -> httpx.Request:
        if self._session.token:
            request.headers["Authorization"] = f"Bearer {self._session.token}"
        return request

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Sign the request; after a 401, refresh the session and send it once more."""
        response = yield self._sign(request)
        if response.status_code != 401 or not self._may_refresh(request):
            return
        refresh = httpx.Request(
            "POST",
            self._refresh_url,
            json={"refresh_token": self._session.refresh_token},
            headers={"Accept": "application/json"},
            extensions={_REFRESH_MARK: True},
        )
        renewed = yield refresh
        if renewed.status_code != 200:
            raise error_from_response(renewed)
        tokens = renewed.json()
        self._session.adopt(tokens["access_token"], tokens["refresh_token"])
        yield self._sign(request)

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Run :meth:`auth_flow`, reading the refresh answer's body (never a stream's) before it goes on."""
        flow = self.auth_flow(request)
        sent = next(flow)
        while True:
            response = yield sent
            if sent.extensions.get(_REFRESH_MARK):
                response.read()
            try:
                sent = flow.send(response)
            except StopIteration:
                return

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Run :meth:`auth_flow` over an ``httpx.AsyncClient``, as :meth:`sync_auth_flow`."""
        flow = self.auth_flow(request)
        sent = next(flow)
        while True:
            response = yield sent
            if sent.extensions.get(_REFRESH_MARK):
                await response.aread()
            try:
                sent = flow.send(response)
            except StopIteration:
                return
