# (template of scripts/generate.py: the generated module starts below this line)
"""The resources of ``Client`` and ``AsyncClient``, and the clients' raw-response views."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel

from nexysync._response import RawResponse

# generated imports

if TYPE_CHECKING:
    from nexysync._client import AsyncClient, Client

__all__ = ["AsyncClientResources", "AsyncClientWithRawResponse", "ClientResources", "ClientWithRawResponse"]

# >>> template-only: stand-ins for what the generator fills in, so that ruff and mypy read this file
TheResource = Any
AsyncTheResource = Any
TheResourceWithRawResponse = Any
AsyncTheResourceWithRawResponse = Any
# <<< template-only


# >>> sync-client
class ClientResources:
    """The resources of a :class:`~nexysync.Client`, one attribute each."""

    # >>> sync-attributes
    the_resource: TheResource
    # <<< sync-attributes

    def _attach_resources(self) -> None:
        client = cast("Client", self)
        # >>> sync-attach
        self.the_resource = TheResource(client)
        # <<< sync-attach


class ClientWithRawResponse:
    """``client.with_raw_response``: every operation method, answering its :class:`~nexysync.RawResponse`.

    It sends exactly what the normal method sends, through the same connection, session and
    options, and returns the response unchecked: ``status_code``, ``headers``, ``request_id``, and
    ``.parse()`` for the decrypted model the normal method returns (which raises the typed
    ``APIStatusError`` for an error status). A list method answers a pager with ``first_page()``.
    Methods that are more than one operation (``messages.wait``, ``files.upload``, ...) are not
    here; ``messages.thread`` answers the thread's first page.
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        # >>> sync-raw
        self.the_resource = TheResourceWithRawResponse(client.the_resource)
        # <<< sync-raw

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
        """Call any operation by its operationId and answer its :class:`~nexysync.RawResponse`."""
        return self._client.call_raw(
            operation_id,
            path_params=path_params,
            query=query,
            body=body,
            headers=headers,
            idempotency_key=idempotency_key,
        )

    call_raw = call


# <<< sync-client
# >>> async-client
class AsyncClientResources:
    """The resources of an :class:`~nexysync.AsyncClient`, one attribute each."""

    # >>> async-attributes
    the_resource: AsyncTheResource
    # <<< async-attributes

    def _attach_resources(self) -> None:
        client = cast("AsyncClient", self)
        # >>> async-attach
        self.the_resource = AsyncTheResource(client)
        # <<< async-attach


class AsyncClientWithRawResponse:
    """``client.with_raw_response`` of an :class:`~nexysync.AsyncClient`: as :class:`ClientWithRawResponse`, awaited."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        # >>> async-raw
        self.the_resource = AsyncTheResourceWithRawResponse(client.the_resource)
        # <<< async-raw

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
        """Call any operation by its operationId and answer its :class:`~nexysync.RawResponse`."""
        return await self._client.call_raw(
            operation_id,
            path_params=path_params,
            query=query,
            body=body,
            headers=headers,
            idempotency_key=idempotency_key,
        )

    call_raw = call


# <<< async-client
