"""Serve MCP over stdin and stdout through the event loop's own pipes, without worker threads.

mcp's ``stdio_server`` reads and writes through ``anyio.wrap_file``: every line read, every
message written and every flush is a hop to a worker thread and back. A new message's channel
event is the one thing here that must reach the AI tool fast, and on a busy machine those hops
cost more than the rest of its way. When stdin and stdout are pipes (as when an AI tool starts
the server), they are served through ``asyncio`` pipe transports instead, handed to mcp's
``stdio_server`` as its streams; anything else (a file, a terminal that asyncio refuses) keeps
mcp's own threaded files.

Like mcp's transport, this points fd 0 at the null device and fd 1 at stderr while serving, so
stray output of a handler or a child process cannot corrupt the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import AsyncIterator
from typing import Any

from mcp.server.stdio import stdio_server

__all__ = ["serve_stdio"]


class _Lines:
    """Lines of the client's input, as mcp's stdin reader iterates them."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> str:
        line = await self._reader.readline()
        if not line:
            raise StopAsyncIteration
        return line.decode("utf-8", errors="replace")


class _Output:
    """The client's output, with the ``write`` and ``flush`` mcp's stdout writer calls."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def write(self, text: str) -> None:
        self._writer.write(text.encode("utf-8"))

    async def flush(self) -> None:
        # Waits only while the client is not reading (the pipe is full).
        await self._writer.drain()


def _is_pipe(fd: int) -> bool:
    # Only pipes and sockets: the loop makes them non-blocking, which on a terminal would also
    # hit the shell that shares it.
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


async def _pipes() -> tuple[_Lines, _Output, asyncio.StreamWriter] | None:
    """Connect private duplicates of fds 0 and 1 to the loop; None when they are not both pipes."""
    if not (_is_pipe(0) and _is_pipe(1)):
        return None
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(os.dup(0), "rb", 0))
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, os.fdopen(os.dup(1), "wb", 0))
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    return _Lines(reader), _Output(writer), writer


@contextlib.asynccontextmanager
async def serve_stdio() -> AsyncIterator[tuple[Any, Any]]:
    """Yield mcp's read and write streams over stdin and stdout (pipes without threads when it can)."""
    pipes = await _pipes()
    if pipes is None:
        async with stdio_server() as streams:
            yield streams
        return
    lines, output, writer = pipes
    saved = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    os.close(null)
    try:
        async with stdio_server(stdin=lines, stdout=output) as streams:  # type: ignore[arg-type]
            yield streams
    finally:
        with contextlib.suppress(Exception):
            await writer.drain()
        writer.close()
        os.dup2(saved[0], 0)
        os.dup2(saved[1], 1)
        for fd in saved:
            os.close(fd)
        # The descriptions are shared with the private duplicates the loop made non-blocking.
        os.set_blocking(0, True)
        os.set_blocking(1, True)
