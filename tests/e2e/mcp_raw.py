"""A raw JSON-RPC client for ``nexysync-mcp`` over stdio, the way Claude Code drives it.

The mcp package's own client drops notifications it does not know, such as Claude Code's
``notifications/claude/channel``; this one keeps every line the server writes, with its arrival
time, and speaks either protocol generation: the ``initialize`` handshake, or the 2026
per-request envelope opened by ``server/discover``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MCP_COMMAND = str(Path(sys.executable).with_name("nexysync-mcp"))
LEGACY = "2025-11-25"
MODERN = "2026-07-28"
CLIENT_INFO = {"name": "raw-jsonrpc-test", "version": "1"}


@dataclass
class Notification:
    """A notification the server sent, and when it arrived (``time.monotonic()``)."""

    method: str
    params: dict[str, Any]
    at: float


class RawMcp:
    """One ``nexysync-mcp`` process and the JSON-RPC lines exchanged with it.

    Args:
        process: The server process, with piped stdin and stdout.
        era: ``LEGACY`` (initialize handshake) or ``MODERN`` (per-request envelope).
    """

    def __init__(self, process: asyncio.subprocess.Process, era: str) -> None:
        self.process = process
        self.era = era
        self.notifications: list[Notification] = []
        self.opened: dict[str, Any] = {}
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._arrived = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            at = time.monotonic()
            message = json.loads(line)
            if "id" in message and ("result" in message or "error" in message):
                future = self._pending.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(message)
            elif "method" in message:
                async with self._arrived:
                    self.notifications.append(Notification(message["method"], message.get("params") or {}, at))
                    self._arrived.notify_all()

    def _envelope(self, params: dict[str, Any] | None) -> dict[str, Any]:
        params = dict(params or {})
        if self.era == MODERN:
            params["_meta"] = {
                **params.get("_meta", {}),
                "io.modelcontextprotocol/protocolVersion": MODERN,
                "io.modelcontextprotocol/clientInfo": CLIENT_INFO,
                "io.modelcontextprotocol/clientCapabilities": {},
            }
        return params

    async def _write(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        await self.process.stdin.drain()

    async def request(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30) -> dict[str, Any]:
        """Send a request; return its result (fail on an error answer)."""
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        await self._write({"jsonrpc": "2.0", "id": request_id, "method": method, "params": self._envelope(params)})
        answer = await asyncio.wait_for(future, timeout)
        assert "error" not in answer, answer
        return answer["result"]

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        """Call a tool; return the ``tools/call`` result."""
        return await self.request("tools/call", {"name": tool, "arguments": arguments})

    async def open(self) -> dict[str, Any]:
        """Open the connection in its era; return what the server declared (InitializeResult or DiscoverResult)."""
        if self.era == LEGACY:
            params = {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": CLIENT_INFO}
            self.opened = await self.request("initialize", params)
            await self._write({"jsonrpc": "2.0", "method": "notifications/initialized"})
        else:
            self.opened = await self.request("server/discover")
        return self.opened

    async def live(self, deadline_s: float = 30) -> None:
        """Return once the server follows its event stream (``whoami`` says push is live)."""
        deadline = time.monotonic() + deadline_s
        while True:
            result = await self.call("ns_meta", action="whoami")
            text = result["content"][0]["text"]
            assert not result.get("isError"), text
            if json.loads(text).get("push") == "live":
                return
            assert time.monotonic() < deadline, "the MCP server's event stream never became live"
            await asyncio.sleep(0.05)

    async def notification(self, method: str, match: dict[str, str], timeout: float) -> Notification:
        """Return the first ``method`` notification whose ``params.meta`` holds ``match``, waiting up to ``timeout``."""

        def found() -> Notification | None:
            for note in self.notifications:
                meta = note.params.get("meta") or {}
                if note.method == method and all(meta.get(k) == v for k, v in match.items()):
                    return note
            return None

        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: found() is not None)
        note = found()
        assert note is not None
        return note

    async def close(self) -> None:
        """End the process (closing stdin ends an MCP stdio server) and the reader."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def raw_mcp(workspace: Path, era: str, command: tuple[str, ...] = (MCP_COMMAND,)) -> AsyncIterator[RawMcp]:
    """Start ``nexysync-mcp`` in ``workspace`` and open a raw JSON-RPC connection in ``era``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NEXYSYNC_")}
    with (workspace / "mcp-raw.err").open("wb") as errors:
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=workspace,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=errors,
            limit=1 << 22,
        )
        client = RawMcp(process, era)
        try:
            await client.open()
            yield client
        finally:
            await client.close()
