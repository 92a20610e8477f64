"""Run the NexySync MCP stdio server: ``python -m nexysync_mcp``."""

from nexysync_mcp.server import main

if __name__ == "__main__":
    main()
