"""The runtime of the generated resources: their base classes and the helpers their methods name.

The resource classes themselves are generated into ``nexysync._generated`` from openapi.yaml (and
``scripts/templates/resources.yaml``); what is here is what they share, and what resources.yaml
names as a parameter's conversion, an argument check or a replay's comparison.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from nexysync._errors import ConflictError
from nexysync._pagination import AsyncPager, SyncPager

if TYPE_CHECKING:
    from nexysync._client import AsyncClient, Client
    from nexysync.types import Message, Ref, Task

__all__ = [
    "AsyncAPIResource",
    "SyncAPIResource",
    "compact",
    "etag",
    "one_recipient",
    "operation",
    "refresh_token",
    "same_message",
    "same_ref",
]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def operation(operation_id: str) -> Callable[[F], F]:
    """Mark a resource method as the SDK method of an operationId (checked by the coverage test)."""

    def mark(function: F) -> F:
        function.__operation_id__ = operation_id  # type: ignore[attr-defined]
        return function

    return mark


def compact(values: Mapping[str, Any]) -> dict[str, Any]:
    """Return the values that were given (not None), for a request body."""
    return {key: value for key, value in values.items() if value is not None}


def etag(version: int | str | None) -> str | None:
    """Return an entry version as an ETag (``"3"``); strings are passed through."""
    if version is None or isinstance(version, str):
        return version
    return f'"{version}"'


def one_recipient(to: str | None, broadcast: bool) -> None:
    """Check that a send names a recipient or is a broadcast, not both."""
    if broadcast == (to is not None):
        raise ValueError("give either a recipient `to` or broadcast=True")


def refresh_token(client: Client | AsyncClient, given: str | None) -> str:
    """Return the refresh token to send: the one given, else the session's."""
    token = given or client.refresh_token
    if not token:
        raise ValueError("no refresh token: log in first or pass one")
    return token


def same_message(stored: Message, body: Mapping[str, Any]) -> bool:
    """Return whether a stored message is the one ``body`` describes (compared in plaintext)."""
    wanted = {
        "to": body.get("to"),
        "broadcast": bool(body.get("broadcast", False)),
        "type": body.get("type"),
        "reply_to": body.get("reply_to"),
        "topic": body["topic"],
        "payload": body["payload"],
        "metadata": body.get("metadata"),
    }
    if "priority" in body:
        wanted["priority"] = body["priority"]
    have = stored.model_dump(mode="json")
    return all(have.get(name) == value for name, value in wanted.items())


def same_ref(stored: Ref, body: Mapping[str, Any]) -> bool:
    """Return whether a stored reference is the one ``body`` describes (compared in plaintext)."""
    return (
        stored.title == body["title"]
        and stored.content == body["content"]
        and stored.source_file == body.get("source_file")
        and stored.language == body.get("language")
        and stored.to == body.get("to")
    )


def same_task(stored: Task, body: Mapping[str, Any]) -> bool:
    """Return whether a stored task is the one ``body`` describes (compared in plaintext)."""
    return (
        stored.title == body["title"]
        and stored.body == body.get("body")
        and list(stored.blocked_by) == list(body.get("blocked_by") or [])
    )


def _is_replay(error: ConflictError, body: Mapping[str, Any]) -> bool:
    """Tell whether a 409 says the client-made ``id`` of ``body`` is taken (maybe by an earlier try of it)."""
    return error.code == "ID_CONFLICT" and "id" in body


class SyncAPIResource:
    """A group of operations on a :class:`~nexysync.Client`."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def _pager(
        self, operation_id: str, *, path_params: Mapping[str, Any] | None = None, query: Mapping[str, Any] | None = None
    ) -> SyncPager[Any]:
        def fetch(cursor: str | None) -> Any:
            return self._client.call(operation_id, path_params=path_params, query={**(query or {}), "cursor": cursor})

        return SyncPager(fetch)

    def _write_once(
        self,
        operation_id: str,
        get: Callable[[str], T],
        same: Callable[[T, Mapping[str, Any]], bool],
        *,
        body: Mapping[str, Any],
    ) -> Any:
        """Send a write of a record with a client-made id; a 409 on that id answers the stored record if it is the same.

        Envelopes have fresh nonces, so a resend's body differs byte for byte from the stored one:
        the stored record is read and compared in plaintext to tell a repeat from a clash of ids.
        """
        try:
            return self._client.call(operation_id, body=body)
        except ConflictError as error:
            if not _is_replay(error, body) or not same(stored := get(body["id"]), body):
                raise
            return stored


class AsyncAPIResource:
    """A group of operations on an :class:`~nexysync.AsyncClient`."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    def _pager(
        self, operation_id: str, *, path_params: Mapping[str, Any] | None = None, query: Mapping[str, Any] | None = None
    ) -> AsyncPager[Any]:
        async def fetch(cursor: str | None) -> Any:
            query_page = {**(query or {}), "cursor": cursor}
            return await self._client.call(operation_id, path_params=path_params, query=query_page)

        return AsyncPager(fetch)

    async def _write_once(
        self,
        operation_id: str,
        get: Callable[[str], Awaitable[T]],
        same: Callable[[T, Mapping[str, Any]], bool],
        *,
        body: Mapping[str, Any],
    ) -> Any:
        """Send a write of a record with a client-made id, as :meth:`SyncAPIResource._write_once`."""
        try:
            return await self._client.call(operation_id, body=body)
        except ConflictError as error:
            if not _is_replay(error, body) or not same(stored := await get(body["id"]), body):
                raise
            return stored
