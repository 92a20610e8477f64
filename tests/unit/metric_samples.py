"""Read one sample of this process's metrics, as ``/metrics`` would show it (in either mode)."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from nexysync_server import metrics


def sample(name: str, **labels: str) -> float:
    """Return the value of the sample ``name`` with exactly ``labels`` (0 when there is none yet)."""
    text = generate_latest(metrics._registry()).decode()
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return 0.0
