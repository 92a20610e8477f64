"""Fixtures the unit tests share."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the CLI at a config dir of its own, without the developer's NEXYSYNC_* settings."""
    for name in list(os.environ):
        if name.startswith("NEXYSYNC_"):
            monkeypatch.delenv(name)
    config = tmp_path / "config"
    monkeypatch.setenv("NEXYSYNC_CONFIG_DIR", str(config))
    return config
