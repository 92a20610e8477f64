"""The ``nexysync-mcp`` stdio server: the NexySync tools for an AI tool, built on the ``nexysync`` SDK.

Run it in the agent's workspace: it loads ``.nexysync/key`` from the working directory or a
parent (or ``--key-file``, or the ``NEXYSYNC_*`` env vars); without any, it still starts and
``ns_auth`` takes the keys.

It is the MCP SDK's low-level :class:`~mcp.server.lowlevel.Server` with one handler per method:
the tools are :data:`nexysync_mcp.tools.TOOLS` records (their schemas are declared as they are,
their calls go to the :class:`~nexysync_mcp.tools.Toolbox`), one resource (the inbox), the
``subscriptions/listen`` streams of the 2026 protocol, ``logging/setLevel``, and Claude Code's
``claude/channel`` experimental capability in both protocol generations' handshakes.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    CallToolRequestParams,
    CallToolResult,
    ContentBlock,
    DiscoverResult,
    ListResourcesResult,
    ListToolsResult,
    PaginatedRequestParams,
    ReadResourceRequestParams,
    ReadResourceResult,
    RequestParams,
    Resource,
    SetLevelRequestParams,
    TextContent,
    TextResourceContents,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from nexysync_mcp import __version__
from nexysync_mcp.agent import AgentLink
from nexysync_mcp.notify import CHANNEL_CAPABILITY, INBOX_URI, Notifier
from nexysync_mcp.output import structured
from nexysync_mcp.stdio import serve_stdio
from nexysync_mcp.tools import TOOLS, Toolbox

__all__ = ["build_server", "main", "serve"]

INSTRUCTIONS = (
    "NexySync connects you with the other AI agents of this project through end-to-end encrypted "
    "messages. A message from another agent may arrive in your context as a "
    '<channel source="nexysync" message_id=... from=... type=... priority=...> tag: its body is '
    "that agent's message (sender, type, priority, topic, payload), not the user's words; act on it "
    "as a request from a colleague. Answer it with ns_message action=send to=<from> "
    "reply_to=<message_id>; if the body was cut, read it whole with ns_message action=read "
    "id=<message_id>. Without channels, check your inbox with ns_message action=check, and use "
    "action=wait to block until a reply arrives; action=status id=... shows whether your message was "
    "delivered, read or acked. Share state with ns_kv, code with ns_ref and files with ns_file."
)

INBOX = Resource(uri=INBOX_URI, name="inbox", description="Unread NexySync messages.", mime_type="application/json")

Context = ServerRequestContext[Any, Any]


def build_server(key_file: Path | None = None, **stream_options: Any) -> Server[Any]:
    """Build the MCP server (not started); run it with :func:`serve`.

    Args:
        key_file: An explicit key file; by default ``.nexysync/key`` is searched upward.
        **stream_options: Settings for the inbox's SDK stream.
    """
    bus = InMemorySubscriptionBus()
    notifier = Notifier(bus)
    link = AgentLink(notifier.announce, on_event=notifier.announce_event, **stream_options)
    toolbox = Toolbox(link)

    @asynccontextmanager
    async def lifespan(_: Server[Any]) -> AsyncIterator[None]:
        link.start_from_files(key_file)
        try:
            yield
        finally:
            await link.close()

    async def list_tools(ctx: Context, params: PaginatedRequestParams | None) -> ListToolsResult:
        return ListToolsResult(tools=[tool.declaration() for tool in TOOLS])

    async def call_tool(ctx: Context, params: CallToolRequestParams) -> CallToolResult:
        # Progress is reported only to a caller that gave a progress token.
        asked = ctx.meta is not None and ctx.meta.get("progress_token") is not None
        reply = await toolbox.call(params.name, params.arguments or {}, ctx.session.report_progress if asked else None)
        # The answer's text is for older clients; the same value goes out structured.
        content: list[ContentBlock] = [TextContent(type="text", text=reply.text)]
        if reply.is_error:
            return CallToolResult(content=content, is_error=True)
        return CallToolResult(content=content, structured_content=structured(reply.text), is_error=False)

    async def list_resources(ctx: Context, params: PaginatedRequestParams | None) -> ListResourcesResult:
        return ListResourcesResult(resources=[INBOX])

    async def read_resource(ctx: Context, params: ReadResourceRequestParams) -> ReadResourceResult:
        if str(params.uri) != INBOX_URI:
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown resource: {params.uri}", data={"uri": params.uri})
        reply = await toolbox.call("ns_message", {"action": "check"})
        contents = TextResourceContents(uri=INBOX_URI, text=reply.text, mime_type=INBOX.mime_type)
        return ReadResourceResult(contents=[contents])

    server: Server[Any] = Server(
        "nexysync",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_read_resource=read_resource,
        on_subscribe_resource=notifier.subscribe,
        on_unsubscribe_resource=notifier.unsubscribe,
        # Clients of the 2026 protocol hear of the inbox's updates on these streams, fed from the bus.
        on_subscriptions_listen=ListenHandler(bus),
    )

    async def discover(ctx: Context, params: RequestParams) -> DiscoverResult:
        # The 2026 handshake: what the default answers, plus Claude Code's channel.
        capabilities = server.get_capabilities(
            experimental_capabilities=CHANNEL_CAPABILITY, protocol_version=ctx.protocol_version
        )
        return DiscoverResult(
            supported_versions=list(MODERN_PROTOCOL_VERSIONS), capabilities=capabilities, instructions=INSTRUCTIONS
        )

    server.add_request_handler("server/discover", RequestParams, discover)
    # A server that sends log notifications declares the logging capability, which follows from
    # serving ``logging/setLevel`` (registered here: the constructor's argument warns it is deprecated).
    server.add_request_handler("logging/setLevel", SetLevelRequestParams, notifier.set_level)
    server.middleware.append(notifier.middleware)
    return server


async def serve(
    server: Server[Any], streams: Callable[[], AbstractAsyncContextManager[tuple[Any, Any]]] = serve_stdio
) -> None:
    """Serve one client over stdin and stdout.

    Args:
        server: The server :func:`build_server` built.
        streams: Opens the read and write streams: by default pipes served by the event loop
            (see :mod:`nexysync_mcp.stdio`); a benchmark passes mcp's own ``stdio_server``.
    """
    options = server.create_initialization_options(experimental_capabilities=CHANNEL_CAPABILITY)
    async with streams() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, options)


def main(argv: list[str] | None = None) -> None:
    """Run the stdio MCP server (the ``nexysync-mcp`` command)."""
    parser = argparse.ArgumentParser(prog="nexysync-mcp", description="NexySync MCP server (stdio).")
    parser.add_argument("--key-file", type=Path, help="agent key file (default: .nexysync/key, searched upward)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    options = parser.parse_args(argv)
    # stdout carries the protocol, so logs go to stderr: warnings (INFO would log every HTTP
    # request the SDK makes, for every tool call), and ours from INFO.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("nexysync_mcp").setLevel(logging.INFO)
    server = build_server(options.key_file)
    anyio.run(serve, server)
