"""The MCP tools, one module per tool, each a :class:`~nexysync_mcp.tools.record.Tool` record.

``ns_auth`` (:mod:`.auth`), ``ns_meta`` (:mod:`.meta`), ``ns_message`` (:mod:`.messages`),
``ns_kv`` (:mod:`.kv`), ``ns_ref`` (:mod:`.refs`), ``ns_file`` (:mod:`.files`), ``ns_lease``
(:mod:`.leases`) and ``ns_task`` (:mod:`.tasks`). Each takes an
``action`` and a few flat optional parameters (``ns_auth`` takes none), so the whole
``tools/list`` answer stays small; answers are compact JSON an AI reads at a glance. Plaintext in
and out: the SDK encrypts.

:class:`Toolbox` serves a call by name and turns every failure into one line for the AI.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nexysync import APIError, DecryptionError, KeyFileError
from nexysync_mcp.errors import ToolFailure, describe
from nexysync_mcp.tools import auth, files, kv, leases, messages, meta, refs, tasks
from nexysync_mcp.tools.record import Progress, Tool

if TYPE_CHECKING:
    from nexysync_mcp.agent import AgentLink

__all__ = ["TOOLS", "Reply", "Toolbox"]

logger = logging.getLogger(__name__)

#: Every tool, in the order ``tools/list`` gives them.
TOOLS: tuple[Tool, ...] = (
    auth.TOOL,
    meta.TOOL,
    messages.TOOL,
    kv.TOOL,
    refs.TOOL,
    files.TOOL,
    leases.TOOL,
    tasks.TOOL,
)


@dataclass(frozen=True)
class Reply:
    """What a tool call answers: text for the AI, and whether it is an error."""

    text: str
    is_error: bool = False


class Toolbox:
    """Serve the tool calls of one MCP server.

    Args:
        link: The agent's client and inbox.
    """

    def __init__(self, link: AgentLink) -> None:
        self._link = link
        self._tools = {tool.name: tool for tool in TOOLS}

    async def call(self, name: str, arguments: Mapping[str, Any], progress: Progress | None = None) -> Reply:
        """Run one tool call; any failure becomes a one-line error reply.

        Args:
            name: The tool.
            arguments: Its arguments as the client sent them.
            progress: Reports the call's progress to the client (``wait`` uses it).
        """
        tool = self._tools.get(name)
        if tool is None:
            return Reply(f"Unknown tool {name!r}.", is_error=True)
        try:
            return Reply(await tool.run(self._link, arguments, progress))
        except ToolFailure as error:
            return Reply(str(error), is_error=True)
        except Exception as error:  # every failure reaches the AI as one line; the trace goes to the log
            if not isinstance(error, APIError | DecryptionError | KeyFileError):
                logger.exception("tool %s failed", name)
            api_url = self._link.credentials.api_url if self._link.credentials else None
            recipient = arguments.get("to") if isinstance(arguments.get("to"), str) else None
            return Reply(describe(error, api_url=api_url, recipient=recipient), is_error=True)
