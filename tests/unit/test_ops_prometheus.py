"""ops/prometheus and ops/grafana: the alert rules load and fire when they should, on series the server has."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from debian_packages import MissingPackage, promtool
from nexysync_server import metrics

OPS = Path(__file__).resolve().parents[2] / "ops"
RULES = OPS / "prometheus" / "alerts.yml"
RULES_TEST = OPS / "prometheus" / "alerts_test.yml"
DASHBOARD = OPS / "grafana" / "nexysync.json"
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def _binary() -> str:
    try:
        return promtool()
    except MissingPackage as exc:
        pytest.skip(str(exc))


def _series_the_server_has() -> set[str]:
    names = set()
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase):
            for family in metric.describe():
                names.update(family.name + suffix for suffix in _SUFFIXES[family.type])
    return names


def _referenced(text: str) -> set[str]:
    return set(re.findall(r"\bnexysync_[a-z_]+\b", text))


def _queries(path: Path) -> list[str]:
    """Return the PromQL (or series) a file reads: rule expressions, test input series, panel targets."""
    if path == DASHBOARD:
        return [target["expr"] for panel in json.loads(path.read_text())["panels"] for target in panel["targets"]]
    document = yaml.safe_load(path.read_text())
    if path == RULES_TEST:
        return [series["series"] for test in document["tests"] for series in test["input_series"]]
    return [rule["expr"] for group in document["groups"] for rule in group["rules"]]


def test_the_rules_load() -> None:
    result = subprocess.run([_binary(), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_alert_fires_on_trouble_and_stays_quiet_when_healthy() -> None:
    result = subprocess.run([_binary(), "test", "rules", str(RULES_TEST)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_test() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    alerts = {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}
    tests = yaml.safe_load(RULES_TEST.read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    # `up` comes from Prometheus itself, not from the server's series.
    assert alerts - tested == {"NexySyncMetricsDown"}


@pytest.mark.parametrize("path", [RULES, RULES_TEST, DASHBOARD], ids=lambda path: path.name)
def test_rules_and_dashboard_read_only_series_the_server_has(path: Path) -> None:
    referenced = set().union(*(_referenced(query) for query in _queries(path)))
    assert referenced, "nothing read"
    assert referenced <= _series_the_server_has(), sorted(referenced - _series_the_server_has())


def test_the_dashboard_is_grafana_json_with_one_query_per_target() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert _referenced(target["expr"]), target["expr"]
    variables = {variable["name"] for variable in dashboard["templating"]["list"]}
    assert variables == {"datasource", "instance"}
