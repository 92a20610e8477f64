"""NexySync MCP server: NexySync's messaging tools for AI tools over MCP stdio."""

__version__ = "0.1.0"
