"""``Client`` and ``AsyncClient``: configuration, the generic operation call, and the resources."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import cached_property
from types import TracebackType
from typing import Any, Self

import httpx
from pydantic import BaseModel

from nexysync._auth import BearerAuth, Session
from nexysync._errors import KeyFileError
from nexysync._generated._clients import (
    AsyncClientResources,
    AsyncClientWithRawResponse,
    ClientResources,
    ClientWithRawResponse,
)
from nexysync._operations import Cipher, PreparedCall, needs_cipher, prepare_call
from nexysync._response import RawResponse
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
from nexysync.keyfile import ENV_API_KEY, ENV_API_URL, ENV_ENC_KEY, load_key_file
from nexysync.resources.files import AsyncFiles, Files
from nexysync.resources.leases import AsyncLeases, Leases
from nexysync.resources.messages import AsyncMessages, Messages
from nexysync_generated import ENCRYPTION_PLANS, OPERATIONS

__all__ = ["AsyncClient", "Client", "RawResponse"]

#: An agent API key names its agent: ``nsync_<slug>_<40 hex>`` (a slug has no underscore).
_AGENT_KEY = re.compile(r"nsync_([a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?)_")
#: Operations whose success signs the session in or out (through ``with_raw_response`` too).
_TOKEN_OPERATIONS = frozenset(
    {
        "auth_login",
        "auth_register",
        "auth_refresh",
        "auth_change_password",
        "auth_logout",
        "auth_logout_all",
        "auth_delete_account",
    }
)
#: Token operations whose success signs the session out.
_SIGN_OUT_OPERATIONS = frozenset({"auth_logout", "auth_logout_all", "auth_delete_account"})


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


class _ClientCore:
    """What both clients share: the session, the request preparation and the configuration."""

    _session: Session
    _transport: SyncTransport | AsyncTransport

    @staticmethod
    def _new_session(
        api_key: str | None,
        refresh_token: str | None,
        project_id: str | None,
        key_ring: KeyRing | None,
        on_tokens: Callable[[str | None, str | None], None] | None,
    ) -> Session:
        return Session(
            token=api_key or os.environ.get(ENV_API_KEY),
            refresh_token=refresh_token,
            project_id=project_id,
            ring=key_ring if key_ring is not None else _env_ring(),
            on_tokens=on_tokens,
        )

    @classmethod
    def from_key_file(cls, path: str | os.PathLike[str] | None = None, **kwargs: Any) -> Self:
        """Build a client from ``.nexysync/key`` (searched upward from the cwd) and ``NEXYSYNC_*`` env vars.

        Args:
            path: An explicit key file.
            **kwargs: Other arguments of the client (timeout, max_retries, http_client, ...).

        Raises:
            KeyFileError: no usable key file or env vars.
        """
        config = load_key_file(path)
        make: Any = cls  # Client or AsyncClient: both take these arguments
        client: Self = make(
            base_url=config.api_url,
            api_key=config.api_key,
            key_ring=config.key_ring(),
            project_id=config.project_id,
            **kwargs,
        )
        return client

    @property
    def base_url(self) -> str:
        """The API root."""
        return self._transport.base_url

    @property
    def last_request_id(self) -> str | None:
        """The ``X-Request-Id`` of the last response, for support requests."""
        return self._transport.last_request_id

    def with_options(self, *, max_retries: int | None = None, timeout: TimeoutTypes = None) -> Self:
        """Return a client that shares this one's connection and session, with other retry or timeout settings."""
        other = object.__new__(type(self))
        other._session = self._session
        other._transport = self._transport.copy(max_retries=max_retries, timeout=timeout)
        other._transport._owns_client = False
        other._attach_resources()
        return other

    def _attach_resources(self) -> None:
        raise NotImplementedError  # the generated ClientResources / AsyncClientResources attach them

    @property
    def key_ring(self) -> KeyRing | None:
        """The project key ring, or None for a client that only manages (no content)."""
        return self._session.ring

    @key_ring.setter
    def key_ring(self, ring: KeyRing | None) -> None:
        """Use another ring from now on (a rotation reached this machine); copies and raw views share it."""
        self._session.ring = ring

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
            cipher = Cipher(self._session.ring, project_id, self._agent_slug())
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

    def _agent_slug(self) -> str | None:
        session = self._session
        if session.agent_slug is None and session.token is not None:
            match = _AGENT_KEY.match(session.token)
            session.agent_slug = match.group(1) if match else None
        return session.agent_slug

    def _needs_project(self, operation_id: str) -> bool:
        """Tell whether the call needs ``GET /v1/me`` first: it encrypts, and the project or slug is unknown."""
        if operation_id not in OPERATIONS:
            raise KeyError(f"unknown operation {operation_id!r}")
        if not needs_cipher(operation_id):
            return False
        if self._session.ring is None:
            raise KeyFileError(f"{operation_id} handles encrypted content: give the client an encryption key")
        writes = bool(ENCRYPTION_PLANS[operation_id].request)
        return self._session.project_id is None or (writes and self._agent_slug() is None)

    def _adopt_identity(self, me: Any) -> str:
        """Keep the project id and agent slug of a ``GET /v1/me`` answer; return the project id."""
        if self._session.project_id is None:
            self._session.project_id = me.project_id
        self._session.agent_slug = me.agent.slug
        return self._session.project_id or me.project_id

    @property
    def refresh_token(self) -> str | None:
        """The human session's current refresh token (it changes at every refresh), or None."""
        return self._session.refresh_token

    def _adopt_tokens(self, operation_id: str, raw: RawResponse) -> RawResponse:
        """Sign the session in or out when a token operation succeeded (raw or not); return ``raw``."""
        if operation_id not in _TOKEN_OPERATIONS or not raw.http_response.is_success:
            return raw
        if operation_id in _SIGN_OUT_OPERATIONS:
            self._session.adopt(None, None)
        else:
            result = raw.parse()
            self._session.adopt(result.access_token, result.refresh_token)
        return raw


class Client(ClientResources, _ClientCore):
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

    _transport: SyncTransport
    # More than one operation each, so written by hand (nexysync/resources/): they replace the
    # generated resources they extend, which know nothing of them.
    messages: Messages
    leases: Leases
    files: Files

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
        self._session = self._new_session(api_key, refresh_token, project_id, key_ring, on_tokens)
        url = _base_url(base_url)
        self._transport = SyncTransport(
            base_url=url,
            auth=BearerAuth(self._session, url),
            timeout=timeout,
            max_retries=max_retries,
            http_client=http_client,
            verify=verify,
            sleep=sleep,
            headers=default_headers,
        )
        self._attach_resources()

    def _attach_resources(self) -> None:
        super()._attach_resources()
        self.messages = Messages(self)
        self.files = Files(self)
        self.leases = Leases(self)

    def get_project_id(self) -> str:
        """Return the agent's project id (fetched once from ``GET /v1/me`` when not configured)."""
        if self._session.project_id is None:
            return self._adopt_identity(self.call("me_get"))
        return self._session.project_id

    @cached_property
    def with_raw_response(self) -> ClientWithRawResponse:
        """This client, with every resource method returning a :class:`RawResponse` instead.

        ``client.with_raw_response.messages.send(...)`` sends exactly what ``client.messages.send``
        sends and returns the unchecked response: ``status_code``, ``headers``, ``request_id``, and
        ``.parse()`` for the decrypted model the normal call returns (it raises the typed
        ``APIStatusError`` when the status is an error). A list method's pager gives the raw first
        page with ``.first_page()``. It shares this client's connection, session and options.

        Each resource of the view (``MessagesWithRawResponse``, ...) is generated with the
        operation methods of the resource, the same parameters, answering :class:`RawResponse`,
        or a pager with only ``first_page()`` for a list. Methods that are more than one operation
        (``messages.wait``, ``files.upload``, ``files.download``) are not on it.

        Example:
            >>> raw = client.with_raw_response.messages.send(to="bob", topic="t", payload="hi")  # doctest: +SKIP
            >>> raw.headers["RateLimit"], raw.parse().payload  # doctest: +SKIP
        """
        return ClientWithRawResponse(self)

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
            self._adopt_identity(self.call("me_get"))
        call, cipher = self._prepare(
            operation_id, self._session.project_id, path_params, query, body, headers, idempotency_key
        )
        response = self._transport.request(
            call.operation.method,
            call.path,
            params=call.params,
            json=call.json,
            idempotency_key=call.idempotency_key,
            headers=call.headers,
        )
        response.close()
        return self._adopt_tokens(operation_id, RawResponse(response, call, cipher))

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
        if operation_id == "me_get":
            self._adopt_identity(result)
        return result

    def stream(self, *, last_event_id: int | str | None = None, **options: Any) -> Stream:
        """Follow the caller's events live; reconnects, resumes and falls back to polling by itself.

        Args:
            last_event_id: Resume after this ``seq`` (a saved ``stream.last_event_id``); from now
                by default.
            **options: :class:`~nexysync._stream.Stream` settings: ``watchdog_s`` (60),
                ``poll_interval_s`` (2), ``fallback_after`` (3), ``stream_retry_s`` (30), ``timeout``, ``sleep``,
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

    def open_stream(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes = None,
    ) -> httpx.Response:
        """Send an authenticated GET and return its response unread (``iter_lines()``; close it when done).

        What :meth:`stream` reads Server-Sent Events through; the token is refreshed on 401 as
        for any call. Not retried: judge the answer and reconnect on your own schedule.

        Raises:
            APIConnectionError: no response arrived.
        """
        return self._transport.open_stream(path, params=params, headers=headers, timeout=timeout)

    def close(self) -> None:
        """Close the connection pool (unless you brought your own ``httpx.Client``)."""
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncClient(AsyncClientResources, _ClientCore):
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

    _transport: AsyncTransport
    messages: AsyncMessages
    leases: AsyncLeases
    files: AsyncFiles

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
        self._session = self._new_session(api_key, refresh_token, project_id, key_ring, on_tokens)
        url = _base_url(base_url)
        self._transport = AsyncTransport(
            base_url=url,
            auth=BearerAuth(self._session, url),
            timeout=timeout,
            max_retries=max_retries,
            http_client=http_client,
            verify=verify,
            sleep=sleep,
            headers=default_headers,
        )
        self._attach_resources()

    def _attach_resources(self) -> None:
        super()._attach_resources()
        self.messages = AsyncMessages(self)
        self.files = AsyncFiles(self)
        self.leases = AsyncLeases(self)

    async def get_project_id(self) -> str:
        """Return the agent's project id (fetched once from ``GET /v1/me`` when not configured)."""
        if self._session.project_id is None:
            return self._adopt_identity(await self.call("me_get"))
        return self._session.project_id

    @cached_property
    def with_raw_response(self) -> AsyncClientWithRawResponse:
        """This client, its resource methods returning :class:`RawResponse` (see :attr:`Client.with_raw_response`).

        ``await client.with_raw_response.messages.send(...)`` gives the unchecked response;
        ``.parse()`` gives the decrypted model the normal call returns. Typed as the sync view: the
        resource method's parameters, answering an awaitable :class:`RawResponse`.
        """
        return AsyncClientWithRawResponse(self)

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
            self._adopt_identity(await self.call("me_get"))
        call, cipher = self._prepare(
            operation_id, self._session.project_id, path_params, query, body, headers, idempotency_key
        )
        response = await self._transport.request(
            call.operation.method,
            call.path,
            params=call.params,
            json=call.json,
            idempotency_key=call.idempotency_key,
            headers=call.headers,
        )
        await response.aread()
        await response.aclose()
        return self._adopt_tokens(operation_id, RawResponse(response, call, cipher))

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
        if operation_id == "me_get":
            self._adopt_identity(result)
        return result

    def stream(self, *, last_event_id: int | str | None = None, **options: Any) -> AsyncStream:
        """Follow the caller's events live (``async for``), as :meth:`Client.stream`.

        Returns:
            An async iterator of :class:`~nexysync.AsyncStreamEvent`; ``await event.message()``
            fetches and decrypts a ``new_message``'s message. ``await stream.aclose()`` (or
            ``async with``) stops it.
        """
        return AsyncStream(self, last_event_id=last_event_id, **options)

    async def open_stream(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes = None,
    ) -> httpx.Response:
        """Send an authenticated GET and return its response unread, as :meth:`Client.open_stream` (``aiter_lines()``).

        Raises:
            APIConnectionError: no response arrived.
        """
        return await self._transport.open_stream(path, params=params, headers=headers, timeout=timeout)

    async def aclose(self) -> None:
        """Close the connection pool (unless you brought your own ``httpx.AsyncClient``)."""
        await self._transport.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
