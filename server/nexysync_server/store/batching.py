"""Group concurrent database calls of one kind into one round trip.

While a batch is in flight, new requests queue; when it returns, everything queued goes out
as the next batch. An idle server sends each request at once (a batch of one); a busy one
pays one round trip per batch instead of one per request. The database still sees every
request after it arrived, so nothing is served from a stale copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Run ``run_batch`` over items submitted concurrently, at most ``max_batch`` at a time.

    Args:
        run_batch: Takes the items of a batch and returns one result per item, in order. A
            result that is an exception instance is raised to that item's caller alone; an
            exception raised by ``run_batch`` itself goes to every caller of the batch.
        max_batch: Largest batch sent at once.
    """

    def __init__(self, run_batch: Callable[[list[T]], Awaitable[list[R | BaseException]]], max_batch: int = 64) -> None:
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._draining = False

    async def submit(self, item: T) -> R:
        """Queue ``item`` and return its result once its batch has run."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
                try:
                    results = await self._run_batch([item for item, _ in batch])
                except BaseException as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._draining = False
            # A caller cancelled while we were raising may have queued more; do not strand it.
            if self._queue:
                self._draining = True
                asyncio.get_running_loop().create_task(self._drain())
