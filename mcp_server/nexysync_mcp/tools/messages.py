"""``ns_message``: end-to-end encrypted messages between the project's agents.

Plaintext in and out; the SDK encrypts. ``check``, ``read`` and ``wait`` answer from the inbox's
push cache when it is live, and ask the API when it is not (starting, or reconnecting).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from mcp_types import ToolAnnotations

from nexysync import DecryptionError, KeyFileError
from nexysync.framing import one_line
from nexysync.keyfile import KEY_DIR
from nexysync.search import KINDS, SearchHit, fts_query, parse_since
from nexysync_mcp.errors import KEY_MISMATCH, ToolFailure
from nexysync_mcp.inbox import Entry, oldest_first, undecryptable_entry
from nexysync_mcp.output import dumps, iso_time, undecryptable_lines
from nexysync_mcp.tools.record import Answer, Call, Param, Progress, Tool
from nexysync_mcp.workspace import Workspace

if TYPE_CHECKING:
    from nexysync_generated.models import Message, RecipientPresence

__all__ = ["TOOL", "delivery_note", "message_view", "preview_view"]

_T = TypeVar("_T")

TYPES = ("request", "response", "notification")
PRIORITIES = ("normal", "urgent", "blocking")
PREVIEW_CHARS = 120
#: A topic is one line: at most this many characters in a list, and in a message read whole.
TOPIC_CHARS = 200
READ_TOPIC_CHARS = 2000
#: Payload characters a read shows (a message's body is at most 1 MiB; the AI's context is not).
READ_PAYLOAD_CHARS = 64_000
CHECK_LIMIT = 50
#: Under the 60 s that many MCP clients allow a tool call; longer waits stay allowed.
WAIT_DEFAULT_S = 50.0
WAIT_MAX_S = 600.0
#: Progress is reported this often during a wait (more often in a short one).
PROGRESS_EVERY_S = 5.0


def message_view(message: Message) -> dict[str, Any]:
    """Return a message as the AI sees it: what is set, nothing that is empty."""
    view: dict[str, Any] = {"id": message.id, "from": message.from_}
    view.update({"broadcast": True} if message.broadcast else {"to": message.to})
    view.update(type=message.type.value, priority=message.priority.value)
    if message.reply_to:
        view["reply_to"] = message.reply_to
    payload = message.payload
    view["topic"] = one_line(message.topic, READ_TOPIC_CHARS)
    view["payload"] = payload[:READ_PAYLOAD_CHARS]
    if len(payload) > READ_PAYLOAD_CHARS:
        view["payload_cut"] = f"{READ_PAYLOAD_CHARS:,} of {len(payload):,} characters shown"
    if message.metadata is not None:
        view["metadata"] = message.metadata
    view.update(status=message.status.value, created_at=iso_time(message.created_at))
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
        view.update(
            topic=one_line(entry.message.topic, TOPIC_CHARS), preview=one_line(entry.message.payload, PREVIEW_CHARS)
        )
    elif entry.error:
        view["error"] = entry.error
    view["created_at"] = entry.created_at
    return view


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


# -- sending -------------------------------------------------------------------------------------


async def _send(call: Call, *, broadcast: bool) -> str:
    args = call.args
    reply_to = args.text("reply_to")
    message = await call.client.messages.send(
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


async def send(call: Call) -> str:
    """Send a message to one agent."""
    return await _send(call, broadcast=False)


async def broadcast(call: Call) -> str:
    """Send a message to every other agent of the project."""
    return await _send(call, broadcast=True)


async def status(call: Call) -> str:
    """Per recipient: whether a message was delivered, read, acked, and when."""
    message_id = call.args.required_text("id")
    receipts = await call.client.messages.receipts(message_id)
    rows = []
    for receipt in receipts.data:
        row: dict[str, Any] = {"agent": receipt.agent, "state": str(receipt.state)}
        for step in ("delivered", "read", "acked"):
            when = getattr(receipt, f"{step}_at")
            if when is not None:
                row[f"{step}_at"] = iso_time(when)
        rows.append(row)
    return dumps({"id": message_id, "receipts": rows, "summary": dict(Counter(row["state"] for row in rows))})


# -- reading -------------------------------------------------------------------------------------


async def check(call: Call) -> str:
    """The unread messages, with previews."""
    client, inbox = call.client, call.link.inbox
    sender = call.args.text("from")
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


async def read(call: Call) -> str:
    """A message in full (which marks it read)."""
    message_id = call.args.required_text("id")
    inbox = call.link.inbox
    entry = inbox.get(message_id) if inbox is not None else None
    if entry is not None:
        return await _deliver(call, entry)
    return dumps(message_view(await _fetch(call, message_id)))


async def _fetch(call: Call, message_id: str) -> Message:
    """Fetch a message (which marks it read on the server) and cache it as read."""
    try:
        message = await call.client.messages.get(message_id)
    except DecryptionError as error:
        raise ToolFailure(KEY_MISMATCH.format(what=f"message {message_id}")) from error
    inbox = call.link.inbox
    if inbox is not None:
        inbox.remember(message)
        inbox.mark([message.id], "read")
    return message


async def _deliver(call: Call, entry: Entry) -> str:
    """Return a cached message in full and mark it read (on the server too, in the background)."""
    inbox = call.link.inbox
    if entry.error:
        # Delivered once as an error: a later wait must not stop at it again.
        if inbox is not None:
            inbox.mark([entry.id], "read")
        raise ToolFailure(entry.error)
    if entry.message is None:
        return dumps(message_view(await _fetch(call, entry.id)))
    if inbox is not None and entry.state == "unread":
        inbox.mark([entry.id], "read")
        inbox.mark_read_on_server(entry.id)
    view = message_view(entry.message)
    view["status"] = entry.state
    return dumps(view)


async def wait(call: Call) -> str:
    """Block until a matching unread message arrives, or the timeout passes."""
    client, args, inbox = call.client, call.args, call.link.inbox
    sender, reply_to = args.text("from"), args.text("reply_to")
    timeout = args.number("timeout", default=WAIT_DEFAULT_S, low=0, high=WAIT_MAX_S)
    deadline = time.monotonic() + timeout
    nothing = f"No matching message arrived within {timeout:g} s."
    if inbox is not None and inbox.synced:
        waiting = inbox.wait_for(sender=sender, reply_to=reply_to, timeout=timeout)
        entry = await _with_progress(call.progress, waiting, timeout)
        if entry is not None:
            return await _deliver(call, entry)
        if inbox.synced:
            return nothing
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return nothing
    # No live cache (starting, or the stream is reconnecting): the SDK waits on its own stream.
    try:
        waiting_here = client.messages.wait(reply_to=reply_to, from_=sender, timeout=remaining)
        message = await _with_progress(call.progress, waiting_here, timeout)
    except TimeoutError:
        return nothing
    if inbox is not None:
        inbox.remember(message)
    return dumps(message_view(message))


async def _with_progress(progress: Progress | None, waiting: Awaitable[_T], timeout: float) -> _T:
    """Await ``waiting``, reporting progress every few seconds (when the caller asked for progress)."""
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


# -- searching -----------------------------------------------------------------------------------

#: Hits one search answers at most (the size budget may stop it sooner; ``more`` says so).
SEARCH_HITS = 12
#: A hit's body longer than this comes back as the passages around its matches.
SEARCH_BODY_CHARS = 1500
#: Characters of hits one answer carries at most; the rest is counted, not shown.
SEARCH_ANSWER_CHARS = 16_000
_FIELDS = {
    "message": ("topic", "payload", "metadata"),
    "ref": ("title", "content", "source"),
    "kv": ("key", "value", ""),
}
_READ_WITH = {
    "message": "ns_message action=read id={}",
    "ref": "ns_ref action=read id={}",
    "kv": "ns_kv action=get key={}",
}


def hit_view(hit: SearchHit) -> dict[str, Any]:
    """Return one search hit as the AI sees it: named as its kind names things, matches in **bold**."""
    title, body, extra = _FIELDS[hit.kind]
    view: dict[str, Any] = {"kind": hit.kind, "id": hit.id, "from": hit.sender, "at": iso_time(hit.at)}
    view.update({title: hit.title, body: hit.body})
    if extra and hit.extra:
        view[extra] = hit.extra
    if hit.version is not None:
        view["version"] = hit.version
    if hit.cut:
        view["cut"] = f"passages around the matches; read it whole with {_READ_WITH[hit.kind].format(hit.id)}"
    return view


async def search(call: Call) -> str:
    """Search what this agent can read, on this machine: the server never sees the words."""
    args, link = call.args, call.link
    query = args.required_text("query")
    try:
        fts_query(query)  # a query with no word is refused before any request
    except ValueError as error:
        raise ToolFailure(f"`query`: {error}.") from error
    kind = args.choice("kind", KINDS)
    since_text = args.text("since")
    try:
        since = parse_since(since_text) if since_text else None
    except ValueError as error:
        raise ToolFailure(f"{error}.") from error
    index = link.search_index()
    # What the stream did not bring since the last answer (all of it the first time).
    stale = set(link.stale) | (set() if link.inbox is not None and link.inbox.synced else {"message"})
    if stale:
        await index.aupdate(call.client, kinds=stale)
        link.stale -= stale
    # One more than shown, to tell whether there are more.
    hits = index.search(
        query, sender=args.text("from"), since=since, kind=kind, limit=SEARCH_HITS + 1, body_chars=SEARCH_BODY_CHARS
    )
    shown: list[dict[str, Any]] = []
    size = 0
    for hit in hits[:SEARCH_HITS]:
        view = hit_view(hit)
        size += len(dumps(view))
        if shown and size > SEARCH_ANSWER_CHARS:
            break
        shown.append(view)
    answer: dict[str, Any] = {"query": query, "hits": shown}
    if len(hits) > len(shown):
        answer["more"] = "more matches than shown: narrow the query (words, from, kind, since)"
    if not hits:
        answer["note"] = "no match in this agent's messages, references or kv entries"
    return dumps(answer)


# -- acting on a message -------------------------------------------------------------------------


async def ack(call: Call) -> str:
    """Mark messages done."""
    ids = call.args.strings("ids") or call.args.strings("id")
    if not ids:
        raise ToolFailure("`ids` is required for action=ack.")
    result = await call.client.messages.ack(ids)
    acked = [str(getattr(item, "root", item)) for item in result.acked]
    if call.link.inbox is not None:
        call.link.inbox.mark(acked, "acked")
    return dumps({"acked": acked, "not_found": result.not_found})


async def thread(call: Call) -> str:
    """The thread a message belongs to."""
    found = await call.client.messages.thread(call.args.required_text("id"))
    answer: dict[str, Any] = {"root_id": found.root_id, "messages": [message_view(m) for m in found.data]}
    # The SDK leaves out (and lists) the messages of a thread it cannot decrypt.
    skipped = getattr(found, "undecryptable", [])
    if skipped:
        answer["undecryptable"] = undecryptable_lines(skipped)
    return dumps(answer)


async def react(call: Call) -> str:
    """Put an emoji on a message."""
    message = await call.client.messages.react(call.args.required_text("id"), call.args.required_text("emoji"))
    return dumps({"id": message.id, "reactions": [f"{r.emoji} {r.agent}" for r in message.reactions]})


async def pin(call: Call) -> str:
    """Pin a message."""
    message = await call.client.messages.pin(call.args.required_text("id"))
    return dumps({"id": message.id, "pinned": message.pinned})


async def unpin(call: Call) -> str:
    """Unpin a message."""
    message = await call.client.messages.unpin(call.args.required_text("id"))
    return dumps({"id": message.id, "pinned": message.pinned})


async def ask_a2a(call: Call) -> str:
    """Ask an A2A agent outside NexySync; answer where its task ended, and its text."""
    args = call.args
    url = args.required_text("to")
    if not url.startswith(("http://", "https://")):
        raise ToolFailure("`to`: for a2a, the A2A agent's URL (http:// or https://).")
    text = args.required_text("payload")
    timeout = args.number("timeout", default=WAIT_DEFAULT_S, low=1, high=WAIT_MAX_S)
    try:
        import httpx
        from a2a.utils.errors import A2AError

        from nexysync_a2a.call import call as ask
        from nexysync_a2a.call import http_status, token_for
    except ImportError as error:
        raise ToolFailure("a2a needs the A2A extra where this server runs: pip install 'nexysync-mcp[a2a]'.") from error
    try:
        token = token_for(url, Workspace.locate(call.link.source).root / KEY_DIR)
    except (ValueError, KeyFileError) as error:
        raise ToolFailure(f"The A2A tokens file is unusable: {error}") from error
    asking = ask(url, text, token=token, task_id=args.text("reply_to"), timeout=timeout)
    try:
        result = await _with_progress(call.progress, asking, timeout)
    except (A2AError, httpx.HTTPError) as error:
        if http_status(error) == 401:
            raise ToolFailure(
                f"The A2A agent at {url} wants a bearer token: the user can put it in "
                '.nexysync/a2a-tokens.json ({"URL": "token"}, chmod 600).'
            ) from error
        raise ToolFailure(f"The A2A agent at {url} could not be asked: {error or type(error).__name__}.") from error
    answer = result.to_dict()
    if result.state == "input-required":
        answer["note"] = "It asks back: answer with action a2a, the same `to`, reply_to set to task_id."
    return dumps(answer)


TOOL = Tool(
    name="ns_message",
    description=(
        "Encrypted messages between the project's agents. "
        "send: to, topic, payload; broadcast: topic, payload to all; "
        "check: unread, with previews; read: id in full (marks it read); "
        "ack: mark ids done; thread: the thread of id; react: emoji on id; pin/unpin: id; "
        "wait: until an unread message (from `from`) or a reply to `reply_to`, or timeout; "
        "status: delivered, read, acked per recipient of id; "
        "search: your messages, refs, kv (on this machine); "
        "a2a: ask the A2A agent at URL `to` (payload; reply_to: task_id)."
    ),
    annotations=ToolAnnotations(
        title="NexySync: messages", read_only_hint=False, destructive_hint=False, idempotent_hint=False,
        open_world_hint=True,
    ),
    params=(
        Param("to", "Recipient slug (send); A2A agent URL (a2a)."),
        Param("topic", "Short subject."),
        Param("payload", "Message body."),
        Param("type", "Default: response with reply_to, else notification.", enum=TYPES),
        Param("priority", "Default: normal.", enum=PRIORITIES),
        Param("reply_to", "Message answered (send), awaited (wait); A2A task_id (a2a)."),
        Param("id", "Message id (read, thread, react, pin, unpin, status)."),
        Param("ids", "Message ids (ack).", type="array"),
        Param("emoji", "Reaction (react)."),
        Param("from", "Only from this agent slug (check, wait, search)."),
        Param("query", "Words, \"phrase\", a OR b, pre* (search)."),
        Param("kind", "Search only this.", enum=KINDS),
        Param("since", "Date or age, e.g. 7d (search)."),
        Param(
            "timeout", f"Seconds to wait (wait, a2a), default {WAIT_DEFAULT_S:g}, max {WAIT_MAX_S:g}.", type="number"
        ),
    ),
    answers={
        "id": Answer("string", "the message (send, read)"),
        "state": Answer("string", "queued until a recipient fetches it (send)"),
        "note": Answer("string", "what became of a send, in words"),
        "messages": Answer("array", "previews (check) or the thread"),
        "receipts": Answer("array", "per recipient: state and times (status)"),
        "hits": Answer("array", "matches, best first (search)"),
        "text": Answer("string", "the A2A agent's answer (a2a)"),
    },
    actions={
        "send": send, "broadcast": broadcast, "check": check, "read": read, "ack": ack, "thread": thread,
        "react": react, "pin": pin, "unpin": unpin, "wait": wait, "status": status, "search": search,
        "a2a": ask_a2a,
    },
)  # fmt: skip
