"""The MCP tools: ``ns_auth``, ``ns_meta`` and ``ns_message`` here, the shared state in ``sharing``.

Plaintext in and out; the SDK encrypts.

``ns_meta`` and ``ns_message`` take one ``action`` and a few flat optional parameters, so the whole
``tools/list`` answer stays small; results are compact JSON an AI reads at a glance.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from nexysync import APIError, DecryptionError, KeyFileError
from nexysync_mcp.agent import AgentLink, credentials_from_arguments
from nexysync_mcp.arguments import Arguments, Param, ToolSpec, required_action
from nexysync_mcp.errors import KEY_MISMATCH, ToolFailure, describe
from nexysync_mcp.inbox import Entry, Inbox, oldest_first, undecryptable_entry
from nexysync_mcp.output import dumps
from nexysync_mcp.output import iso_time as _time
from nexysync_mcp.sharing import SPECS as SHARING_SPECS
from nexysync_mcp.sharing import Sharing, undecryptable_lines

if TYPE_CHECKING:
    from nexysync_generated.models import Message, RecipientPresence

__all__ = ["SPECS", "Progress", "Reply", "Tools", "delivery_note", "dumps", "message_view", "preview_view"]

#: Reports progress of the current tool call: ``(progress, total, message)``; a no-op when the
#: caller gave no progress token.
Progress = Callable[[float, float | None, str | None], Awaitable[None]]
_T = TypeVar("_T")
_PROGRESS: contextvars.ContextVar[Progress | None] = contextvars.ContextVar("nexysync_progress", default=None)

logger = logging.getLogger(__name__)

META_ACTIONS = ("whoami", "agents", "presence", "quota", "update_role")
MESSAGE_ACTIONS = ("send", "broadcast", "check", "read", "ack", "thread", "react", "pin", "unpin", "wait", "status")
TYPES = ("request", "response", "notification")
PRIORITIES = ("normal", "urgent", "blocking")
PREVIEW_CHARS = 120
CHECK_LIMIT = 50
#: Under the 60 s that many MCP clients allow a tool call; longer waits stay allowed.
WAIT_DEFAULT_S = 50.0
WAIT_MAX_S = 600.0
#: Progress is reported this often during a wait (more often in a short one).
PROGRESS_EVERY_S = 5.0

SPECS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="ns_auth",
        description=(
            "Set this agent's NexySync keys for this session, when no .nexysync/key was found "
            "(ask the user for them). Not saved to disk."
        ),
        params=(
            Param("api_key", "Agent API key (nsync_...)."),
            Param("enc_key", "Project encryption key: base64 of 32 bytes."),
            Param("api_url", "API root URL; default: the configured one."),
        ),
        required=("api_key", "enc_key"),
    ),
    ToolSpec(
        name="ns_meta",
        description=(
            "This agent and its project. whoami: identity and push state; agents: directory; "
            "presence: who is online; quota: usage and limits; update_role: set this agent's role."
        ),
        params=(
            Param("action", "What to do.", enum=META_ACTIONS),
            Param("role", "New role (update_role)."),
        ),
    ),
    ToolSpec(
        name="ns_message",
        description=(
            "End-to-end encrypted messages between the project's agents. "
            "send: to, topic, payload; broadcast: topic, payload to all; "
            "check: unread messages with previews; read: full message by id (marks it read); "
            "ack: mark ids done; thread: the thread of id; react: emoji on id; pin/unpin: id; "
            "wait: block until an unread message (from `from`) or a reply to `reply_to` arrives, "
            "or timeout seconds pass; status: whether id was delivered, read, acked per recipient."
        ),
        params=(
            Param("action", "What to do.", enum=MESSAGE_ACTIONS),
            Param("to", "Recipient agent slug (send)."),
            Param("topic", "Short subject."),
            Param("payload", "Message body."),
            Param("type", "Default: response with reply_to, else notification.", enum=TYPES),
            Param("priority", "Default: normal.", enum=PRIORITIES),
            Param("reply_to", "Id of the message answered (send); wait for its reply (wait)."),
            Param("id", "Message id (read, thread, react, pin, unpin, status)."),
            Param("ids", "Message ids (ack).", type="array"),
            Param("emoji", "Reaction (react)."),
            Param("from", "Only messages from this agent slug (check, wait)."),
            Param("timeout", f"Seconds to wait (wait), default {WAIT_DEFAULT_S:g}, max {WAIT_MAX_S:g}.", type="number"),
        ),
    ),
    *SHARING_SPECS,
)


@dataclass(frozen=True)
class Reply:
    """What a tool call answers: text for the AI, and whether it is an error."""

    text: str
    is_error: bool = False


def message_view(message: Message) -> dict[str, Any]:
    """Return a message as the AI sees it: what is set, nothing that is empty."""
    view: dict[str, Any] = {"id": message.id, "from": message.from_}
    view.update({"broadcast": True} if message.broadcast else {"to": message.to})
    view.update(type=message.type.value, priority=message.priority.value)
    if message.reply_to:
        view["reply_to"] = message.reply_to
    view.update(topic=message.topic, payload=message.payload)
    if message.metadata is not None:
        view["metadata"] = message.metadata
    view.update(status=message.status.value, created_at=_time(message.created_at))
    if message.pinned:
        view["pinned"] = True
    if message.reactions:
        view["reactions"] = [f"{r.emoji} {r.agent}" for r in message.reactions]
    return view


def preview_view(entry: Entry) -> dict[str, Any]:
    """Return one line of ``check``: sender, type, priority, topic and the start of the payload."""
    view: dict[str, Any] = {"id": entry.id, "from": entry.sender, "type": entry.type, "priority": entry.priority}
    if entry.reply_to:
        view["reply_to"] = entry.reply_to
    if entry.message is not None and entry.message.broadcast:
        view["broadcast"] = True
    if entry.message is not None:
        payload = entry.message.payload
        cut = payload[:PREVIEW_CHARS] + ("…" if len(payload) > PREVIEW_CHARS else "")
        view.update(topic=entry.message.topic, preview=cut)
    elif entry.error:
        view["error"] = entry.error
    view["created_at"] = entry.created_at
    return view


class Tools:
    """Serve the tool calls of one MCP session.

    Args:
        link: The agent's client and inbox.
    """

    def __init__(self, link: AgentLink) -> None:
        self._link = link
        sharing = Sharing(link)
        self._handlers: dict[str, Callable[[Mapping[str, Any]], Awaitable[str]]] = {
            "ns_auth": self._auth,
            "ns_meta": self._meta,
            "ns_message": self._message,
            "ns_kv": sharing.kv,
            "ns_ref": sharing.ref,
            "ns_file": sharing.file,
        }

    async def call(self, name: str, arguments: Mapping[str, Any], progress: Progress | None = None) -> Reply:
        """Run one tool call; any failure becomes a one-line error reply.

        Args:
            name: The tool.
            arguments: Its arguments as the client sent them.
            progress: Reports the call's progress to the client (``wait`` uses it).
        """
        try:
            handler = self._handlers[name]
        except KeyError:
            return Reply(f"Unknown tool {name!r}.", is_error=True)
        token = _PROGRESS.set(progress)
        try:
            return Reply(await handler(arguments))
        except ToolFailure as error:
            return Reply(str(error), is_error=True)
        except Exception as error:  # every failure reaches the AI as one line; the trace goes to the log
            if not isinstance(error, APIError | DecryptionError | KeyFileError):
                logger.exception("tool %s failed", name)
            api_url = self._link.credentials.api_url if self._link.credentials else None
            recipient = arguments.get("to") if isinstance(arguments.get("to"), str) else None
            return Reply(describe(error, api_url=api_url, recipient=recipient), is_error=True)
        finally:
            _PROGRESS.reset(token)

    # -- ns_auth -------------------------------------------------------------------------------

    async def _auth(self, values: Mapping[str, Any]) -> str:
        args = Arguments("ns_auth", values)
        current = self._link.credentials.api_url if self._link.credentials else None
        credentials = credentials_from_arguments(
            args.required_text("api_key"), args.required_text("enc_key"), args.text("api_url"), current
        )
        me = await self._link.authenticate(credentials)
        return dumps({"authenticated": me.agent.slug, "project_id": me.project_id, "api_url": credentials.api_url})

    # -- ns_meta -------------------------------------------------------------------------------

    async def _meta(self, values: Mapping[str, Any]) -> str:
        action = required_action("ns_meta", values, META_ACTIONS)
        args = Arguments(action, values)
        client = self._link.require()
        if action == "whoami":
            me = await client.me.get()
            push = _push_state(self._link.inbox)
            return dumps(
                {
                    "agent": me.agent.slug,
                    "name": me.agent.name,
                    "role": me.agent.role,
                    "capabilities": me.agent.capabilities,
                    "project_id": me.project_id,
                    "api_url": client.base_url,
                    "keys_from": self._link.source,
                    "push": push,
                    "push_via": self._link.inbox.mode if self._link.inbox else None,
                }
            )
        if action == "agents":
            agents = [agent async for agent in client.agents.list()]
            return dumps(
                [
                    {
                        "slug": a.slug,
                        "name": a.name,
                        "role": a.role,
                        "last_seen_at": _time(a.last_seen_at) if a.last_seen_at else None,
                    }
                    for a in agents
                ]
            )
        if action == "presence":
            presence = await client.presence.list()
            return dumps(
                [{"agent": p.agent, "via": p.via.value, "last_seen_at": _time(p.last_seen_at)} for p in presence.data]
            )
        if action == "quota":
            usage = await client.quota.get()
            return dumps(usage.model_dump(mode="json", exclude={"project_id"}))
        role = args.required_text("role")
        me = await client.me.update(role=role)
        return dumps({"agent": me.agent.slug, "role": me.agent.role})

    # -- ns_message ----------------------------------------------------------------------------

    async def _message(self, values: Mapping[str, Any]) -> str:
        action = required_action("ns_message", values, MESSAGE_ACTIONS)
        args = Arguments(action, values)
        client = self._link.require()
        if action in ("send", "broadcast"):
            return await self._send(args, broadcast=action == "broadcast")
        if action == "check":
            return await self._check(args)
        if action == "read":
            return await self._read(args.required_text("id"))
        if action == "wait":
            return await self._wait(args)
        if action == "status":
            return await self._status(args.required_text("id"))
        if action == "ack":
            ids = args.strings("ids") or args.strings("id")
            if not ids:
                raise ToolFailure("`ids` is required for action=ack.")
            result = await client.messages.ack(ids)
            acked = [str(getattr(item, "root", item)) for item in result.acked]
            if self._link.inbox is not None:
                self._link.inbox.mark(acked, "acked")
            return dumps({"acked": acked, "not_found": result.not_found})
        message_id = args.required_text("id")
        if action == "thread":
            thread = await client.messages.thread(message_id)
            answer: dict[str, Any] = {"root_id": thread.root_id, "messages": [message_view(m) for m in thread.data]}
            # The SDK leaves out (and lists) the messages of a thread it cannot decrypt.
            skipped = getattr(thread, "undecryptable", [])
            if skipped:
                answer["undecryptable"] = undecryptable_lines(skipped)
            return dumps(answer)
        if action == "react":
            message = await client.messages.react(message_id, args.required_text("emoji"))
            return dumps({"id": message.id, "reactions": [f"{r.emoji} {r.agent}" for r in message.reactions]})
        message = await (client.messages.pin(message_id) if action == "pin" else client.messages.unpin(message_id))
        return dumps({"id": message.id, "pinned": message.pinned})

    async def _send(self, args: Arguments, *, broadcast: bool) -> str:
        client = self._link.require()
        reply_to = args.text("reply_to")
        message = await client.messages.send(
            None if broadcast else args.required_text("to"),
            broadcast=broadcast,
            topic=args.required_text("topic"),
            payload=args.required_text("payload"),
            type=args.choice("type", TYPES, "response" if reply_to else "notification") or "notification",
            priority=args.choice("priority", PRIORITIES),
            reply_to=reply_to,
        )
        sent: dict[str, Any] = {"id": message.id}
        sent.update({"broadcast": True} if broadcast else {"to": message.to})
        sent["type"] = message.type.value
        if message.reply_to:
            sent["reply_to"] = message.reply_to
        # Stored is all a send knows: the copies are queued until each recipient fetches them.
        sent["state"] = "queued"
        sent["note"] = delivery_note(message.recipients or [], broadcast=broadcast)
        return dumps(sent)

    async def _status(self, message_id: str) -> str:
        client = self._link.require()
        receipts = await client.messages.receipts(message_id)
        rows = []
        for receipt in receipts.data:
            row: dict[str, Any] = {"agent": receipt.agent, "state": str(receipt.state)}
            for step in ("delivered", "read", "acked"):
                when = getattr(receipt, f"{step}_at")
                if when is not None:
                    row[f"{step}_at"] = _time(when)
            rows.append(row)
        return dumps({"id": message_id, "receipts": rows, "summary": dict(Counter(row["state"] for row in rows))})

    async def _check(self, args: Arguments) -> str:
        client = self._link.require()
        sender = args.text("from")
        inbox = self._link.inbox
        if inbox is not None and inbox.synced and inbox.complete:
            entries = [e for e in inbox.unread() if sender is None or e.sender == sender]
        else:
            # The push cache is not trustworthy now (starting, or reconnecting): ask the API.
            page = await client.messages.list(status="unread", from_=sender, limit=CHECK_LIMIT).first_page()
            # A message the SDK could not decrypt is listed with its error, next to the others.
            listed = [Entry.of(message) for message in page.data]
            entries = oldest_first(listed + [undecryptable_entry(error) for error in page.undecryptable])
            if inbox is not None:
                for message in page.data:
                    inbox.remember(message)
        shown = entries[:CHECK_LIMIT]
        answer: dict[str, Any] = {"unread": len(entries), "messages": [preview_view(e) for e in shown]}
        if len(entries) > len(shown):
            answer["more"] = len(entries) - len(shown)
        return dumps(answer)

    async def _read(self, message_id: str) -> str:
        inbox = self._link.inbox
        entry = inbox.get(message_id) if inbox is not None else None
        if entry is not None:
            return await self._deliver(entry)
        message = await self._fetch(message_id)
        return dumps(message_view(message))

    async def _fetch(self, message_id: str) -> Message:
        """Fetch a message (which marks it read on the server) and cache it as read."""
        client = self._link.require()
        try:
            message = await client.messages.get(message_id)
        except DecryptionError as error:
            raise ToolFailure(KEY_MISMATCH.format(what=f"message {message_id}")) from error
        if self._link.inbox is not None:
            self._link.inbox.remember(message)
            self._link.inbox.mark([message.id], "read")
        return message

    async def _deliver(self, entry: Entry) -> str:
        """Return a cached message in full and mark it read (on the server too, in the background)."""
        inbox = self._link.inbox
        if entry.error:
            # Delivered once as an error: a later wait must not stop at it again.
            if inbox is not None:
                inbox.mark([entry.id], "read")
            raise ToolFailure(entry.error)
        if entry.message is None:
            return dumps(message_view(await self._fetch(entry.id)))
        if inbox is not None and entry.state == "unread":
            inbox.mark([entry.id], "read")
            inbox.mark_read_on_server(entry.id)
        view = message_view(entry.message)
        view["status"] = entry.state
        return dumps(view)

    async def _wait(self, args: Arguments) -> str:
        client = self._link.require()
        sender, reply_to = args.text("from"), args.text("reply_to")
        timeout = args.number("timeout", default=WAIT_DEFAULT_S, low=0, high=WAIT_MAX_S)
        deadline = time.monotonic() + timeout
        inbox = self._link.inbox
        if inbox is not None and inbox.synced:
            entry = await _with_progress(inbox.wait_for(sender=sender, reply_to=reply_to, timeout=timeout), timeout)
            if entry is not None:
                return await self._deliver(entry)
            if inbox.synced:
                return f"No matching message arrived within {timeout:g} s."
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return f"No matching message arrived within {timeout:g} s."
        # No live cache (starting, or the stream is reconnecting): the SDK waits on its own stream.
        try:
            message = await _with_progress(
                client.messages.wait(reply_to=reply_to, from_=sender, timeout=remaining), timeout
            )
        except TimeoutError:
            return f"No matching message arrived within {timeout:g} s."
        if inbox is not None:
            inbox.remember(message)
        return dumps(message_view(message))


async def _with_progress(waiting: Awaitable[_T], timeout: float) -> _T:
    """Await ``waiting``, reporting progress every few seconds (when the caller asked for progress)."""
    progress = _PROGRESS.get()
    if progress is None:
        return await waiting
    task = asyncio.ensure_future(waiting)
    every = min(PROGRESS_EVERY_S, max(0.5, timeout / 4))
    started = time.monotonic()
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=every)
            if done:
                return task.result()
            waited = time.monotonic() - started
            await progress(round(waited, 1), timeout, f"waiting for a message: {waited:.0f} s of {timeout:g} s")
    finally:
        task.cancel()


def _seen(when: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """Say when an agent was last seen, as people say it ("last seen 12 min ago")."""
    if when is None:
        return "never seen yet"
    seconds = ((now or dt.datetime.now(dt.UTC)) - when).total_seconds()
    if seconds < 90:
        return "last seen just now"
    if seconds < 90 * 60:
        return f"last seen {seconds / 60:.0f} min ago"
    if seconds < 36 * 3600:
        return f"last seen {seconds / 3600:.0f} h ago"
    return f"last seen {seconds / 86400:.0f} days ago"


def delivery_note(recipients: list[RecipientPresence], *, broadcast: bool, now: dt.datetime | None = None) -> str:
    """Say what a send did, in words: queued, and which recipients hear of it now.

    Never "sent" or "delivered": a recipient has the message only once its client fetched it
    (``status`` tells when).
    """
    online = [r.agent for r in recipients if r.online]
    offline = [f"{r.agent} ({_seen(r.last_seen_at, now)})" for r in recipients if not r.online]
    if not recipients:
        return "queued: no other agent is in the project yet"
    if not broadcast and len(recipients) == 1:
        (only,) = recipients
        if only.online:
            return f"queued: {only.agent} is online; it will be told now"
        return f"queued: {only.agent} is offline ({_seen(only.last_seen_at, now)}); it gets it when it connects"
    parts = []
    if online:
        parts.append(f"online, told now: {', '.join(online)}")
    if offline:
        parts.append(f"offline, get it when they connect: {', '.join(offline)}")
    agents = f"{len(recipients)} agent{'s' if len(recipients) != 1 else ''}"
    return f"queued for {agents}; " + "; ".join(parts)


def _push_state(inbox: Inbox | None) -> str:
    """Tell how new messages reach this server: ``live`` (streamed), or why not."""
    if inbox is None:
        return "off"
    if inbox.synced:
        return "live"
    return f"reconnecting ({inbox.problem})" if inbox.problem else "starting"
