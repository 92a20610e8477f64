"""``NEXYSYNC_LOG_FORMAT=json``: every line one JSON object, an access record per request, and no content.

A sentinel goes everywhere a client can put something (password, email, kv key, message
fields, query, a malformed body, a bad key); it must appear in no log line.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from realtime_support import Team
from sentinel_support import SENTINEL, requests_carrying_the_sentinel

pytestmark = pytest.mark.e2e


def _records(log: Path) -> list[dict[str, Any]]:
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines, "the server wrote no log"
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"a log line is not JSON: {line!r}")
    return records


def _check(log: Path, answers: list[httpx.Response]) -> None:
    text = log.read_text()
    assert SENTINEL not in text and SENTINEL.lower() not in text
    records = _records(log)
    for record in records:
        assert {"time", "level", "logger", "pid", "message"} <= record.keys(), record
    access = {record["request_id"]: record for record in records if record["logger"] == "nexysync.access"}
    for answer in answers:
        record = access.get(answer.headers["x-request-id"])
        assert record is not None, f"no access record for {answer.request.method} {answer.request.url.path}"
        assert record["status"] == answer.status_code
        assert record["method"] == answer.request.method
        assert record["duration_ms"] >= 0
        assert record["route"].startswith("/v1/") or record["route"] == "unmatched"
    # The refusals were answered, not crashes: none is a 5xx.
    assert all(answer.status_code < 500 for answer in answers), [answer.status_code for answer in answers]


def _wait_for_records(log: Path, count: int) -> None:
    deadline = time.monotonic() + 10
    while sum('"nexysync.access"' in line for line in log.read_text().splitlines()) < count:
        assert time.monotonic() < deadline, "the access records did not reach the log"
        time.sleep(0.05)


def test_serve_writes_json_lines_with_no_content(server_processes: Callable[..., str], tmp_path: Path) -> None:
    base_url = server_processes(["serve", "--workers", "2"], {"NEXYSYNC_LOG_FORMAT": "json"})
    team = Team(base_url, ["alice", "bob"])
    answers = requests_carrying_the_sentinel(base_url, team)
    (log,) = tmp_path.glob("server-*.log")
    _wait_for_records(log, len(answers))
    _check(log, answers)
    assert any(record["logger"].startswith("gunicorn") for record in _records(log)), "the master's lines are JSON too"


def test_dev_writes_json_lines_with_no_content(module_dev_servers: Callable[..., Any]) -> None:
    server = module_dev_servers({"NEXYSYNC_LOG_FORMAT": "json"})
    team = Team(server.base_url, ["alice", "bob"])
    answers = requests_carrying_the_sentinel(server.base_url, team)
    _wait_for_records(server.stdout_path, len(answers))
    server.stop(signal.SIGTERM)
    _check(server.stdout_path, answers)
