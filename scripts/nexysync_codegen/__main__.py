"""``python -m nexysync_codegen``: as ``python scripts/generate.py``."""

from nexysync_codegen.cli import main

raise SystemExit(main())
