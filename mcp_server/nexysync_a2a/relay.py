"""The bridge's one NexySync stream, and the tasks that wait on it.

Every task in flight waits on one NexySync message of the bridge's (its request to the exposed
agent): for that message's copy to be delivered, and for the agent's replies to it. A task
registers a :class:`Watch` for the message *before* sending it (the bridge picks the message's id
itself), so no receipt or reply can come before anyone listens.

One stream serves them all. It resumes after the last event handled, which is kept in the
bridge's file, so replies that came while the bridge was down arrive when it starts again. When
the stream (re)opens, or the server says events were missed (``reset``), every watch is checked
against the server: the receipts of its message and the replies in its thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from nexysync import AsyncClient
from nexysync.resources.messages import RECEIPT_STATES
from nexysync.types import Message
from nexysync_a2a.store import BridgeFile

__all__ = ["Relay", "Watch"]

log = logging.getLogger("nexysync.a2a")

#: Receipt states at or past delivery.
_DELIVERED = frozenset(RECEIPT_STATES[RECEIPT_STATES.index("delivered") :])
#: Seconds between attempts when the stream itself fails (the SDK's stream already reconnects).
_RETRY_S = 5.0


class Watch:
    """What one task waits on: the delivery of ``message_id`` and the replies to it, in order."""

    def __init__(self, message_id: str) -> None:
        self.message_id = message_id
        self.delivered = asyncio.Event()
        self.replies: asyncio.Queue[Message] = asyncio.Queue()
        self._seen: set[str] = set()

    def offer(self, reply: Message) -> None:
        """Hand over a reply (once, however many times it is found); a reply implies delivery."""
        if reply.id in self._seen:
            return
        self._seen.add(reply.id)
        self.delivered.set()
        self.replies.put_nowait(reply)


class Relay:
    """Follow the bridge agent's stream and hand receipts and replies to the watches.

    Args:
        client: The bridge agent's client.
        file: The bridge's file (where the stream resumes).
        me: The bridge agent's slug (its own messages in a thread are not replies).
    """

    def __init__(self, client: AsyncClient, file: BridgeFile, me: str) -> None:
        self._client = client
        self._file = file
        self._me = me
        self._watches: dict[str, Watch] = {}
        self._marking: set[asyncio.Task[None]] = set()

    @contextmanager
    def watching(self, message_id: str) -> Iterator[Watch]:
        """Register a watch for ``message_id`` for the block's duration."""
        watch = Watch(message_id)
        self._watches[message_id] = watch
        try:
            yield watch
        finally:
            self._watches.pop(message_id, None)

    async def run(self) -> None:
        """Follow the stream until cancelled."""
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the bridge's NexySync stream failed; again in %.0f s", _RETRY_S)
                await asyncio.sleep(_RETRY_S)

    async def _follow(self) -> None:
        async with self._client.stream(last_event_id=self._file.last_event_id) as stream:
            await stream.open()
            await self._check_all()
            async for event in stream:
                await self._on(event.type, event.data, event)
                if stream.last_event_id is not None:
                    self._file.last_event_id = stream.last_event_id

    async def _on(self, kind: str, data: dict[str, Any], event: Any) -> None:
        if kind == "new_message":
            watch = self._watches.get(str(data.get("reply_to")))
            if watch is not None and data.get("from") != self._me:
                # The event carries the message: hand it over at once, and mark it read after.
                reply = await event.message(mark_read=False)
                watch.offer(reply)
                self._mark_read(reply.id)
        elif kind == "message_receipt":
            # The event says which copy got how far: no need to ask the server.
            watch = self._watches.get(str(data.get("message_id")))
            if watch is not None and data.get("state") in _DELIVERED:
                watch.delivered.set()
        elif kind == "reset":
            await self._check_all()

    def _mark_read(self, message_id: str) -> None:
        async def mark() -> None:
            try:
                await self._client.messages.mark_read([message_id])
            except Exception:
                log.exception("could not mark reply %s read (the task has it all the same)", message_id)

        task = asyncio.get_running_loop().create_task(mark())
        self._marking.add(task)
        task.add_done_callback(self._marking.discard)

    async def _check_all(self) -> None:
        for watch in list(self._watches.values()):
            await self._check(watch)

    async def _check(self, watch: Watch) -> None:
        await self._check_receipts(watch)
        thread = await self._client.messages.thread(watch.message_id)
        for message in thread.data:
            if message.reply_to == watch.message_id and message.from_ != self._me:
                watch.offer(message)

    async def _check_receipts(self, watch: Watch) -> None:
        receipts = await self._client.messages.receipts(watch.message_id)
        if any(str(copy.state) in _DELIVERED for copy in receipts.data):
            watch.delivered.set()
