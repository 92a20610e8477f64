"""HTTP transport: capped jittered backoff under one retry policy (:func:`should_retry`), idempotency keys, request ids.

Authentication is an ``httpx.Auth`` (:class:`nexysync._auth.BearerAuth`) given to every send,
the streaming one included.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from nexysync._errors import APIConnectionError, APITimeoutError
from nexysync._ulid import new_ulid

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "AsyncTransport",
    "SyncTransport",
    "backoff_delay",
    "should_retry",
    "should_retry_response",
]

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 2
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
#: Longest ``Retry-After`` the SDK waits out; a longer one is a quota, better surfaced than slept.
MAX_RETRY_AFTER = 60.0
RETRY_STATUSES = frozenset({408, 409, 425, 429})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
USER_AGENT = "nexysync-python"

TimeoutTypes = float | httpx.Timeout | None
#: How to check the server's TLS certificate: True (the default trust store, or ``SSL_CERT_FILE``),
#: the path of a CA bundle (PEM) to trust instead, an ``ssl.SSLContext``, or False (no check).
VerifyTypes = ssl.SSLContext | str | os.PathLike[str] | bool


def ssl_verify(verify: VerifyTypes) -> ssl.SSLContext | bool:
    """Turn a ``verify`` argument into what httpx takes (a CA bundle path becomes a context)."""
    if isinstance(verify, str | os.PathLike):
        return ssl.create_default_context(cafile=os.fspath(verify))
    return verify


def _retry_after(response: httpx.Response | None) -> float | None:
    """Return the server's ``Retry-After`` in seconds (delta or HTTP date), or None."""
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = parsed.timestamp() - time.time()
    if 0 <= seconds <= MAX_RETRY_AFTER:
        return seconds
    return None


def backoff_delay(
    retry: int, response: httpx.Response | None = None, *, rand: Callable[[], float] = random.random
) -> float:
    """Return how long to wait before retry number ``retry`` (0-based).

    The server's ``Retry-After`` wins when present and sane; otherwise exponential backoff from
    0.5 s, capped at 8 s, with up to 25 % jitter taken off so that clients spread out.
    """
    advised = _retry_after(response)
    if advised is not None:
        return advised
    delay = min(INITIAL_RETRY_DELAY * 2.0**retry, MAX_RETRY_DELAY)
    return delay * (1 - 0.25 * rand())


#: 409 codes that a retry of the same request cannot resolve (a taken id; content already on the CDN).
FINAL_CONFLICT_CODES = frozenset({"ID_CONFLICT", "FILE_ALREADY_UPLOADED"})


def should_retry(status: int | None, code: str | None = None) -> bool:
    """Tell whether a failed request may succeed if sent again: the SDK's one retry policy.

    Used by every request to the API, the SSE stream's reconnects and the CDN transfers.

    Args:
        status: The HTTP status, or None when no response arrived (a connection error).
        code: The problem's ``code``, which tells a final 409 from a passing one.
    """
    if status is None:
        return True
    if status == 409:
        return code not in FINAL_CONFLICT_CODES
    if status == 507:
        # The CDN's files volume is full and the upload was withdrawn: the same request cannot
        # succeed until an operator frees space.
        return False
    return status in RETRY_STATUSES or status >= 500


def should_retry_response(response: httpx.Response) -> bool:
    """Apply :func:`should_retry` to a response (reading a 409's ``code``)."""
    code = None
    if response.status_code == 409:
        try:
            code = response.json().get("code")
        except (ValueError, AttributeError):
            code = None
    return should_retry(response.status_code, code)


class _TransportBase:
    """What the sync and async transports share: configuration and request building."""

    def __init__(
        self,
        *,
        base_url: str,
        auth: httpx.Auth | None,
        timeout: TimeoutTypes,
        max_retries: int,
        headers: Mapping[str, str] | None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.timeout = timeout
        self.max_retries = max_retries
        self.headers = dict(headers or {})
        #: The ``X-Request-Id`` of the last response received, for support requests.
        self.last_request_id: str | None = None

    def _build(
        self,
        client: httpx.Client | httpx.AsyncClient,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        json: Any,
        idempotency_key: str | None,
        timeout: TimeoutTypes,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Request:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **self.headers, **(headers or {})}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return client.build_request(
            method,
            self.base_url + path,
            params=params,
            json=json,
            headers=headers,
            timeout=self.timeout if timeout is None else timeout,
        )

    def _note(self, response: httpx.Response) -> httpx.Response:
        self.last_request_id = response.headers.get("X-Request-Id") or self.last_request_id
        return response


def _connection_error(exc: httpx.TransportError, method: str, path: str) -> APIConnectionError:
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"{method} {path} timed out: {exc!r}")
    return APIConnectionError(f"{method} {path} could not complete: {exc!r}")


class SyncTransport(_TransportBase):
    """Send requests over an ``httpx.Client``, retrying what is safe to retry.

    Args:
        base_url: The API root, e.g. ``http://127.0.0.1:8000``.
        auth: Authenticates each request (the bearer token, refreshed on 401).
        timeout: Default timeout per request, in seconds (or an ``httpx.Timeout``).
        max_retries: Retries after the first attempt.
        http_client: A caller's own client; the transport then never closes it.
        verify: TLS certificate check of a client the transport makes (see ``VerifyTypes``).
        sleep: How to wait between attempts (injectable for tests).
        headers: Extra headers for every request.
    """

    def __init__(
        self,
        *,
        base_url: str,
        auth: httpx.Auth | None = None,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.Client | None = None,
        verify: VerifyTypes = True,
        sleep: Callable[[float], None] = time.sleep,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(base_url=base_url, auth=auth, timeout=timeout, max_retries=max_retries, headers=headers)
        self._owns_client = http_client is None
        self.http = http_client if http_client is not None else httpx.Client(verify=ssl_verify(verify))
        self.sleep = sleep

    def copy(self, *, max_retries: int | None = None, timeout: TimeoutTypes = None) -> SyncTransport:
        """Return a transport sharing this one's connection pool, with other retry or timeout settings."""
        other = SyncTransport(
            base_url=self.base_url,
            auth=self.auth,
            timeout=self.timeout if timeout is None else timeout,
            max_retries=self.max_retries if max_retries is None else max_retries,
            http_client=self.http,
            sleep=self.sleep,
            headers=self.headers,
        )
        return other

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
        timeout: TimeoutTypes = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send a request, retrying connection errors, 408, 409, 429 and 5xx.

        A write carries an ``Idempotency-Key`` (the given one, or a fresh ULID) that stays the same
        across its retries. The last response is returned whatever its status.

        Raises:
            APIConnectionError: no response arrived, after all retries.
            APITimeoutError: the last attempt timed out.
        """
        if idempotency_key is None and method.upper() not in SAFE_METHODS:
            idempotency_key = new_ulid()
        retry = 0
        while True:
            request = self._build(
                self.http,
                method,
                path,
                params=params,
                json=json,
                idempotency_key=idempotency_key,
                timeout=timeout,
                headers=headers,
            )
            try:
                response = self._note(self.http.send(request, auth=self.auth))
            except httpx.TransportError as exc:
                if retry >= self.max_retries:
                    raise _connection_error(exc, method, path) from exc
                self.sleep(backoff_delay(retry))
                retry += 1
                continue
            if retry < self.max_retries and should_retry_response(response):
                response.close()
                self.sleep(backoff_delay(retry, response))
                retry += 1
                continue
            return response

    def open_stream(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes = None,
    ) -> httpx.Response:
        """Send a GET and return the response unread, for the caller to iterate and close.

        Authenticated (and refreshed) as every request; not retried here: the SSE consumer
        judges the answer with :func:`should_retry` and reconnects on its own schedule.

        Raises:
            APIConnectionError: no response arrived.
        """
        request = self._build(
            self.http, "GET", path, params=params, json=None, idempotency_key=None, timeout=timeout, headers=headers
        )
        try:
            return self._note(self.http.send(request, auth=self.auth, stream=True))
        except httpx.TransportError as exc:
            raise _connection_error(exc, "GET", path) from exc

    def close(self) -> None:
        """Close the connection pool, unless the caller brought it."""
        if self._owns_client:
            self.http.close()


class AsyncTransport(_TransportBase):
    """Send requests over an ``httpx.AsyncClient``; the async twin of :class:`SyncTransport`."""

    def __init__(
        self,
        *,
        base_url: str,
        auth: httpx.Auth | None = None,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.AsyncClient | None = None,
        verify: VerifyTypes = True,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(base_url=base_url, auth=auth, timeout=timeout, max_retries=max_retries, headers=headers)
        self._owns_client = http_client is None
        self.http = http_client if http_client is not None else httpx.AsyncClient(verify=ssl_verify(verify))
        self.sleep = sleep

    def copy(self, *, max_retries: int | None = None, timeout: TimeoutTypes = None) -> AsyncTransport:
        """Return a transport sharing this one's connection pool, with other retry or timeout settings."""
        return AsyncTransport(
            base_url=self.base_url,
            auth=self.auth,
            timeout=self.timeout if timeout is None else timeout,
            max_retries=self.max_retries if max_retries is None else max_retries,
            http_client=self.http,
            sleep=self.sleep,
            headers=self.headers,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
        timeout: TimeoutTypes = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send a request, retrying as :meth:`SyncTransport.request` does.

        Raises:
            APIConnectionError: no response arrived, after all retries.
            APITimeoutError: the last attempt timed out.
        """
        if idempotency_key is None and method.upper() not in SAFE_METHODS:
            idempotency_key = new_ulid()
        retry = 0
        while True:
            request = self._build(
                self.http,
                method,
                path,
                params=params,
                json=json,
                idempotency_key=idempotency_key,
                timeout=timeout,
                headers=headers,
            )
            try:
                response = self._note(await self.http.send(request, auth=self.auth))
            except httpx.TransportError as exc:
                if retry >= self.max_retries:
                    raise _connection_error(exc, method, path) from exc
                await self.sleep(backoff_delay(retry))
                retry += 1
                continue
            if retry < self.max_retries and should_retry_response(response):
                await response.aclose()
                await self.sleep(backoff_delay(retry, response))
                retry += 1
                continue
            return response

    async def open_stream(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes = None,
    ) -> httpx.Response:
        """Send a GET and return the response unread, as :meth:`SyncTransport.open_stream`.

        Raises:
            APIConnectionError: no response arrived.
        """
        request = self._build(
            self.http, "GET", path, params=params, json=None, idempotency_key=None, timeout=timeout, headers=headers
        )
        try:
            return self._note(await self.http.send(request, auth=self.auth, stream=True))
        except httpx.TransportError as exc:
            raise _connection_error(exc, "GET", path) from exc

    async def aclose(self) -> None:
        """Close the connection pool, unless the caller brought it."""
        if self._owns_client:
            await self.http.aclose()
