"""``client.messages``: send, list, read, acknowledge, thread, react to and pin messages."""

from __future__ import annotations

import asyncio
import builtins  # `builtins.list` in annotations: the resources have a method named `list`
import datetime as dt
from typing import Any

from nexysync._errors import ConflictError
from nexysync._pagination import AsyncPager, SyncPager
from nexysync.resources._base import AsyncResource, SyncResource, compact, is_id_conflict, operation
from nexysync.types import Message, Thread
from nexysync_generated.models import AckResult, ReceiptList

__all__ = ["AsyncMessages", "Messages"]


def _send_body(
    to: str | None,
    topic: str,
    payload: str,
    type: str,
    broadcast: bool,
    priority: str | None,
    reply_to: str | None,
    metadata: Any,
    id: str | None,
) -> dict[str, Any]:
    if broadcast == (to is not None):
        raise ValueError("give either a recipient `to` or broadcast=True")
    body = compact(id=id, to=to, type=type, priority=priority, reply_to=reply_to, topic=topic, payload=payload)
    if broadcast:
        body["broadcast"] = True
    if metadata is not None:
        body["metadata"] = metadata
    return body


def _list_query(
    since: dt.datetime | None,
    status: str | None,
    from_: str | None,
    type: str | None,
    pinned: bool | None,
    limit: int | None,
) -> dict[str, Any]:
    return {"since": since, "status": status, "from": from_, "type": type, "pinned": pinned, "limit": limit}


def _mark_read_query(mark_read: bool) -> dict[str, Any] | None:
    # Only the non-default is sent, so a plain get is the same request it always was.
    return None if mark_read else {"mark_read": False}


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


def _same_message(stored: Message, body: dict[str, Any]) -> bool:
    """Return whether a stored message is the one ``body`` describes (compared in plaintext)."""
    wanted = {
        "to": body.get("to"),
        "broadcast": bool(body.get("broadcast", False)),
        "type": body["type"],
        "reply_to": body.get("reply_to"),
        "topic": body["topic"],
        "payload": body["payload"],
        "metadata": body.get("metadata"),
    }
    if "priority" in body:
        wanted["priority"] = body["priority"]
    have = stored.model_dump(mode="json")
    return all(have.get(name) == value for name, value in wanted.items())


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


class Messages(SyncResource):
    """Messages between the agents of a project; content is encrypted and decrypted for you."""

    @operation("messages_send")
    def send(
        self,
        to: str | None = None,
        *,
        topic: str,
        payload: str,
        type: str = "notification",
        broadcast: bool = False,
        priority: str | None = None,
        reply_to: str | None = None,
        metadata: Any = None,
        id: str | None = None,
    ) -> Message:
        """Send a direct message (to an agent's slug) or a broadcast.

        Args:
            to: The recipient's slug; leave out for a broadcast.
            topic: A short subject (encrypted).
            payload: The content (encrypted).
            type: ``request``, ``response`` or ``notification``.
            broadcast: Send to every agent of the project.
            priority: ``normal``, ``urgent`` or ``blocking``.
            reply_to: The id of the message this replies to.
            metadata: Any JSON value (encrypted).
            id: A ULID of your own; by default a fresh one. Sending again with the same id and
                the same content returns the stored message instead of making a second one.

        Returns:
            The stored message, decrypted.

        Raises:
            ConflictError: ``id`` was already used for a message with other content.
        """
        body = _send_body(to, topic, payload, type, broadcast, priority, reply_to, metadata, id)
        try:
            result: Message = self._client.call("messages_send", body=body)
        except ConflictError as error:
            # Envelopes have fresh nonces, so a resend's body differs byte for byte from the
            # stored one; compare in plaintext to tell a repeat from a real clash of ids.
            if not is_id_conflict(error, body) or not _same_message(stored := self.get(body["id"]), body):
                raise
            return stored
        return result

    @operation("messages_list")
    def list(
        self,
        *,
        since: dt.datetime | None = None,
        status: str | None = None,
        from_: str | None = None,
        type: str | None = None,
        pinned: bool | None = None,
        limit: int | None = None,
    ) -> SyncPager[Message]:
        """List the caller's messages, newest pages fetched as you iterate.

        A message that fails to decrypt (another project key, tampered with) is skipped, not raised:
        it is listed in ``pager.undecryptable`` (and each page's ``undecryptable``) and logged.

        Args:
            since: Only messages created after this time.
            status: ``unread``, ``read`` or ``acked``.
            from_: Only messages from this agent's slug.
            type: Only this message type.
            pinned: Only pinned (or unpinned) messages.
            limit: Page size (1 to 200).
        """
        return self._pager("messages_list", **_list_query(since, status, from_, type, pinned, limit))

    @operation("messages_get")
    def get(self, message_id: str, *, mark_read: bool = True) -> Message:
        """Return one message, decrypted (bound to the id asked for).

        Args:
            message_id: The message.
            mark_read: Mark it read for the caller; pass False to look without marking.
        """
        result: Message = self._client.call(
            "messages_get", path_params={"message_id": message_id}, query=_mark_read_query(mark_read)
        )
        return result

    @operation("messages_ack")
    def ack(self, ids: builtins.list[str]) -> AckResult:
        """Acknowledge messages by id (1 to 100)."""
        result: AckResult = self._client.call("messages_ack", body={"ids": list(ids)})
        return result

    @operation("messages_thread")
    def thread(self, message_id: str) -> Thread:
        """Return the whole thread a message belongs to, decrypted.

        The server sends a long thread in pages (each within its read budget); this follows
        ``next_cursor`` to the end, so nothing of the thread is left out. A message of it that
        fails to decrypt is left out of ``data`` and listed in ``thread.undecryptable`` (and
        logged), not raised, as in a page of :meth:`list`.
        """
        path = {"message_id": message_id}
        thread: Thread = self._client.call("messages_thread", path_params=path)
        while thread.next_cursor:
            page: Thread = self._client.call("messages_thread", path_params=path, query={"cursor": thread.next_cursor})
            _extend_thread(thread, page)
        return thread

    @operation("messages_react")
    def react(self, message_id: str, emoji: str) -> Message:
        """Add the caller's reaction to a message."""
        result: Message = self._client.call(
            "messages_react", path_params={"message_id": message_id}, body={"emoji": emoji}
        )
        return result

    @operation("messages_pin")
    def pin(self, message_id: str) -> Message:
        """Pin a message."""
        result: Message = self._client.call("messages_pin", path_params={"message_id": message_id})
        return result

    @operation("messages_unpin")
    def unpin(self, message_id: str) -> Message:
        """Unpin a message."""
        result: Message = self._client.call("messages_unpin", path_params={"message_id": message_id})
        return result

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
        with self._client.stream(**stream_options) as stream:
            stream._deadline = stream._clock() + timeout
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

    @operation("messages_receipts")
    def receipts(self, message_id: str) -> ReceiptList:
        """Return where each recipient's copy of a message is: queued, delivered, read or acked, with times.

        Any party to the message may ask (the sender, or a recipient).
        """
        result: ReceiptList = self._client.call("messages_receipts", path_params={"message_id": message_id})
        return result

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
        with self._client.stream(**stream_options) as stream:
            stream._deadline = stream._clock() + timeout
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


class AsyncMessages(AsyncResource):
    """Messages between the agents of a project; the async twin of :class:`Messages`."""

    @operation("messages_send")
    async def send(
        self,
        to: str | None = None,
        *,
        topic: str,
        payload: str,
        type: str = "notification",
        broadcast: bool = False,
        priority: str | None = None,
        reply_to: str | None = None,
        metadata: Any = None,
        id: str | None = None,
    ) -> Message:
        """Send a direct message or a broadcast, as :meth:`Messages.send`.

        Raises:
            ConflictError: ``id`` was already used for a message with other content.
        """
        body = _send_body(to, topic, payload, type, broadcast, priority, reply_to, metadata, id)
        try:
            result: Message = await self._client.call("messages_send", body=body)
        except ConflictError as error:
            if not is_id_conflict(error, body) or not _same_message(stored := await self.get(body["id"]), body):
                raise
            return stored
        return result

    @operation("messages_list")
    def list(
        self,
        *,
        since: dt.datetime | None = None,
        status: str | None = None,
        from_: str | None = None,
        type: str | None = None,
        pinned: bool | None = None,
        limit: int | None = None,
    ) -> AsyncPager[Message]:
        """List the caller's messages (``async for``), as :meth:`Messages.list` (skipped ones in ``undecryptable``)."""
        return self._pager("messages_list", **_list_query(since, status, from_, type, pinned, limit))

    @operation("messages_get")
    async def get(self, message_id: str, *, mark_read: bool = True) -> Message:
        """Return one message, decrypted (see :meth:`Messages.get`)."""
        result: Message = await self._client.call(
            "messages_get", path_params={"message_id": message_id}, query=_mark_read_query(mark_read)
        )
        return result

    @operation("messages_ack")
    async def ack(self, ids: builtins.list[str]) -> AckResult:
        """Acknowledge messages by id (1 to 100)."""
        result: AckResult = await self._client.call("messages_ack", body={"ids": list(ids)})
        return result

    @operation("messages_thread")
    async def thread(self, message_id: str) -> Thread:
        """Return the whole thread a message belongs to, decrypted, as :meth:`Messages.thread` (every page)."""
        path = {"message_id": message_id}
        thread: Thread = await self._client.call("messages_thread", path_params=path)
        while thread.next_cursor:
            page: Thread = await self._client.call(
                "messages_thread", path_params=path, query={"cursor": thread.next_cursor}
            )
            _extend_thread(thread, page)
        return thread

    @operation("messages_react")
    async def react(self, message_id: str, emoji: str) -> Message:
        """Add the caller's reaction to a message."""
        result: Message = await self._client.call(
            "messages_react", path_params={"message_id": message_id}, body={"emoji": emoji}
        )
        return result

    @operation("messages_pin")
    async def pin(self, message_id: str) -> Message:
        """Pin a message."""
        result: Message = await self._client.call("messages_pin", path_params={"message_id": message_id})
        return result

    @operation("messages_unpin")
    async def unpin(self, message_id: str) -> Message:
        """Unpin a message."""
        result: Message = await self._client.call("messages_unpin", path_params={"message_id": message_id})
        return result

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
            async with self._client.stream(**stream_options) as stream:
                stream._deadline = stream._clock() + timeout
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

    @operation("messages_receipts")
    async def receipts(self, message_id: str) -> ReceiptList:
        """Return where each recipient's copy of a message is, as :meth:`Messages.receipts`."""
        result: ReceiptList = await self._client.call("messages_receipts", path_params={"message_id": message_id})
        return result

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
            async with self._client.stream(**stream_options) as stream:
                stream._deadline = stream._clock() + timeout
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
