"""mypy --strict is clean on the server (the API, the CDN and the stores), as it is on the SDK."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import nexysync_generated

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(180)
def test_the_server_is_mypy_strict_clean() -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed in this environment (tox's py env installs it)")
    # Editable installs use import hooks that mypy cannot follow: name the generated package's root.
    generated_root = Path(nexysync_generated.__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(ROOT / "server" / "nexysync_server")],
        cwd=ROOT,
        env={**os.environ, "MYPYPATH": str(generated_root)},
        capture_output=True,
        text=True,
        timeout=170,
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, f"mypy --strict server failed (exit {result.returncode}):\n{output}"
