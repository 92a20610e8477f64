"""The soak: mixed work by several agents under random faults, for SOAK_SECONDS (60 in the normal suite).

``tox -e soak`` runs it for 10 minutes. It asserts that every acknowledged write is there
afterwards, that every message reached its recipient's application (exactly once, keyed by id)
with events in ``seq`` order, that no request was answered 500, and that the API workers' memory
stays flat; it prints the figures either way.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from soak import Soak

pytestmark = pytest.mark.e2e

SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
SEED = int(os.environ.get("SOAK_SEED") or random.randrange(1 << 30))
# Memory may grow while caches and pools fill during the first round; after it, a worker's RSS
# must stay within this factor (plus slack) of the second round's, whatever the run's length.
RSS_GROWTH = 1.5
RSS_SLACK_MIB = 32.0


@pytest.mark.timeout(SECONDS + 420)
def test_soak(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    figures = Soak(tmp_path, SECONDS, SEED).run()
    with capsys.disabled():
        print(f"\nsoak: seed {SEED} (SOAK_SEED={SEED} repeats the faults' choices)\n{figures.report()}")
    assert figures.failures == []
    assert figures.lost == 0
    assert figures.duplicates == 0
    assert figures.out_of_order == 0
    assert "500" not in figures.answers_5xx
    assert sum(figures.faults.values()) >= 5
    assert sum(figures.operations.values()) > 0
    baseline = figures.rss_mib[1]
    assert max(figures.rss_mib[2:]) <= baseline * RSS_GROWTH + RSS_SLACK_MIB, figures.rss_mib
