"""Benchmark: send → Claude Code channel event in the session, against the stream's own push.

Starts an embedded database and one API process (uvicorn, one worker), a receiver's
``nexysync-mcp`` driven by a raw JSON-RPC client (as Claude Code drives it), and beside it a plain
SSE stream of the same receiver. It runs in rounds, alternating ``nexysync-mcp`` (stdin and
stdout served by the event loop's pipes) with the same server on mcp's own threaded stdio. For
each of N messages sent one after another it takes the start of ``POST /v1/messages`` as zero
and records when the stream read the ``new_message`` event and when the session got its
``notifications/claude/channel``. The channel has more to
do after the push: fetch the message (which records it delivered), decrypt it, write the
notification. Prints p50 and p99 of both, and of the difference per message (goal: p50 of the
difference at most 10 ms).

Then the quiet path of ``nexysync hook user-prompt-submit`` (nothing new): N runs as a
subprocess fed Claude Code's JSON, process start included, beside ``python -c pass``.

Run: ``python tests/bench/bench_channel.py [--messages 200] [--rounds 2] [--hook-runs 20] [--era 2025-11-25]``
(or ``tox -e bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _api import cpu_seconds, running_api, seed_keys

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from mcp_raw import LEGACY, MCP_COMMAND, MODERN, raw_mcp

from nexysync.crypto import KeyRing, new_key
from nexysync.keyfile import write_key_file
from nexysync_server.ids import new_id

PAYLOAD = "Please review the schema change in PR 42 before the release. " * 4


def _quantiles(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered):7.2f} ms   p99 {p99:7.2f} ms   max {ordered[-1]:7.2f} ms"


class StreamWatch:
    """The receiver's own ``GET /v1/stream``: when each ``new_message`` event was read."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self._client = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(10, read=None))
        self._key = api_key
        self.seen: dict[str, float] = {}
        self._arrived = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._open = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._open.wait(), 10)

    async def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self._key}"}
        async with self._client.stream("GET", "/v1/stream", headers=headers) as response:
            self._open.set()
            event, data = "", ""
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data = line[5:].strip()
                elif line == "" and data:
                    if event == "new_message":
                        at = time.monotonic()
                        async with self._arrived:
                            self.seen[json.loads(data)["data"]["id"]] = at
                            self._arrived.notify_all()
                    event, data = "", ""

    async def wait(self, message_id: str) -> float:
        async with asyncio.timeout(10), self._arrived:
            await self._arrived.wait_for(lambda: message_id in self.seen)
        return self.seen[message_id]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self._client.aclose()


#: mcp's own stdio transport (a worker thread per line, write and flush), for comparison.
THREADED = (
    sys.executable,
    "-c",
    "import anyio; from mcp.server.stdio import stdio_server; from nexysync_mcp.server import build_server, serve; "
    "anyio.run(serve, build_server(), stdio_server)",
)


@dataclass
class Figures:
    """What one transport's rounds measured."""

    push: list[float] = field(default_factory=list)
    channel: list[float] = field(default_factory=list)
    extra: list[float] = field(default_factory=list)
    mcp_cpu_s: float = 0.0
    messages: int = 0


async def _round(
    api: Any, workspace: Path, keys: dict[str, str], ring: KeyRing, project_id: str, era: str,
    command: tuple[str, ...], count: int, figures: Figures,
) -> None:  # fmt: skip
    """Send ``count`` messages (after 10 for warm-up) to a fresh session; add what was measured to ``figures``."""
    watch = StreamWatch(api.base_url, keys["receiver"])
    async with raw_mcp(workspace, era, command) as session, httpx.AsyncClient(base_url=api.base_url) as http:
        await session.live()
        await watch.start()
        headers = {"Authorization": f"Bearer {keys['sender']}"}
        cpu_before = 0.0
        for index in range(count + 10):
            if index == 10:
                cpu_before = cpu_seconds(session.process.pid)
            message_id = new_id()

            def seal(field: str, text: str, message_id: str = message_id) -> str:
                return ring.encrypt(
                    text.encode(), project_id=project_id, kind="message", record_id=message_id, field=field
                )

            body = {
                "id": message_id,
                "to": "receiver",
                "type": "request",
                "topic": seal("topic", f"review {index}"),
                "payload": seal("payload", PAYLOAD),
            }
            started = time.monotonic()
            sent = await http.post("/v1/messages", json=body, headers=headers)
            assert sent.status_code == 201, sent.text
            pushed_at = await watch.wait(message_id)
            note = await session.notification("notifications/claude/channel", {"message_id": message_id}, 10)
            told_at = note.at  # stamped with time.monotonic() when the line was read, like the stream's
            if index < 10:
                continue  # warm-up: connections, caches, the MCP server's first fetch
            figures.push.append(1000 * (pushed_at - started))
            figures.channel.append(1000 * (told_at - started))
            figures.extra.append(1000 * (told_at - pushed_at))
        figures.mcp_cpu_s += cpu_seconds(session.process.pid) - cpu_before
        figures.messages += count
        await watch.close()


async def bench_channel(messages: int, rounds: int, era: str) -> None:
    """Print send → stream push and send → channel event, p50 and p99, and their difference, per transport."""
    transports = {"nexysync-mcp (loop pipes)": (MCP_COMMAND,), "mcp's threaded stdio": THREADED}
    figures = {name: Figures() for name in transports}
    with running_api() as api, tempfile.TemporaryDirectory() as tmp:
        project_id, keys = seed_keys(api.base_url)
        key = new_key()
        workspace = Path(tmp)
        fields = {"api_key": keys["receiver"], "enc_key": base64.b64encode(key).decode(), "api_url": api.base_url}
        write_key_file(workspace, {**fields, "project_id": project_id})
        # Interleaved rounds, so that the machine's load falls on both transports alike.
        for _ in range(rounds):
            for name, command in transports.items():
                per_round = max(1, messages // rounds)
                await _round(api, workspace, keys, KeyRing([key]), project_id, era, command, per_round, figures[name])
    print(f"send -> event, {messages} messages one after another per transport, {rounds} rounds, protocol {era}:")
    for name, measured in figures.items():
        print(f"  {name}:")
        print(f"    stream push (GET /v1/stream)      {_quantiles(measured.push)}")
        print(f"    channel event in the session      {_quantiles(measured.channel)}")
        print(f"    channel minus push, per message   {_quantiles(measured.extra)}   (goal: p50 <= 10 ms)")
        # CPU time grows less with the machine's load than waiting does: about the least the
        # channel adds on an idle machine.
        print(f"    nexysync-mcp CPU per message      {1000 * measured.mcp_cpu_s / measured.messages:.2f} ms")


def bench_hook(runs: int) -> None:
    """Print the quiet path of ``nexysync hook user-prompt-submit`` beside ``python -c pass`` (process starts too)."""
    with running_api() as api, tempfile.TemporaryDirectory() as tmp:
        project_id, keys = seed_keys(api.base_url)
        workspace = Path(tmp)
        fields = {"api_key": keys["receiver"], "enc_key": base64.b64encode(new_key()).decode(), "api_url": api.base_url}
        write_key_file(workspace, {**fields, "project_id": project_id})
        event = json.dumps({"hook_event_name": "UserPromptSubmit", "cwd": str(workspace), "prompt": "next?"})
        hook = [str(Path(sys.executable).with_name("nexysync")), "hook", "user-prompt-submit"]

        def timed(command: list[str]) -> float:
            started = time.perf_counter()
            done = subprocess.run(command, input=event, capture_output=True, text=True, check=True)
            assert done.stdout == "", done.stdout
            return 1000 * (time.perf_counter() - started)

        timed(hook)
        quiet = [timed(hook) for _ in range(runs)]
        bare = [timed([sys.executable, "-c", "pass"]) for _ in range(runs)]
    print(f"nexysync hook user-prompt-submit, nothing new, {runs} runs (goal: under 300 ms):")
    print(f"  hook (one HTTP call, local cursor)  {_quantiles(quiet)}")
    print(f"  python -c pass (process start)      {_quantiles(bare)}")


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--hook-runs", type=int, default=20)
    parser.add_argument("--era", choices=[LEGACY, MODERN], default=LEGACY)
    options, _ = parser.parse_known_args()
    asyncio.run(bench_channel(options.messages, options.rounds, options.era))
    bench_hook(options.hook_runs)


if __name__ == "__main__":
    main()
