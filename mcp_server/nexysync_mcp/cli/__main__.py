"""Run the provisioning CLI as ``python -m nexysync_mcp.cli``."""

import sys

from nexysync_mcp.cli import main

sys.exit(main())
