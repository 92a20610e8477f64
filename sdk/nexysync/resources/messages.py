"""``client.messages``: what is more than one operation (a whole thread, waiting for a message or a receipt).

Every operation method (send, list, get, ack, react, pin, receipts, ...) is generated into
``nexysync._generated.messages``; these subclasses add the rest.
"""

from __future__ import annotations

import asyncio
from typing import Any

from nexysync._generated import messages as generated
from nexysync._resource import operation
from nexysync.types import Message, Thread
from nexysync_generated.models import ReceiptList

__all__ = ["AsyncMessages", "Messages"]


def _routing_matches(data: dict[str, Any], reply_to: str | None, from_: str | None) -> bool:
    """Tell whether a ``new_message`` event's routing data is what ``wait`` looks for."""
    if reply_to is not None and data.get("reply_to") != reply_to:
        return False
    return from_ is None or data.get("from") == from_


def _earlier_reply(thread: Thread, me: str, reply_to: str, from_: str | None) -> Message | None:
    """Return the first reply already in the thread (not the caller's own), if any."""
    for message in thread.data:
        if message.from_ != me and _routing_matches(
            {"reply_to": message.reply_to, "from": message.from_}, reply_to, from_
        ):
            return message
    return None


#: A recipient's copy moves through these states in this order, never back.
RECEIPT_STATES = ("queued", "delivered", "read", "acked")


def _check_wait_for(state: str) -> None:
    if state not in RECEIPT_STATES:
        raise ValueError(f"state must be one of {', '.join(RECEIPT_STATES)}, not {state!r}")


def _reached(receipts: ReceiptList, state: str, agent: str | None) -> bool:
    """Tell whether every copy (or ``agent``'s) has reached ``state`` or gone past it."""
    copies = [r for r in receipts.data if agent is None or r.agent == agent]
    if agent is not None and not copies:
        raise ValueError(f"agent {agent!r} is not a recipient of this message")
    wanted = RECEIPT_STATES.index(state)
    return all(RECEIPT_STATES.index(str(copy.state)) >= wanted for copy in copies)


def _about(event_type: str, data: dict[str, Any], message_id: str) -> bool:
    """Tell whether an event may have moved the receipts of ``message_id`` (a reset may hide one)."""
    return event_type == "reset" or (event_type == "message_receipt" and data.get("message_id") == message_id)


def _extend_thread(thread: Thread, page: Thread) -> None:
    """Add the next page of a thread to what was read of it (its messages, what failed, its cursor)."""
    thread.data.extend(page.data)
    thread.undecryptable.extend(page.undecryptable)
    thread.next_cursor = page.next_cursor


class Messages(generated.Messages):
    """Messages between the agents of a project; content is encrypted and decrypted for you.

    The generated operation methods, plus the whole thread, :meth:`wait` and :meth:`wait_for`.
    """

    @operation("messages_thread")
    def thread(self, message_id: str) -> Thread:
        """Return the whole thread a message belongs to, decrypted.

        The server sends a long thread in pages (each within its read budget); this follows
        ``next_cursor`` to the end, so nothing of the thread is left out. A message of it that
        fails to decrypt is left out of ``data`` and listed in ``thread.undecryptable`` (and
        logged), not raised, as in a page of :meth:`list`.
        """
        path = {"message_id": message_id}
        thread = super().thread(message_id)
        while thread.next_cursor:
            page: Thread = self._client.call("messages_thread", path_params=path, query={"cursor": thread.next_cursor})
            _extend_thread(thread, page)
        return thread

    def wait(
        self,
        *,
        reply_to: str | None = None,
        from_: str | None = None,
        timeout: float = 60.0,
        **stream_options: Any,
    ) -> Message:
        """Block until a message that matches arrives; return it, decrypted.

        Built on :meth:`Client.stream`. The stream's position is fixed before anything else, and
        with ``reply_to`` the thread is then checked once, so a reply that arrived just before
        the call (or while the stream was connecting) is returned too. Without ``reply_to``
        only messages that arrive after the call count.

        Args:
            reply_to: Only a reply to this message id.
            from_: Only a message from this agent's slug.
            timeout: Seconds to wait at most.
            **stream_options: Settings for the underlying stream (``watchdog_s``, ...).

        Returns:
            The first matching message addressed to the caller.

        Raises:
            TimeoutError: none arrived within ``timeout``.
            APIError: the server refused the stream or the fetch.
        """
        with self._client.stream(timeout=timeout, **stream_options) as stream:
            stream.open()
            if reply_to is not None:
                me = self._client.me.get().agent.slug
                found = _earlier_reply(self.thread(reply_to), me, reply_to, from_)
                if found is not None:
                    return found
            for event in stream:
                if event.type == "new_message" and _routing_matches(event.data, reply_to, from_):
                    return event.message()
        raise TimeoutError("the stream ended without a matching message")  # pragma: no cover

    def wait_for(
        self,
        message_id: str,
        *,
        state: str = "read",
        agent: str | None = None,
        timeout: float = 60.0,
        **stream_options: Any,
    ) -> ReceiptList:
        """Block until every recipient's copy (or ``agent``'s) reached ``state``; return the receipts.

        The stream's position is fixed first, then the receipts are read once, so a step taken
        just before the call counts; after that each ``message_receipt`` event about the message
        (the sender's stream gets one per step) reads them again.

        Args:
            message_id: A message the caller sent.
            state: ``delivered``, ``read`` or ``acked`` (a copy past it counts).
            agent: Wait for this recipient only (a broadcast has one copy per agent).
            timeout: Seconds to wait at most.
            **stream_options: Settings for the underlying stream (``watchdog_s``, ...).

        Raises:
            TimeoutError: the copies did not get there within ``timeout``.
            ValueError: ``state`` is not a receipt state, or ``agent`` is not a recipient.
            APIError: the server refused the stream or the read (404 for a message not yours).
        """
        _check_wait_for(state)
        with self._client.stream(timeout=timeout, **stream_options) as stream:
            stream.open()
            receipts = self.receipts(message_id)
            if _reached(receipts, state, agent):
                return receipts
            for event in stream:
                if _about(event.type, event.data, message_id):
                    receipts = self.receipts(message_id)
                    if _reached(receipts, state, agent):
                        return receipts
        raise TimeoutError("the stream ended before the receipts got there")  # pragma: no cover


class AsyncMessages(generated.AsyncMessages):
    """Messages between the agents of a project; the async twin of :class:`Messages`."""

    @operation("messages_thread")
    async def thread(self, message_id: str) -> Thread:
        """Return the whole thread a message belongs to, decrypted, as :meth:`Messages.thread` (every page)."""
        path = {"message_id": message_id}
        thread = await super().thread(message_id)
        while thread.next_cursor:
            page: Thread = await self._client.call(
                "messages_thread", path_params=path, query={"cursor": thread.next_cursor}
            )
            _extend_thread(thread, page)
        return thread

    async def wait(
        self,
        *,
        reply_to: str | None = None,
        from_: str | None = None,
        timeout: float = 60.0,
        **stream_options: Any,
    ) -> Message:
        """Wait until a message that matches arrives; return it, decrypted, as :meth:`Messages.wait`.

        Raises:
            TimeoutError: none arrived within ``timeout``.
            APIError: the server refused the stream or the fetch.
        """
        async with asyncio.timeout(timeout):
            async with self._client.stream(timeout=timeout, **stream_options) as stream:
                await stream.open()
                if reply_to is not None:
                    me = (await self._client.me.get()).agent.slug
                    found = _earlier_reply(await self.thread(reply_to), me, reply_to, from_)
                    if found is not None:
                        return found
                async for event in stream:
                    if event.type == "new_message" and _routing_matches(event.data, reply_to, from_):
                        return await event.message()
        raise TimeoutError("the stream ended without a matching message")  # pragma: no cover

    async def wait_for(
        self,
        message_id: str,
        *,
        state: str = "read",
        agent: str | None = None,
        timeout: float = 60.0,
        **stream_options: Any,
    ) -> ReceiptList:
        """Wait until every recipient's copy (or ``agent``'s) reached ``state``, as :meth:`Messages.wait_for`.

        Raises:
            TimeoutError: the copies did not get there within ``timeout``.
            ValueError: ``state`` is not a receipt state, or ``agent`` is not a recipient.
            APIError: the server refused the stream or the read.
        """
        _check_wait_for(state)
        async with asyncio.timeout(timeout):
            async with self._client.stream(timeout=timeout, **stream_options) as stream:
                await stream.open()
                receipts = await self.receipts(message_id)
                if _reached(receipts, state, agent):
                    return receipts
                async for event in stream:
                    if _about(event.type, event.data, message_id):
                        receipts = await self.receipts(message_id)
                        if _reached(receipts, state, agent):
                            return receipts
        raise TimeoutError("the stream ended before the receipts got there")  # pragma: no cover
