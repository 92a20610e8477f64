"""mypy --strict is clean on the SDK (issue 5: "mypy strict passes on sdk/"), enforced in CI."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import nexysync_generated

ROOT = Path(__file__).resolve().parents[2]
SDK_PACKAGE = ROOT / "sdk" / "nexysync"


@pytest.mark.timeout(120)
def test_sdk_is_mypy_strict_clean() -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed in this environment (tox's py env installs it)")
    # Editable installs use import hooks that mypy cannot follow: point it at the generated
    # package's source directory, wherever it lives.
    generated_root = Path(nexysync_generated.__file__).resolve().parents[1]
    env = {**os.environ, "MYPYPATH": str(generated_root)}
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(SDK_PACKAGE)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, f"mypy --strict sdk/nexysync failed (exit {result.returncode}):\n{output}"
