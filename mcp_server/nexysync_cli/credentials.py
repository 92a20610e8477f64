"""The signed-in human's session: stored tokens, refreshed when they expire, and the owner client.

Tokens live in ``<config dir>/credentials.json`` (mode 0600), one session per API URL, and the
URL used last is the default for the next command. The owner client is built with the access
token alone, never the refresh token: the SDK would otherwise rotate the refresh token on a 401
by itself, and the new one (which replaces the stored one, now revoked) would be lost when the
process ends. This module refreshes instead, and saves the new tokens at once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from nexysync import AuthenticationError, Client
from nexysync_cli.errors import CliError
from nexysync_cli.files import config_dir, read_json, write_json
from nexysync_generated.models import AuthTokens

__all__ = [
    "DEFAULT_API_URL",
    "ENV_API_URL",
    "CredentialStore",
    "OwnerSession",
    "StoredSession",
    "resolve_api_url",
]

#: Where ``nexysync-server dev`` listens by default.
DEFAULT_API_URL = "http://127.0.0.1:8080"
ENV_API_URL = "NEXYSYNC_API_URL"
CREDENTIALS_FILE = "credentials.json"
#: Refresh this long before the access token's announced expiry, so a slow request is not refused.
EXPIRY_MARGIN_S = 30.0

T = TypeVar("T")


@dataclass
class StoredSession:
    """One signed-in session, as saved.

    Attributes:
        api_url: The API it belongs to.
        email: The account's email.
        name: The account's display name.
        user_id: The account's id.
        access_token: The short-lived JWT.
        refresh_token: The rotating refresh token.
        expires_at: Unix time at which the access token expires.
    """

    api_url: str
    email: str
    name: str
    user_id: str
    access_token: str
    refresh_token: str
    expires_at: float

    @classmethod
    def from_tokens(cls, api_url: str, tokens: AuthTokens, now: float | None = None) -> StoredSession:
        """Build a session from the API's answer to register, login or refresh."""
        issued = time.time() if now is None else now
        return cls(
            api_url=api_url,
            email=tokens.user.email,
            name=tokens.user.name,
            user_id=tokens.user.id,
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            expires_at=issued + tokens.expires_in,
        )

    def expired(self, now: float | None = None) -> bool:
        """Tell whether the access token has expired (or is about to)."""
        return (time.time() if now is None else now) >= self.expires_at - EXPIRY_MARGIN_S


def normalize_url(url: str) -> str:
    """Return the API root without a trailing slash or ``/v1``, so one server has one session.

    ``nexysync-server dev`` prints the API as ``http://host:port/v1``; the SDK adds ``/v1`` itself.
    """
    return url.strip().rstrip("/").removesuffix("/v1")


class CredentialStore:
    """The sessions saved in the config directory.

    Args:
        directory: The config directory; :func:`~nexysync_cli.files.config_dir` by default.
    """

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or config_dir()
        self.path = self.directory / CREDENTIALS_FILE

    def _data(self) -> dict[str, Any]:
        data = read_json(self.path) or {}
        sessions = data.get("sessions")
        if not isinstance(sessions, dict):
            data["sessions"] = {}
        return data

    def current_url(self) -> str | None:
        """Return the API URL of the last sign-in, if any."""
        current = self._data().get("current")
        return current if isinstance(current, str) else None

    def load(self, api_url: str) -> StoredSession | None:
        """Return the saved session for ``api_url``, or None."""
        raw = self._data()["sessions"].get(normalize_url(api_url))
        if not isinstance(raw, dict):
            return None
        try:
            return StoredSession(**{name: raw[name] for name in StoredSession.__dataclass_fields__})
        except (KeyError, TypeError) as exc:
            raise CliError(f"{self.path} holds a damaged session; run `nexysync login` again", code="BAD_FILE") from exc

    def save(self, session: StoredSession) -> None:
        """Save ``session`` (replacing the one for its URL) and make its URL the current one."""
        data = self._data()
        session.api_url = normalize_url(session.api_url)
        data["sessions"][session.api_url] = asdict(session)
        data["current"] = session.api_url
        write_json(self.path, data)

    def delete(self, api_url: str) -> bool:
        """Forget the session for ``api_url``; return whether there was one."""
        data = self._data()
        url = normalize_url(api_url)
        # "current" stays: the next `nexysync login` goes to the same API without --api-url.
        existed = data["sessions"].pop(url, None) is not None
        if existed:
            write_json(self.path, data)
        return existed


def resolve_api_url(given: str | None, store: CredentialStore, environ: Mapping[str, str] | None = None) -> str:
    """Pick the API URL: ``--api-url``, else ``$NEXYSYNC_API_URL``, else the last sign-in's, else the dev default."""
    env = os.environ if environ is None else environ
    url = given or env.get(ENV_API_URL) or store.current_url() or DEFAULT_API_URL
    return normalize_url(url)


class OwnerSession:
    """A signed-in human's client for one command, refreshing and saving tokens as needed.

    Args:
        store: Where the session is saved.
        session: The saved session.
        client_factory: Builds a :class:`~nexysync.Client` from ``base_url`` and ``api_key``
            (tests pass one bound to a mock transport).
    """

    def __init__(
        self,
        store: CredentialStore,
        session: StoredSession,
        client_factory: Callable[..., Client] = Client,
    ) -> None:
        self.store = store
        self.session = session
        self._factory = client_factory
        self._client: Client | None = None

    @classmethod
    def open(cls, store: CredentialStore, api_url: str, client_factory: Callable[..., Client] = Client) -> OwnerSession:
        """Return the session for ``api_url``.

        Raises:
            CliError: nobody is signed in to that API on this machine.
        """
        session = store.load(api_url)
        if session is None:
            others = store.current_url()
            hint = f" (you are signed in to {others}; pass --api-url {others})" if others else ""
            raise CliError(
                f"not signed in to {api_url}: run `nexysync login` or `nexysync register`{hint}",
                code="NOT_SIGNED_IN",
            )
        return cls(store, session, client_factory)

    @property
    def api_url(self) -> str:
        """The API this session belongs to."""
        return self.session.api_url

    def refresh(self) -> None:
        """Trade the refresh token for new tokens and save them.

        Raises:
            CliError: the refresh token was refused (expired, revoked, or used elsewhere).
        """
        with self._factory(base_url=self.api_url) as anonymous:
            try:
                tokens = anonymous.auth.refresh(self.session.refresh_token)
            except AuthenticationError as exc:
                raise CliError(
                    f"your session with {self.api_url} has expired: run `nexysync login`", code="SESSION_EXPIRED"
                ) from exc
        self.session = StoredSession.from_tokens(self.api_url, tokens)
        self.store.save(self.session)
        self.close()

    def client(self) -> Client:
        """Return the owner client, refreshing first when the access token has expired."""
        if self.session.expired():
            self.refresh()
        if self._client is None:
            self._client = self._factory(base_url=self.api_url, api_key=self.session.access_token)
        return self._client

    def call(self, action: Callable[[Client], T]) -> T:
        """Run ``action`` with the owner client; on a 401, refresh once and run it again.

        The access token can be refused before its announced expiry (a restarted server with a
        new secret, a skewed clock), so a 401 is worth exactly one refresh.
        """
        try:
            return action(self.client())
        except AuthenticationError:
            self.refresh()
            return action(self.client())

    def close(self) -> None:
        """Close the owner client's connections."""
        if self._client is not None:
            self._client.close()
            self._client = None
