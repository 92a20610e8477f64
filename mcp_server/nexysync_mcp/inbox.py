"""The push cache: one SDK stream kept open in the background, its new messages cached and announced.

``check`` and ``wait`` are answered from this cache, so an AI that polls its inbox or waits for a
reply costs no round trip to the API. The cache is only trusted while it is *synced*: the stream
is open and the unread messages were listed after it was, so nothing can have slipped between.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nexysync import (
    APIError,
    AsyncClient,
    AsyncStream,
    AuthenticationError,
    DecryptionError,
    PermissionDeniedError,
)
from nexysync_mcp.errors import KEY_MISMATCH, describe

if TYPE_CHECKING:
    from nexysync import AsyncStreamEvent, UndecryptableRecord
    from nexysync_generated.models import Message

__all__ = ["Entry", "Inbox", "oldest_first", "undecryptable_entry"]

logger = logging.getLogger(__name__)

#: Entries kept at most; the oldest read ones go first.
MAX_ENTRIES = 1000
#: Messages fetched per listing (a new message's own page, or the unread seed).
PAGE = 100
RETRY_MIN_S = 0.5
RETRY_MAX_S = 30.0
#: Events of the shared state passed on to ``on_event`` (when they are not this agent's own).
SHARED_EVENTS = ("new_ref", "new_file", "kv_update")


@dataclass
class Entry:
    """One message addressed to this agent, as the cache knows it.

    Attributes:
        id: The message id.
        sender: The sender's slug.
        type: ``request``, ``response`` or ``notification``.
        priority: ``normal``, ``urgent`` or ``blocking``.
        reply_to: The id of the message it answers, if any.
        created_at: When it was stored (ISO 8601).
        message: The decrypted message, or None when it could not be fetched or decrypted.
        error: Why ``message`` is missing, as told to the AI (None: fetch it on demand).
        state: ``unread`` until the AI read it (``read``) or acknowledged it (``acked``).
    """

    id: str
    sender: str
    type: str
    priority: str
    reply_to: str | None
    created_at: str
    message: Message | None = None
    error: str | None = None
    state: str = "unread"

    @classmethod
    def of(cls, message: Message) -> Entry:
        """Build an entry from a fetched message."""
        return cls(
            id=message.id,
            sender=message.from_,
            type=message.type.value,
            priority=message.priority.value,
            reply_to=message.reply_to,
            created_at=message.created_at.isoformat(),
            message=message,
            state=message.status.value,
        )


def _created(entry: Entry) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(entry.created_at)
    except ValueError:
        return dt.datetime.max.replace(tzinfo=dt.UTC)
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def oldest_first(entries: Iterable[Entry]) -> list[Entry]:
    """Return the entries in the order they were stored on the server (stable for equal times)."""
    return sorted(entries, key=_created)


def undecryptable_entry(error: UndecryptableRecord) -> Entry:
    """Build the entry of a listed message the SDK could not decrypt: its routing data and why.

    Args:
        error: One of a page's ``undecryptable`` records (its ``raw`` routing fields are plaintext).
    """
    raw = error.raw
    message_id = str(raw.get("id") or error.record.partition("/")[2])
    sender = str(raw.get("from"))
    created_at = str(raw.get("created_at"))
    with contextlib.suppress(ValueError):
        # As Entry.of writes it, so the entries of one listing sort together.
        created_at = dt.datetime.fromisoformat(created_at).isoformat()
    return Entry(
        id=message_id,
        sender=sender,
        type=str(raw.get("type")),
        priority=str(raw.get("priority")),
        reply_to=raw.get("reply_to"),
        created_at=created_at,
        error=KEY_MISMATCH.format(what=f"message {message_id} from {sender}"),
    )


class Inbox:
    """Follow the agent's events and keep the messages addressed to it.

    Args:
        client: The agent's client (its key ring decrypts).
        announce: Told of each new message once it is cached; failures there are logged only.
        on_event: Told of each ``new_ref``, ``new_file`` and ``kv_update`` event of another agent
            (its type and data); failures there are logged only.
        slug: The agent's slug when the caller already has it; asked of ``GET /v1/me`` otherwise.
        on_device_keys: Told when a key ring may wait for this machine's device: with None each
            time the stream opens (a rotation made while it was down), with the devices named by
            each ``device_keys`` event; failures there are logged only.
        on_change: Told of the type of each ``new_ref``, ``new_file``, ``kv_update`` (this agent's
            own included) and ``reset`` event, so that a local copy knows what to refresh.
        stream_options: Settings for ``client.stream()`` (``poll_interval_s``, ...).
    """

    def __init__(
        self,
        client: AsyncClient,
        announce: Callable[[Entry], Awaitable[None]],
        *,
        on_event: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None,
        slug: str | None = None,
        on_device_keys: Callable[[list[str] | None], Awaitable[None]] | None = None,
        on_change: Callable[[str], None] | None = None,
        **stream_options: Any,
    ) -> None:
        self._client = client
        self._on_change = on_change
        self._announce = announce
        self._on_event = on_event
        self._on_device_keys = on_device_keys
        self._stream_options = stream_options
        self._entries: dict[str, Entry] = {}
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._stream: AsyncStream | None = None
        self._resume_after: int | None = None
        self._background: set[asyncio.Task[Any]] = set()
        #: The agent's slug: given, or once ``GET /v1/me`` answered.
        self.slug = slug
        #: True while the stream is open and every new message reaches the cache.
        self.synced = False
        #: True when the unread messages listed at start are all in the cache too.
        self.complete = False
        #: The last reason the stream could not be followed (one line), or None.
        self.problem: str | None = None

    @property
    def mode(self) -> str | None:
        """How the events arrive now: ``stream`` (SSE) or ``polling`` (the SDK's fallback)."""
        return self._stream.mode if self._stream is not None else None

    def start(self) -> None:
        """Start following the stream in a background task."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="nexysync-inbox")

    async def close(self) -> None:
        """Stop following and wait for background work to end."""
        tasks = [t for t in (self._task, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None
        self.synced = False

    # -- the background loop -------------------------------------------------------------

    async def _run(self) -> None:
        """Follow the stream for as long as the server runs; never die of a failure."""
        delay = RETRY_MIN_S
        while True:
            started = time.monotonic()
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except (AuthenticationError, PermissionDeniedError) as error:
                # A refused key does not heal by itself: stop until ns_auth replaces this inbox.
                await self._lose_sync(describe(error))
                logger.warning("inbox stopped: %s", self.problem)
                return
            except Exception as error:  # the loop must outlive any one failure; it logs and retries
                await self._lose_sync(describe(error, api_url=self._client.base_url))
                logger.warning("inbox stream failed, retrying in %.1f s: %s", delay, self.problem)
            else:
                await self._lose_sync("the event stream ended")
            if time.monotonic() - started > RETRY_MAX_S:
                delay = RETRY_MIN_S
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    async def _lose_sync(self, problem: str) -> None:
        self.synced = False
        self.problem = problem
        # Waiters stop waiting on the cache and fall back to the SDK's own wait.
        await self._notify_waiters()

    async def _follow(self) -> None:
        if self.slug is None:
            self.slug = (await self._client.me.get()).agent.slug
        # A new stream resumes after the last event the previous one delivered, so the
        # messages that arrived while it was down are still announced, in order.
        async with self._client.stream(last_event_id=self._resume_after, **self._stream_options) as stream:
            self._stream = stream
            try:
                # Position first, then the listing: a message stored in between is in one or both.
                await stream.open()
                await self._device_keys(None)
                await self._seed()
                self.synced, self.problem = True, None
                await self._notify_waiters()
                async for event in stream:
                    if event.type == "new_message":
                        await self._on_new_message(event)
                    elif event.type == "message_acked" and event.data.get("by") == self.slug:
                        self.mark(event.data.get("ids") or [], "acked")
                    elif event.type in SHARED_EVENTS:
                        self._changed_here(event.type)
                        await self._on_shared(event.type, event.data)
                    elif event.type == "device_keys":
                        await self._device_keys(list(event.data.get("device_ids") or []))
                    elif event.type == "reset":
                        # Events were lost: the listing is the truth again.
                        self._changed_here(event.type)
                        await self._seed()
                    await self._notify_waiters()
            finally:
                self._resume_after = stream.last_event_id

    async def _seed(self) -> None:
        page = await self._client.messages.list(status="unread", limit=PAGE).first_page()
        # Beyond one page the cache would miss some: then ``check`` asks the API instead.
        self.complete = page.next_cursor is None
        # A message the SDK could not decrypt (another project key) is skipped by the page, not
        # fatal to it: it is cached with its error, so ``check`` names it next to the others.
        entries = [Entry.of(message) for message in page.data]
        entries += [undecryptable_entry(error) for error in page.undecryptable]
        for entry in oldest_first(entries):
            if entry.id not in self._entries and entry.sender != self.slug:
                self._store(entry)

    def _addressed_to_me(self, data: dict[str, Any]) -> bool:
        if data.get("from") == self.slug:
            return False
        return bool(data.get("broadcast")) or data.get("to") == self.slug

    async def _on_new_message(self, event: AsyncStreamEvent) -> None:
        data = event.data
        message_id = str(data.get("id"))
        if not self._addressed_to_me(data):
            return
        if message_id in self._entries:
            # Listed at start (or fetched by a tool) already.
            return
        entry = Entry(
            id=message_id,
            sender=str(data.get("from")),
            type=str(data.get("type")),
            priority=str(data.get("priority")),
            reply_to=data.get("reply_to"),
            created_at=str(data.get("created_at")),
        )
        try:
            # Not marked read: the AI has not seen it yet. A small message came in the event (the
            # server recorded it delivered when it wrote the event); a larger one is fetched.
            entry.message = event.carried(self._client.key_ring) or await event.message(mark_read=False)
        except DecryptionError:
            entry.error = KEY_MISMATCH.format(what=f"message {message_id} from {entry.sender}")
        except APIError as error:
            # Leave it to be fetched when the AI reads it; the announcement still goes out.
            logger.warning("could not fetch new message %s: %s", message_id, describe(error))
        self._store(entry)
        await self._safe_announce(entry)

    async def _device_keys(self, device_ids: list[str] | None) -> None:
        if self._on_device_keys is None:
            return
        try:
            await self._on_device_keys(device_ids)
        except Exception:  # the ring in hand still works; the next event or start tries again
            logger.exception("could not take the key ring sealed to this machine")

    def _changed_here(self, kind: str) -> None:
        if self._on_change is not None:
            self._on_change(kind)

    async def _on_shared(self, kind: str, data: dict[str, Any]) -> None:
        if self._on_event is None or self.slug in (data.get("from"), data.get("updated_by")):
            return
        try:
            await self._on_event(kind, data)
        except Exception:  # an announcement is advisory: the tools still list what changed
            logger.exception("could not announce a %s event", kind)

    async def _safe_announce(self, entry: Entry) -> None:
        try:
            await self._announce(entry)
        except Exception:  # an announcement is advisory: the message stays cached for check/wait
            logger.exception("could not announce message %s", entry.id)

    def _store(self, entry: Entry) -> None:
        self._entries[entry.id] = entry
        if len(self._entries) > MAX_ENTRIES:
            # Dicts keep insertion order: drop the oldest entries the AI has already seen.
            seen = [key for key, value in self._entries.items() if value.state != "unread"]
            for key in seen[: len(self._entries) - MAX_ENTRIES] or list(self._entries)[:1]:
                del self._entries[key]

    async def _notify_waiters(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- what the tools ask ----------------------------------------------------------------

    def unread(self) -> list[Entry]:
        """Return the messages the AI has not read yet, oldest first."""
        # Sorted: a tool may cache a message (``remember``) before the listing adds older ones.
        return oldest_first(entry for entry in self._entries.values() if entry.state == "unread")

    def get(self, message_id: str) -> Entry | None:
        """Return the cached entry of a message, if any."""
        return self._entries.get(message_id)

    def remember(self, message: Message) -> None:
        """Cache a message fetched by a tool (so a later ``wait`` or ``check`` knows its state)."""
        if message.from_ == self.slug:
            return
        entry = self._entries.get(message.id)
        if entry is None:
            self._store(Entry.of(message))
        else:
            entry.message, entry.error = message, None

    def mark(self, ids: Iterable[str], state: str) -> None:
        """Set the state of cached messages (``read`` never undoes ``acked``)."""
        for message_id in ids:
            entry = self._entries.get(str(message_id))
            if entry is not None and not (state == "read" and entry.state == "acked"):
                entry.state = state

    def mark_read_on_server(self, message_id: str) -> None:
        """Mark a message read on the server in the background (the AI already has it)."""
        self._in_background(self._client.messages.mark_read([message_id]), f"mark message {message_id} read")

    def _in_background(self, work: Awaitable[Any], what: str) -> None:
        """Run a call to the server in a task of its own; a failure is logged (``could not <what>``)."""

        async def logged() -> None:
            try:
                await work
            except (APIError, DecryptionError) as error:
                logger.warning("could not %s on the server: %s", what, describe(error))

        task = asyncio.create_task(logged())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def wait_for(self, *, sender: str | None, reply_to: str | None, timeout: float) -> Entry | None:
        """Return the first matching message, waiting up to ``timeout`` seconds; None on timeout.

        Without ``reply_to`` only unread messages match; with it, any reply to that message does
        (it may have been read while the AI was busy). The caller marks the match read.
        """

        def match() -> Entry | None:
            for entry in self._entries.values():
                if sender is not None and entry.sender != sender:
                    continue
                if reply_to is not None:
                    if entry.reply_to == reply_to:
                        return entry
                elif entry.state == "unread":
                    return entry
            return None

        found: Entry | None = None

        def ready() -> bool:
            nonlocal found
            found = match()
            return found is not None or not self.synced

        async with self._changed:
            if not ready():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait_for(ready), timeout)
        return found
