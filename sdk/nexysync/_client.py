"""``Client`` and ``AsyncClient``: configuration, the generic operation call, and the resources."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

import httpx
from pydantic import BaseModel

from nexysync import resources
from nexysync._config import ENV_API_KEY, ENV_API_URL, ENV_ENC_KEY, load_key_file
from nexysync._errors import KeyFileError
from nexysync._operations import Cipher, PreparedCall, needs_cipher, parse_response, prepare_call
from nexysync._stream import AsyncStream, Stream
from nexysync._transport import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    AsyncTransport,
    SyncTransport,
    TimeoutTypes,
    VerifyTypes,
)
from nexysync.crypto import KeyRing, decode_key
from nexysync_generated import OPERATIONS

if TYPE_CHECKING:
    from nexysync._raw import AsyncClientWithRawResponse, ClientWithRawResponse

__all__ = ["AsyncClient", "Client", "RawResponse"]

_NO_REFRESH = frozenset({"auth_login", "auth_register", "auth_refresh", "auth_logout"})
#: Operations whose success signs the session in or out (also through ``with_raw_response``).
_TOKEN_OPERATIONS = _NO_REFRESH


@dataclass
class _Session:
    """State shared by a client and its ``with_options`` copies."""

    token: str | None
    refresh_token: str | None
    project_id: str | None
    ring: KeyRing | None
    #: Called with (access token, refresh token) whenever the session signs in, refreshes or out.
    on_tokens: Callable[[str | None, str | None], None] | None = None


def _env_ring() -> KeyRing | None:
    encoded = os.environ.get(ENV_ENC_KEY)
    if not encoded:
        return None
    try:
        return KeyRing([decode_key(encoded)])
    except ValueError as exc:
        raise KeyFileError(f"{ENV_ENC_KEY}: {exc}") from exc


def _base_url(base_url: str | None) -> str:
    url = base_url or os.environ.get(ENV_API_URL)
    if not url:
        raise KeyFileError(f"no base_url given and {ENV_API_URL} is not set")
    return url


@dataclass(frozen=True)
class RawResponse:
    """The unparsed answer to one operation call, from ``call_raw``.

    Attributes:
        http_response: The ``httpx.Response`` (its body already read).
        call: The prepared call it answers (operation, path, encrypted body).
    """

    http_response: httpx.Response
    call: PreparedCall
    _cipher: Cipher | None

    @property
    def status_code(self) -> int:
        """The HTTP status."""
        return self.http_response.status_code

    @property
    def headers(self) -> httpx.Headers:
        """The response headers (``ETag``, ``Location``, ``RateLimit``, ...)."""
        return self.http_response.headers

    @property
    def request_id(self) -> str | None:
        """The server's ``X-Request-Id``."""
        request_id: str | None = self.http_response.headers.get("X-Request-Id")
        return request_id

    def parse(self) -> Any:
        """Return the body parsed into its model and decrypted, as ``call`` would.

        Raises:
            APIStatusError: (a subclass of it) when the status is not a success of the operation.
            DecryptionError: an envelope failed to decrypt.
        """
        return parse_response(self.call, self.http_response, self._cipher)


class _ClientCore:
    """What both clients share: the session and the request preparation."""

    _session: _Session

    @property
    def key_ring(self) -> KeyRing | None:
        """The project key ring, or None for a client that only manages (no content)."""
        return self._session.ring

    def _prepare(
        self,
        operation_id: str,
        project_id: str | None,
        path_params: Mapping[str, Any] | None,
        query: Mapping[str, Any] | None,
        body: Mapping[str, Any] | BaseModel | None,
        headers: Mapping[str, Any] | None,
        idempotency_key: str | None,
    ) -> tuple[PreparedCall, Cipher | None]:
        cipher = None
        if project_id is not None and self._session.ring is not None:
            cipher = Cipher(self._session.ring, project_id)
        call = prepare_call(
            operation_id,
            path_params=path_params,
            query=query,
            body=body,
            headers=headers,
            cipher=cipher,
            idempotency_key=idempotency_key,
        )
        return call, cipher

    def _needs_project(self, operation_id: str) -> bool:
        if operation_id not in OPERATIONS:
            raise KeyError(f"unknown operation {operation_id!r}")
        if not needs_cipher(operation_id):
            return False
        if self._session.ring is None:
            raise KeyFileError(f"{operation_id} handles encrypted content: give the client an encryption key")
        return self._session.project_id is None

    @property
    def refresh_token(self) -> str | None:
        """The human session's current refresh token (it changes at every refresh), or None."""
        return self._session.refresh_token

    def _adopt_tokens(self, operation_id: str, result: Any) -> None:
        session = self._session
        if operation_id in {"auth_login", "auth_register", "auth_refresh"}:
            session.token = result.access_token
            session.refresh_token = result.refresh_token
        elif operation_id == "auth_logout":
            session.token = None
            session.refresh_token = None
        else:
            return
        if session.on_tokens is not None:
            session.on_tokens(session.token, session.refresh_token)


class Client(_ClientCore):
    """Synchronous NexySync client.

    Agents authenticate with an API key and, to read and write content, hold the project key
    ring; humans log in with ``client.auth.login(...)`` and manage projects and agents.

    Args:
        base_url: The API root; ``NEXYSYNC_API_URL`` by default.
        api_key: An agent API key or a human access token; ``NEXYSYNC_API_KEY`` by default.
        key_ring: The project keys; built from ``NEXYSYNC_ENC_KEY`` by default, when set.
        project_id: The agent's project; fetched once from ``GET /v1/me`` when needed and not given.
        timeout: Default timeout per request, in seconds.
        max_retries: Retries on connection errors, 408, 409, 429 and 5xx.
        http_client: Your own ``httpx.Client``; the SDK never closes it.
        verify: How the SDK's own HTTP client checks the server's certificate: True (the system's
            trust store; ``SSL_CERT_FILE`` names another bundle), the path of a CA bundle (PEM, e.g.
            a private CA in front of HAProxy), an ``ssl.SSLContext``, or False. Unused with ``http_client``.
        sleep: How to wait between retries (for tests).
        default_headers: Extra headers on every request.
        refresh_token: A human session's saved refresh token: with it, an expired access token
            (``api_key``) is renewed on the first 401 and the call retried once.
        on_tokens: Called with ``(access_token, refresh_token)`` after every login, register,
            refresh (including the automatic one) and logout, so a tool can save the session.

    Example:
        >>> with Client.from_key_file() as client:  # doctest: +SKIP
        ...     client.messages.send(to="reviewer", topic="PR #4", payload="Please review.")
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        key_ring: KeyRing | None = None,
        project_id: str | None = None,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.Client | None = None,
        verify: VerifyTypes = True,
        sleep: Callable[[float], None] = time.sleep,
        default_headers: Mapping[str, str] | None = None,
        refresh_token: str | None = None,
        on_tokens: Callable[[str | None, str | None], None] | None = None,
    ) -> None:
        self._session = _Session(
            token=api_key or os.environ.get(ENV_API_KEY),
            refresh_token=refresh_token,
            project_id=project_id,
            ring=key_ring if key_ring is not None else _env_ring(),
            on_tokens=on_tokens,
        )
        self._transport = SyncTransport(
            base_url=_base_url(base_url),
            timeout=timeout,
            max_retries=max_retries,
            http_client=http_client,
            verify=verify,
            sleep=sleep,
            headers=default_headers,
        )
        self._attach_resources()

    def _attach_resources(self) -> None:
        self.messages = resources.Messages(self)
        self.me = resources.MeResource(self)
        self.agents = resources.Agents(self)
        self.events = resources.Events(self)
        self.presence = resources.PresenceResource(self)
        self.kv = resources.Kv(self)
        self.files = resources.Files(self)
        self.refs = resources.Refs(self)
        self.quota = resources.Quota(self)
        self.auth = resources.Auth(self)
        self.projects = resources.Projects(self)
        self.project_agents = resources.ProjectAgents(self)

    @classmethod
    def from_key_file(cls, path: str | os.PathLike[str] | None = None, **kwargs: Any) -> Client:
        """Build a client from ``.nexysync/key`` (searched upward from the cwd) and ``NEXYSYNC_*`` env vars.

        Args:
            path: An explicit key file.
            **kwargs: Other :class:`Client` arguments (timeout, max_retries, http_client, ...).

        Raises:
            KeyFileError: no usable key file or env vars.
        """
        config = load_key_file(path)
        return cls(
            base_url=config.api_url,
            api_key=config.api_key,
            key_ring=config.key_ring(),
            project_id=config.project_id,
            **kwargs,
        )

    @property
    def base_url(self) -> str:
        """The API root."""
        return self._transport.base_url

    @property
    def last_request_id(self) -> str | None:
        """The ``X-Request-Id`` of the last response, for support requests."""
        return self._transport.last_request_id

    @property
    def project_id(self) -> str:
        """The agent's project id (fetched once from ``GET /v1/me`` when not configured)."""
        if self._session.project_id is None:
            # Client.call, not self.me.get(): through with_raw_response that answers a RawResponse.
            project_id: str = Client.call(self, "me_get").project_id
            self._session.project_id = project_id
        return self._session.project_id

    def with_options(self, *, max_retries: int | None = None, timeout: TimeoutTypes = None) -> Client:
        """Return a client that shares this one's connection and session, with other retry or timeout settings."""
        other = object.__new__(Client)
        other._session = self._session
        other._transport = self._transport.copy(max_retries=max_retries, timeout=timeout)
        other._transport._owns_client = False
        other._attach_resources()
        return other

    @property
    def with_raw_response(self) -> ClientWithRawResponse:
        """This client, with every resource method returning a :class:`RawResponse` instead.

        ``client.with_raw_response.messages.send(...)`` sends exactly what ``client.messages.send``
        sends and returns the unchecked response: ``status_code``, ``headers``, ``request_id``, and
        ``.parse()`` for the decrypted model the normal call returns (it raises the typed
        ``APIStatusError`` when the status is an error). A list method's pager gives the raw first
        page with ``.first_page()``. It shares this client's connection, session and options.

        Typing: each method of the view takes the parameters of the resource method it stands for
        (they are carried over from its signature, not copied) and is typed to return
        :class:`RawResponse`, or a pager with only ``first_page()`` for a list. Methods that are not
        one operation (``messages.wait``, ``files.upload``, ``files.download``) are not in the type.

        Example:
            >>> raw = client.with_raw_response.messages.send(to="bob", topic="t", payload="hi")  # doctest: +SKIP
            >>> raw.headers["RateLimit"], raw.parse().payload  # doctest: +SKIP
        """
        view = object.__new__(_RawResponseClient)
        view._session = self._session
        view._transport = self._transport
        view._attach_resources()
        # The view's type describes this client (see nexysync._raw); it is not built at run time.
        return cast("ClientWithRawResponse", view)

    def call_raw(
        self,
        operation_id: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | BaseModel | None = None,
        headers: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> RawResponse:
        """Send one operation (plaintext in, encrypted on the wire); return the response unchecked.

        Takes the arguments of :meth:`call`. Useful for headers (``ETag``, ``RateLimit``) and to
        see the wire form; ``.parse()`` gives what :meth:`call` returns.
        """
        if self._needs_project(operation_id):
            _ = self.project_id
        call, cipher = self._prepare(
            operation_id, self._session.project_id, path_params, query, body, headers, idempotency_key
        )
        refreshed = False
        while True:
            self._transport.token = self._session.token
            response = self._transport.request(
                call.operation.method,
                call.path,
                params=call.params,
                json=call.json,
                idempotency_key=call.idempotency_key,
                headers=call.headers,
            )
            if (
                response.status_code == 401
                and not refreshed
                and self._session.refresh_token
                and operation_id not in _NO_REFRESH
            ):
                refreshed = True
                response.close()
                # Client.call, not self.call: a raw view must still raise when the refresh fails.
                Client.call(self, "auth_refresh", body={"refresh_token": self._session.refresh_token})
                continue
            response.close()
            return RawResponse(response, call, cipher)

    def call(
        self,
        operation_id: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | BaseModel | None = None,
        headers: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Call any operation of the API by its operationId.

        Args:
            operation_id: A key of ``nexysync_generated.OPERATIONS``.
            path_params: The path template's parameters.
            query: Query parameters (None values are left out).
            body: The request body with plaintext in encrypted fields; a write of an encrypted
                record gets a client-made ULID ``id`` unless it has one, which is also its
                idempotency key.
            headers: Header parameters of the operation (``If-Match``, ...).
            idempotency_key: For other writes, a key of your own to reuse across your retries.

        Returns:
            The response parsed into its generated model (decrypted), or None without a body.

        Raises:
            APIError: a subclass for each failure (see ``nexysync._errors``).
            DecryptionError: an envelope in the response failed to decrypt.
        """
        raw = self.call_raw(
            operation_id,
            path_params=path_params,
            query=query,
            body=body,
            headers=headers,
            idempotency_key=idempotency_key,
        )
        result = raw.parse()
        self._adopt_tokens(operation_id, result)
        return result

    def stream(self, *, last_event_id: int | str | None = None, **options: Any) -> Stream:
        """Follow the caller's events live; reconnects, resumes and falls back to polling by itself.

        Args:
            last_event_id: Resume after this ``seq`` (a saved ``stream.last_event_id``); from now
                by default.
            **options: :class:`~nexysync._stream.Stream` settings: ``watchdog_s`` (60),
                ``poll_interval_s`` (2), ``fallback_after`` (3), ``stream_retry_s`` (30), ``sleep``,
                ``clock``, ``rand``.

        Returns:
            An iterator of :class:`~nexysync.StreamEvent`; ``event.message()`` fetches and decrypts
            a ``new_message``'s message. Close it (or use ``with``) to stop.

        Example:
            >>> with client.stream() as events:  # doctest: +SKIP
            ...     for event in events:
            ...         if event.type == "new_message":
            ...             print(event.message().payload)
        """
        return Stream(self, last_event_id=last_event_id, **options)

    def close(self) -> None:
        """Close the connection pool (unless you brought your own ``httpx.Client``)."""
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncClient(_ClientCore):
    """Asynchronous NexySync client, with the same surface as :class:`Client` (awaitable methods).

    Args:
        base_url: The API root; ``NEXYSYNC_API_URL`` by default.
        api_key: An agent API key or a human access token; ``NEXYSYNC_API_KEY`` by default.
        key_ring: The project keys; built from ``NEXYSYNC_ENC_KEY`` by default, when set.
        project_id: The agent's project; fetched once from ``GET /v1/me`` when needed and not given.
        timeout: Default timeout per request, in seconds.
        max_retries: Retries on connection errors, 408, 409, 429 and 5xx.
        http_client: Your own ``httpx.AsyncClient``; the SDK never closes it.
        verify: TLS certificate check, as for :class:`Client`.
        sleep: How to wait between retries (for tests).
        default_headers: Extra headers on every request.
        refresh_token: A human session's saved refresh token (see :class:`Client`).
        on_tokens: Called with ``(access_token, refresh_token)`` whenever they change (see :class:`Client`).
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        key_ring: KeyRing | None = None,
        project_id: str | None = None,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.AsyncClient | None = None,
        verify: VerifyTypes = True,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        default_headers: Mapping[str, str] | None = None,
        refresh_token: str | None = None,
        on_tokens: Callable[[str | None, str | None], None] | None = None,
    ) -> None:
        self._session = _Session(
            token=api_key or os.environ.get(ENV_API_KEY),
            refresh_token=refresh_token,
            project_id=project_id,
            ring=key_ring if key_ring is not None else _env_ring(),
            on_tokens=on_tokens,
        )
        self._transport = AsyncTransport(
            base_url=_base_url(base_url),
            timeout=timeout,
            max_retries=max_retries,
            http_client=http_client,
            verify=verify,
            sleep=sleep,
            headers=default_headers,
        )
        self._attach_resources()

    def _attach_resources(self) -> None:
        self.messages = resources.AsyncMessages(self)
        self.me = resources.AsyncMeResource(self)
        self.agents = resources.AsyncAgents(self)
        self.events = resources.AsyncEvents(self)
        self.presence = resources.AsyncPresenceResource(self)
        self.kv = resources.AsyncKv(self)
        self.files = resources.AsyncFiles(self)
        self.refs = resources.AsyncRefs(self)
        self.quota = resources.AsyncQuota(self)
        self.auth = resources.AsyncAuth(self)
        self.projects = resources.AsyncProjects(self)
        self.project_agents = resources.AsyncProjectAgents(self)

    @classmethod
    def from_key_file(cls, path: str | os.PathLike[str] | Path | None = None, **kwargs: Any) -> AsyncClient:
        """Build a client from ``.nexysync/key`` and ``NEXYSYNC_*`` env vars, as :meth:`Client.from_key_file`.

        Raises:
            KeyFileError: no usable key file or env vars.
        """
        config = load_key_file(path)
        return cls(
            base_url=config.api_url,
            api_key=config.api_key,
            key_ring=config.key_ring(),
            project_id=config.project_id,
            **kwargs,
        )

    @property
    def base_url(self) -> str:
        """The API root."""
        return self._transport.base_url

    @property
    def last_request_id(self) -> str | None:
        """The ``X-Request-Id`` of the last response, for support requests."""
        return self._transport.last_request_id

    async def get_project_id(self) -> str:
        """Return the agent's project id (fetched once from ``GET /v1/me`` when not configured)."""
        if self._session.project_id is None:
            # AsyncClient.call, not self.me.get(): through with_raw_response that answers a RawResponse.
            project_id: str = (await AsyncClient.call(self, "me_get")).project_id
            self._session.project_id = project_id
        return self._session.project_id

    def with_options(self, *, max_retries: int | None = None, timeout: TimeoutTypes = None) -> AsyncClient:
        """Return a client that shares this one's connection and session, with other retry or timeout settings."""
        other = object.__new__(AsyncClient)
        other._session = self._session
        other._transport = self._transport.copy(max_retries=max_retries, timeout=timeout)
        other._transport._owns_client = False
        other._attach_resources()
        return other

    @property
    def with_raw_response(self) -> AsyncClientWithRawResponse:
        """This client, its resource methods returning :class:`RawResponse` (see :attr:`Client.with_raw_response`).

        ``await client.with_raw_response.messages.send(...)`` gives the unchecked response;
        ``.parse()`` gives the decrypted model the normal call returns. Typed as the sync view: the
        resource method's parameters, answering an awaitable :class:`RawResponse`.
        """
        view = object.__new__(_AsyncRawResponseClient)
        view._session = self._session
        view._transport = self._transport
        view._attach_resources()
        return cast("AsyncClientWithRawResponse", view)

    async def call_raw(
        self,
        operation_id: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | BaseModel | None = None,
        headers: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> RawResponse:
        """Send one operation; return the response unchecked, as :meth:`Client.call_raw`."""
        if self._needs_project(operation_id):
            await self.get_project_id()
        call, cipher = self._prepare(
            operation_id, self._session.project_id, path_params, query, body, headers, idempotency_key
        )
        refreshed = False
        while True:
            self._transport.token = self._session.token
            response = await self._transport.request(
                call.operation.method,
                call.path,
                params=call.params,
                json=call.json,
                idempotency_key=call.idempotency_key,
                headers=call.headers,
            )
            if (
                response.status_code == 401
                and not refreshed
                and self._session.refresh_token
                and operation_id not in _NO_REFRESH
            ):
                refreshed = True
                await response.aclose()
                # AsyncClient.call, not self.call: a raw view must still raise when the refresh fails.
                await AsyncClient.call(self, "auth_refresh", body={"refresh_token": self._session.refresh_token})
                continue
            await response.aread()
            await response.aclose()
            return RawResponse(response, call, cipher)

    async def call(
        self,
        operation_id: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | BaseModel | None = None,
        headers: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Call any operation of the API by its operationId, as :meth:`Client.call`.

        Raises:
            APIError: a subclass for each failure (see ``nexysync._errors``).
            DecryptionError: an envelope in the response failed to decrypt.
        """
        raw = await self.call_raw(
            operation_id,
            path_params=path_params,
            query=query,
            body=body,
            headers=headers,
            idempotency_key=idempotency_key,
        )
        result = raw.parse()
        self._adopt_tokens(operation_id, result)
        return result

    def stream(self, *, last_event_id: int | str | None = None, **options: Any) -> AsyncStream:
        """Follow the caller's events live (``async for``), as :meth:`Client.stream`.

        Returns:
            An async iterator of :class:`~nexysync.AsyncStreamEvent`; ``await event.message()``
            fetches and decrypts a ``new_message``'s message. ``await stream.aclose()`` (or
            ``async with``) stops it.
        """
        return AsyncStream(self, last_event_id=last_event_id, **options)

    async def aclose(self) -> None:
        """Close the connection pool (unless you brought your own ``httpx.AsyncClient``)."""
        await self._transport.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class _RawResponseClient(Client):
    """The view behind :attr:`Client.with_raw_response`: every operation answers a :class:`RawResponse`."""

    def call(
        self,
        operation_id: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | BaseModel | None = None,
        headers: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> RawResponse:
        """Send one operation and return its :class:`RawResponse` (unchecked, not parsed)."""
        raw = self.call_raw(
            operation_id,
            path_params=path_params,
            query=query,
            body=body,
            headers=headers,
            idempotency_key=idempotency_key,
        )
        if operation_id in _TOKEN_OPERATIONS and raw.http_response.is_success:
            self._adopt_tokens(operation_id, raw.parse())
        return raw


class _AsyncRawResponseClient(AsyncClient):
    """The view behind :attr:`AsyncClient.with_raw_response`: every operation answers a :class:`RawResponse`."""

    async def call(
        self,
        operation_id: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | BaseModel | None = None,
        headers: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> RawResponse:
        """Send one operation and return its :class:`RawResponse` (unchecked, not parsed)."""
        raw = await self.call_raw(
            operation_id,
            path_params=path_params,
            query=query,
            body=body,
            headers=headers,
            idempotency_key=idempotency_key,
        )
        if operation_id in _TOKEN_OPERATIONS and raw.http_response.is_success:
            self._adopt_tokens(operation_id, raw.parse())
        return raw
