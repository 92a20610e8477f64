"""Auto-paginating iterators over list operations that answer ``{data, next_cursor}`` pages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from nexysync._pages import DecryptedPage, UndecryptableRecord

if TYPE_CHECKING:
    from nexysync._response import RawResponse

__all__ = ["AsyncPager", "AsyncRawPager", "RawPager", "SyncPager"]

T = TypeVar("T")


def _skipped(page: Any) -> list[UndecryptableRecord]:
    """Return the records a page left out because they failed to decrypt (none for other lists)."""
    return page.undecryptable if isinstance(page, DecryptedPage) else []


class SyncPager(Generic[T]):
    """Iterate over every item of a list, fetching pages lazily by following ``next_cursor``.

    In a list of encrypted records (messages, kv entries, refs, files), a record that fails to
    decrypt is skipped rather than failing the page: iteration yields the others, and the skipped
    ones (:class:`~nexysync.DecryptionError` s naming record and field) collect in
    :attr:`undecryptable`. A page from :meth:`first_page` or :meth:`pages` has its own
    ``page.undecryptable``.

    Args:
        fetch: Return the page that starts at a cursor (None for the first page).

    Attributes:
        undecryptable: The records skipped so far by the latest walk over the pages (``for``,
            :meth:`pages`); emptied when a new walk starts, not touched by :meth:`first_page`.
    """

    def __init__(self, fetch: Callable[[str | None], Any]) -> None:
        self._fetch = fetch
        self.undecryptable: list[UndecryptableRecord] = []

    def first_page(self) -> Any:
        """Return the first page (``data``, ``next_cursor`` and, for encrypted records, ``undecryptable``) only."""
        return self._fetch(None)

    def pages(self) -> Iterator[Any]:
        """Yield every page in turn (collecting each page's undecryptable records in :attr:`undecryptable`)."""
        self.undecryptable = []
        cursor: str | None = None
        while True:
            page = self._fetch(cursor)
            self.undecryptable.extend(_skipped(page))
            yield page
            cursor = page.next_cursor
            if not cursor or not page.data:
                return

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from page.data


class AsyncPager(Generic[T]):
    """The async twin of :class:`SyncPager`: ``async for item in pager``; skipped records collect in ``undecryptable``.

    Attributes:
        undecryptable: The records skipped so far by the latest walk over the pages, as
            :attr:`SyncPager.undecryptable`.
    """

    def __init__(self, fetch: Callable[[str | None], Awaitable[Any]]) -> None:
        self._fetch = fetch
        self.undecryptable: list[UndecryptableRecord] = []

    async def first_page(self) -> Any:
        """Return the first page (``data``, ``next_cursor`` and, for encrypted records, ``undecryptable``) only."""
        return await self._fetch(None)

    async def pages(self) -> AsyncIterator[Any]:
        """Yield every page in turn (collecting each page's undecryptable records in :attr:`undecryptable`)."""
        self.undecryptable = []
        cursor: str | None = None
        while True:
            page = await self._fetch(cursor)
            self.undecryptable.extend(_skipped(page))
            yield page
            cursor = page.next_cursor
            if not cursor or not page.data:
                return

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page.data:
                yield item


class _RawPages:
    """What both raw pagers hold: the list call of their first page.

    Args:
        call_raw: The client's ``call_raw``.
        operation_id: The list operation.
        path_params: Its path parameters.
        query: Its query parameters (without the cursor).
    """

    def __init__(
        self,
        call_raw: Callable[..., Any],
        operation_id: str,
        *,
        path_params: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
    ) -> None:
        self._call_raw = call_raw
        self._operation_id = operation_id
        self._arguments = {"path_params": path_params, "query": query}


class RawPager(_RawPages):
    """What a list method answers through ``with_raw_response``: its first page, unparsed.

    Following ``next_cursor`` needs parsed pages, so a raw pager has no ``for`` and no ``pages()``.
    """

    def first_page(self) -> RawResponse:
        """Return the raw response of the first page."""
        response: RawResponse = self._call_raw(self._operation_id, **self._arguments)
        return response


class AsyncRawPager(_RawPages):
    """The async twin of :class:`RawPager`: ``await pager.first_page()``."""

    async def first_page(self) -> RawResponse:
        """Return the raw response of the first page."""
        response: RawResponse = await self._call_raw(self._operation_id, **self._arguments)
        return response
