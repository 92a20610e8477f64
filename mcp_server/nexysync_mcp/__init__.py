"""NexySync MCP server: NexySync's messaging tools for AI tools over MCP stdio.

It owns the MCP side of an agent, and nothing of the ``nexysync`` command (``nexysync_cli``):
the server on the MCP SDK's public low-level API (:mod:`.server`, stdin and stdout served by the
event loop in :mod:`.stdio`), the tools (:mod:`.tools`, one record per tool), the agent's client
and keys (:mod:`.agent`), its push cache (:mod:`.inbox`), what the client is told of new
messages (:mod:`.notify`) and where files may be read and written (:mod:`.workspace`).
"""

__version__ = "0.1.0"
