# (template of scripts/generate.py: the generated module starts below this line)
"""The resource module's docstring."""

from __future__ import annotations

import builtins  # `builtins.list` in annotations: the resources have a method named `list`
import datetime as dt
from typing import TYPE_CHECKING, Any

from nexysync import _resource, types
from nexysync._pagination import AsyncPager, AsyncRawPager, RawPager, SyncPager
from nexysync._resource import AsyncAPIResource, SyncAPIResource, compact, operation
from nexysync._response import RawResponse
from nexysync_generated import models

if TYPE_CHECKING:
    from nexysync._client import AsyncClient, Client

# >>> template-only: stand-ins for what the generator fills in, so that ruff and mypy read this file
TheResult = Any
the_request: dict[str, Any] = {}


def the_prelude() -> None:
    """Stand for the argument checks of a method."""


def the_same(stored: Any, body: dict[str, Any]) -> bool:
    """Stand for the plaintext comparison of a replayed write."""
    return bool(stored) and bool(body)


__all__ = ["AsyncTheResource", "AsyncTheResourceWithRawResponse", "TheResource", "TheResourceWithRawResponse"]
_ = (builtins, dt, types, models, _resource, compact)
# <<< template-only


# >>> sync-class
class TheResource(SyncAPIResource):
    """The resource's docstring."""

    # <<< sync-class
    # >>> sync-call
    @operation("the_operation")
    def the_method(self, *the_params: Any) -> TheResult:
        """The method's docstring."""
        the_prelude()
        result: TheResult = self._client.call("the_operation", **the_request)
        return result

    # <<< sync-call
    # >>> sync-none
    @operation("the_operation")
    def the_none_method(self, *the_params: Any) -> None:
        """The method's docstring."""
        the_prelude()
        self._client.call("the_operation", **the_request)

    # <<< sync-none
    # >>> sync-replay
    @operation("the_operation")
    def the_replay_method(self, *the_params: Any) -> TheResult:
        """The method's docstring."""
        the_prelude()
        result: TheResult = self._write_once("the_operation", self.get, the_same, **the_request)
        return result

    # <<< sync-replay
    # >>> sync-page
    @operation("the_operation")
    def the_page_method(self, *the_params: Any) -> SyncPager[TheResult]:
        """The method's docstring."""
        the_prelude()
        return self._pager("the_operation", **the_request)

    # <<< sync-page

    def get(self, the_id: str) -> Any:
        """Stand for the get method a replayed write reads the stored record with."""
        return the_id


# >>> async-class
class AsyncTheResource(AsyncAPIResource):
    """The resource's docstring (async)."""

    # <<< async-class
    # >>> async-call
    @operation("the_operation")
    async def the_method(self, *the_params: Any) -> TheResult:
        """The method's docstring."""
        the_prelude()
        result: TheResult = await self._client.call("the_operation", **the_request)
        return result

    # <<< async-call
    # >>> async-none
    @operation("the_operation")
    async def the_none_method(self, *the_params: Any) -> None:
        """The method's docstring."""
        the_prelude()
        await self._client.call("the_operation", **the_request)

    # <<< async-none
    # >>> async-replay
    @operation("the_operation")
    async def the_replay_method(self, *the_params: Any) -> TheResult:
        """The method's docstring."""
        the_prelude()
        result: TheResult = await self._write_once("the_operation", self.get, the_same, **the_request)
        return result

    # <<< async-replay
    # >>> async-page
    @operation("the_operation")
    def the_page_method(self, *the_params: Any) -> AsyncPager[TheResult]:
        """The method's docstring (``async for``)."""
        the_prelude()
        return self._pager("the_operation", **the_request)

    # <<< async-page

    async def get(self, the_id: str) -> Any:
        """Stand for the get method a replayed write reads the stored record with."""
        return the_id


# >>> raw-class
class TheResourceWithRawResponse:
    """The operations of :class:`TheResource`, each answering its :class:`~nexysync.RawResponse` unparsed."""

    def __init__(self, resource: TheResource) -> None:
        self._client: Client = resource._client

    # <<< raw-class
    # >>> raw-call
    def the_method(self, *the_params: Any) -> RawResponse:
        """The method's summary.

        Answers its :class:`~nexysync.RawResponse`, unparsed.
        """
        the_prelude()
        return self._client.call_raw("the_operation", **the_request)

    # <<< raw-call
    # >>> raw-page
    def the_page_method(self, *the_params: Any) -> RawPager:
        """The method's summary.

        Answers a pager whose ``first_page()`` is the first page's :class:`~nexysync.RawResponse`.
        """
        the_prelude()
        return RawPager(self._client.call_raw, "the_operation", **the_request)

    # <<< raw-page


# >>> async-raw-class
class AsyncTheResourceWithRawResponse:
    """The operations of :class:`AsyncTheResource`, each answering its :class:`~nexysync.RawResponse` unparsed."""

    def __init__(self, resource: AsyncTheResource) -> None:
        self._client: AsyncClient = resource._client

    # <<< async-raw-class
    # >>> async-raw-call
    async def the_method(self, *the_params: Any) -> RawResponse:
        """The method's summary.

        Answers its :class:`~nexysync.RawResponse`, unparsed.
        """
        the_prelude()
        return await self._client.call_raw("the_operation", **the_request)

    # <<< async-raw-call
    # >>> async-raw-page
    def the_page_method(self, *the_params: Any) -> AsyncRawPager:
        """The method's summary.

        Answers a pager whose ``await first_page()`` is the first page's :class:`~nexysync.RawResponse`.
        """
        the_prelude()
        return AsyncRawPager(self._client.call_raw, "the_operation", **the_request)

    # <<< async-raw-page
