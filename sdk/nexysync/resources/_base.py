"""Base classes of the resources: thin named methods over the client's generic ``call``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from nexysync._pagination import AsyncPager, SyncPager

if TYPE_CHECKING:
    from nexysync._client import AsyncClient, Client
    from nexysync._errors import ConflictError

__all__ = ["AsyncResource", "SyncResource", "compact", "is_id_conflict", "operation"]

F = TypeVar("F", bound=Callable[..., Any])


def operation(operation_id: str) -> Callable[[F], F]:
    """Mark a resource method as the SDK method of an operationId (checked by the coverage test)."""

    def mark(function: F) -> F:
        function.__operation_id__ = operation_id  # type: ignore[attr-defined]
        return function

    return mark


def compact(**values: Any) -> dict[str, Any]:
    """Return the arguments that were given (not None), for bodies and query strings."""
    return {key: value for key, value in values.items() if value is not None}


def is_id_conflict(error: ConflictError, body: Mapping[str, Any]) -> bool:
    """Tell whether a 409 says the client-made ``id`` of ``body`` is taken (maybe by an earlier try of it)."""
    return error.code == "ID_CONFLICT" and "id" in body


class SyncResource:
    """A group of operations on a :class:`~nexysync.Client`."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def _pager(
        self, operation_id: str, *, path_params: Mapping[str, Any] | None = None, **query: Any
    ) -> SyncPager[Any]:
        def fetch(cursor: str | None) -> Any:
            return self._client.call(operation_id, path_params=path_params, query={**query, "cursor": cursor})

        return SyncPager(fetch)


class AsyncResource:
    """A group of operations on an :class:`~nexysync.AsyncClient`."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    def _pager(
        self, operation_id: str, *, path_params: Mapping[str, Any] | None = None, **query: Any
    ) -> AsyncPager[Any]:
        async def fetch(cursor: str | None) -> Any:
            return await self._client.call(operation_id, path_params=path_params, query={**query, "cursor": cursor})

        return AsyncPager(fetch)
