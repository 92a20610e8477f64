"""The ``nexysync-mcp`` stdio server: the NexySync tools for an AI tool, built on the ``nexysync`` SDK.

Run it in the agent's workspace: it loads ``.nexysync/key`` from the working directory or a
parent (or ``--key-file``, or the ``NEXYSYNC_*`` env vars); without any, it still starts and
``ns_auth`` takes the keys.
"""

from __future__ import annotations

import argparse
import inspect
import keyword
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp_types import CallToolResult, ContentBlock, ServerCapabilities, SetLevelRequestParams, TextContent
from pydantic import Field, ValidatorFunctionWrapHandler, WrapValidator

from nexysync_mcp import __version__
from nexysync_mcp.agent import AgentLink
from nexysync_mcp.arguments import ToolSpec
from nexysync_mcp.notify import CHANNEL_CAPABILITY, INBOX_URI, Notifier
from nexysync_mcp.stdio import serve_stdio
from nexysync_mcp.surface import ANNOTATIONS, output_schema, structured
from nexysync_mcp.tools import SPECS, Progress, Reply, Tools

__all__ = ["build_server", "main", "mcp_tool"]

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


def _pass_through(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    return value


# Annotated exactly ``str`` because MCPServer JSON-decodes any string argument whose parameter is
# not plain ``str`` (so a payload '{"a": 1}' would arrive as a dict); the wrap validator then
# lets every value through, so that our own checks answer with one clear line instead of
# pydantic's multi-line report.
RawArgument = Annotated[str, WrapValidator(_pass_through)]


def mcp_tool(spec: ToolSpec, call: Callable[[str, Mapping[str, Any], Progress | None], Awaitable[Reply]]) -> Tool:
    """Return an MCPServer tool for a spec: its arguments go to ``call``, its schema is the spec's.

    The tool carries its annotations and output schema; a result carries its text (for older
    clients) and the same value as ``structuredContent``.
    """

    async def run(ctx: Context, **arguments: Any) -> CallToolResult:
        reply = await call(spec.name, arguments, ctx.report_progress)
        content: list[ContentBlock] = [TextContent(type="text", text=reply.text)]
        if reply.is_error:
            return CallToolResult(content=content, is_error=True)
        return CallToolResult(content=content, structured_content=structured(reply.text), is_error=False)

    parameters = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
    for param in spec.params:
        # A wire name that is a Python keyword ("from") gets a trailing underscore and an alias.
        name = f"{param.name}_" if keyword.iskeyword(param.name) else param.name
        annotation = Annotated[RawArgument, Field(alias=param.name)] if name != param.name else RawArgument
        parameters.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation))
    run.__signature__ = inspect.Signature(parameters, return_annotation=CallToolResult)  # type: ignore[attr-defined]
    run.__name__ = spec.name
    tool = Tool.from_function(
        run, name=spec.name, description=spec.description, annotations=ANNOTATIONS[spec.name], structured_output=False
    )
    # The output schema is the tool's own (the function returns a CallToolResult, which has none).
    tool.fn_metadata.output_schema = output_schema(spec.name)
    # The signature only routes arguments; the AI reads the spec's schema: real types, enums and
    # descriptions, flat (no titles, no anyOf-with-null for every optional value).
    return tool.model_copy(update={"parameters": spec.input_schema()})


def _declare_channel(server: MCPServer[Any]) -> None:
    """Declare Claude Code's ``claude/channel`` capability, in both protocol generations.

    The legacy handshake (``initialize``) and the 2026 ``server/discover`` both build their
    capabilities with the low-level server's ``get_capabilities``, which MCPServer gives no
    experimental capabilities; this wraps it so each answer carries the channel.
    """
    lowlevel = server._lowlevel_server
    original = lowlevel.get_capabilities

    def get_capabilities(*args: Any, **kwargs: Any) -> ServerCapabilities:
        capabilities = original(*args, **kwargs)
        capabilities.experimental = {**(capabilities.experimental or {}), **CHANNEL_CAPABILITY}
        return capabilities

    lowlevel.get_capabilities = get_capabilities  # type: ignore[method-assign]


def build_server(key_file: Path | None = None, **stream_options: Any) -> MCPServer[Any]:
    """Build the MCP server (not started).

    Args:
        key_file: An explicit key file; by default ``.nexysync/key`` is searched upward.
        **stream_options: Settings for the inbox's SDK stream.
    """
    bus = InMemorySubscriptionBus()
    notifier = Notifier(bus)
    link = AgentLink(notifier.announce, on_event=notifier.announce_event, **stream_options)
    tools = Tools(link)

    @asynccontextmanager
    async def lifespan(_: MCPServer[Any]) -> AsyncIterator[None]:
        link.start_from_files(key_file)
        try:
            yield
        finally:
            await link.close()

    server: MCPServer[Any] = MCPServer(
        "nexysync",
        instructions=INSTRUCTIONS,
        version=__version__,
        tools=[mcp_tool(spec, tools.call) for spec in SPECS],
        subscriptions=bus,
        lifespan=lifespan,
        # INFO would log every HTTP request the SDK makes to stderr, for every tool call.
        log_level="WARNING",
    )
    server.middleware.append(notifier.middleware)
    _declare_channel(server)
    # A server that sends log notifications must declare the logging capability, which the
    # low-level server does once ``logging/setLevel`` has a handler; MCPServer has no public hook.
    server._lowlevel_server.add_request_handler("logging/setLevel", SetLevelRequestParams, notifier.set_level)

    @server.resource(INBOX_URI, name="inbox", description="Unread NexySync messages.", mime_type="application/json")
    async def inbox() -> str:
        return (await tools.call("ns_message", {"action": "check"}, None)).text

    return server


def main(argv: list[str] | None = None) -> None:
    """Run the stdio MCP server (the ``nexysync-mcp`` command)."""
    parser = argparse.ArgumentParser(prog="nexysync-mcp", description="NexySync MCP server (stdio).")
    parser.add_argument("--key-file", type=Path, help="agent key file (default: .nexysync/key, searched upward)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    options = parser.parse_args(argv)
    server = build_server(options.key_file)
    # stdout carries the protocol; MCPServer set up logging to stderr, ours is worth INFO there.
    logging.getLogger("nexysync_mcp").setLevel(logging.INFO)
    lowlevel = server._lowlevel_server

    async def serve() -> None:
        # As MCPServer.run("stdio"), over pipes served by the event loop (see nexysync_mcp.stdio).
        async with serve_stdio() as (read_stream, write_stream):
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())

    anyio.run(serve)
