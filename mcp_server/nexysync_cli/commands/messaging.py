"""``nexysync send`` and ``nexysync tail``: act as the agent of the nearest ``.nexysync/key``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from nexysync import AsyncClient, AsyncStreamEvent, Client, DecryptionError
from nexysync_cli.context import Context
from nexysync_cli.errors import CliError
from nexysync_cli.keyfiles import agent_key_file, read_tail_position, write_tail_position
from nexysync_cli.output import Output, to_json
from nexysync_generated.models import Message, Receipt

__all__ = ["format_message", "format_receipts", "run_send", "run_status", "run_tail"]


def format_message(message: Message) -> str:
    """Return a message as people read it: one header line, then the payload indented."""
    when = message.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    to = "everyone" if message.broadcast else message.to
    flags = message.type.value
    if message.priority.value != "normal":
        flags += f", {message.priority.value}"
    reply = f" re {message.reply_to}" if message.reply_to else ""
    header = f"[{when}] {message.from_} -> {to} ({flags}){reply} {message.id}\n  {message.topic}"
    body = "\n".join(f"    {line}" for line in message.payload.splitlines() or [""])
    return f"{header}\n{body}"


def _clock(moment: Any) -> str:
    return moment.astimezone().strftime("%H:%M:%S") if moment is not None else "-"


def format_receipts(message_id: str, receipts: list[Receipt]) -> str:
    """Return a message's receipts as people read them: one line per recipient with each step's time."""
    if not receipts:
        return f"{message_id}: no recipients."
    width = max(len(receipt.agent) for receipt in receipts)
    lines = [f"{message_id}:"]
    for r in receipts:
        steps = f"delivered {_clock(r.delivered_at)}  read {_clock(r.read_at)}  acked {_clock(r.acked_at)}"
        lines.append(f"  {r.agent:<{width}}  {r.state!s:<9}  {steps}")
    return "\n".join(lines)


def _sent_summary(message: Message) -> str:
    """Say what a send did: stored, and who hears of it now; never "delivered" for what only queued."""
    target = "everyone" if message.broadcast else message.to
    recipients = message.recipients or []
    online = [r.agent for r in recipients if r.online]
    offline = [r.agent for r in recipients if not r.online]
    said = f"Queued {message.id} for {target}."
    if online:
        said += f" Online now, told at once: {', '.join(online)}."
    if offline:
        said += f" Offline (will get it when they connect): {', '.join(offline)}."
    return said + f" `nexysync status {message.id}` shows where it is."


def run_status(ctx: Context) -> int:
    """Show where each recipient's copy of a message is; with ``--wait STATE`` block until all got there."""
    args = ctx.args
    with Client.from_key_file(agent_key_file(ctx.args.key_file, ctx.args.dir)) as client:
        if args.wait:
            try:
                receipts = client.messages.wait_for(args.message_id, state=args.wait, timeout=args.timeout)
            except TimeoutError as exc:
                now = client.messages.receipts(args.message_id)
                ctx.output.warn(format_receipts(args.message_id, now.data))
                raise CliError(f"not every copy was {args.wait} within {args.timeout:g} s", code="TIMEOUT") from exc
        else:
            receipts = client.messages.receipts(args.message_id)
    ctx.output.result(receipts, format_receipts(args.message_id, receipts.data))
    return 0


def run_send(ctx: Context) -> int:
    """Send a message (encrypted with the project key) to an agent, or to all with ``--broadcast``."""
    args = ctx.args
    if (args.to is None) == (not args.broadcast):
        raise CliError("give either --to SLUG or --broadcast", code="NO_RECIPIENT")
    payload: str = sys.stdin.read() if args.payload == "-" else args.payload
    path = agent_key_file(ctx.args.key_file, ctx.args.dir)
    with Client.from_key_file(path) as client:
        message = client.messages.send(
            args.to,
            topic=args.topic,
            payload=payload,
            type=args.type,
            broadcast=args.broadcast,
            priority=args.priority,
            reply_to=args.reply_to,
        )
    ctx.output.result(message, _sent_summary(message))
    return 0


_SHOWN_IDS = 10_000


class _Tail:
    """One ``tail`` run: prints new messages and saves the position after each event."""

    def __init__(self, ctx: Context, path: Path) -> None:
        self.output: Output = ctx.output
        self.path = path
        self.count: int | None = ctx.args.count
        self.all_events: bool = ctx.args.events
        self.resume: bool = not ctx.args.no_resume
        self.printed = 0
        # A message can be announced twice (a retried send whose server died before telling):
        # the ids shown in this run, the oldest forgotten first.
        self._shown: dict[str, None] = {}

    def _show_message(self, message: Message, seq: int) -> None:
        data: dict[str, Any] = {"event": "new_message", "seq": seq, "message": to_json(message)}
        self.output.result(data, format_message(message))

    def _show_event(self, event: AsyncStreamEvent) -> None:
        data = {"event": event.type, "seq": event.seq, "data": event.data}
        summary = " ".join(f"{key}={value}" for key, value in sorted(event.data.items()))
        self.output.result(data, f"[{event.created_at.astimezone():%Y-%m-%d %H:%M:%S}] {event.type} {summary}")

    async def handle(self, event: AsyncStreamEvent) -> None:
        if event.type == "new_message":
            try:
                # A terminal tail is a watcher, not the agent: the message stays unread for it.
                message = await event.message(mark_read=False)
            except DecryptionError as exc:
                self.output.warn(f"message {event.data.get('id')} does not decrypt with this key ring: {exc}")
            else:
                if message.id in self._shown:
                    return
                self._shown[message.id] = None
                if len(self._shown) > _SHOWN_IDS:
                    del self._shown[next(iter(self._shown))]
                self._show_message(message, event.seq)
                self.printed += 1
        elif event.type == "reset":
            self.output.warn("some events expired before they could be shown; list the inbox to catch up")
        elif self.all_events:
            self._show_event(event)

    async def run(self) -> None:
        saved = read_tail_position(self.path) if self.resume else None
        async with AsyncClient.from_key_file(self.path) as client:
            stream = client.stream(last_event_id=saved)
            async with stream:
                await stream.open()
                if stream.last_event_id is not None:
                    write_tail_position(self.path, stream.last_event_id)
                where = f"resuming after event {saved}" if saved is not None else "new messages from now on"
                me = await client.me.get()
                self.output.progress(f"Listening as {me.agent.slug} ({where}); Ctrl-C stops.")
                async for event in stream:
                    await self.handle(event)
                    if stream.last_event_id is not None:
                        write_tail_position(self.path, stream.last_event_id)
                    if self.count is not None and self.printed >= self.count:
                        return


def run_tail(ctx: Context) -> int:
    """Print the agent's new messages as they arrive, decrypted, resuming where the last run stopped."""
    path = agent_key_file(ctx.args.key_file, ctx.args.dir)
    tail = _Tail(ctx, path)
    timeout: float | None = ctx.args.timeout

    async def bounded() -> None:
        async with asyncio.timeout(timeout):
            await tail.run()

    try:
        asyncio.run(bounded())
    except TimeoutError as exc:
        if tail.count is not None and tail.printed < tail.count:
            raise CliError(
                f"timed out after {timeout:g} s with {tail.printed} of {tail.count} message(s)", code="TIMEOUT"
            ) from exc
    return 0
