"""Auto-paginating iterators over list operations that answer ``{data, next_cursor}`` pages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["AsyncPager", "SyncPager"]

T = TypeVar("T")


class SyncPager(Generic[T]):
    """Iterate over every item of a list, fetching pages lazily by following ``next_cursor``.

    Args:
        fetch: Return the page that starts at a cursor (None for the first page).
    """

    def __init__(self, fetch: Callable[[str | None], Any]) -> None:
        self._fetch = fetch

    def first_page(self) -> Any:
        """Return the first page (``data`` and ``next_cursor``) only."""
        return self._fetch(None)

    def pages(self) -> Iterator[Any]:
        """Yield every page in turn."""
        cursor: str | None = None
        while True:
            page = self._fetch(cursor)
            yield page
            cursor = page.next_cursor
            if not cursor or not page.data:
                return

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from page.data


class AsyncPager(Generic[T]):
    """The async twin of :class:`SyncPager`: ``async for item in pager``."""

    def __init__(self, fetch: Callable[[str | None], Awaitable[Any]]) -> None:
        self._fetch = fetch

    async def first_page(self) -> Any:
        """Return the first page (``data`` and ``next_cursor``) only."""
        return await self._fetch(None)

    async def pages(self) -> AsyncIterator[Any]:
        """Yield every page in turn."""
        cursor: str | None = None
        while True:
            page = await self._fetch(cursor)
            yield page
            cursor = page.next_cursor
            if not cursor or not page.data:
                return

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page.data:
                yield item
