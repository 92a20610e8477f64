"""Run the provisioning CLI as ``python -m nexysync_cli``."""

import sys

from nexysync_cli.main import main

sys.exit(main())
