"""Generate ``nexysync_generated`` and the SDK's generated modules from ``openapi.yaml``.

The generator is the package beside this file, :mod:`nexysync_codegen`; this script runs it from
any working directory: ``python scripts/generate.py [--out DIR] [--sdk-types FILE] [--sdk-resources DIR]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nexysync_codegen.cli import main  # importable once its directory is on the path

if __name__ == "__main__":
    raise SystemExit(main())
