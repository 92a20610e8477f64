"""Schemathesis over the whole contract against a real ``nexysync-server dev``.

Every operation, every check (``ignored_auth``, ``negative_data_rejection``,
``positive_data_acceptance``, response schemas, ...), the coverage, fuzzing and stateful
phases, with a seeded user, project and agents so that authenticated paths are exercised.
The bar is zero failures.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from nexysync.crypto import KeyRing, new_key
from nexysync_server.ids import new_id

pytestmark = pytest.mark.contract

# Fixed so a red run can be replayed; set NEXYSYNC_CONTRACT_SEED to explore other inputs.
DEFAULT_SEED = "20261125"
MAX_EXAMPLES = os.environ.get("NEXYSYNC_CONTRACT_MAX_EXAMPLES", "50")
RUN_DEADLINE_S = 600
HUMAN_EMAIL = "contract@example.test"
PASSWORD = "contract-pass"


def _register(http: httpx.Client, email: str) -> str:
    tokens = http.post(
        "/v1/auth/register",
        json={"email": email, "name": "Contract", "password": PASSWORD, "tos_accepted": True},
    )
    tokens.raise_for_status()
    return str(tokens.json()["access_token"])


def _seed_data(base_url: str) -> dict[str, str]:
    """Create two users, their projects, two agents, a message and a device; return the key, message id and token.

    The agents belong to a project of a user whose token schemathesis never gets: with the
    fuzzed human's token it deletes projects (as it should be able to), and had that been the
    agents' project, every agent-key operation after it would have been a 401 and gone untested.
    """
    http = httpx.Client(base_url=base_url, timeout=10)
    human = _register(http, HUMAN_EMAIL)
    http.post("/v1/projects", json={"name": "contract"}, headers={"Authorization": f"Bearer {human}"})
    http.headers["Authorization"] = f"Bearer {_register(http, 'contract-agents@example.test')}"
    project_id = http.post("/v1/projects", json={"name": "contract agents"}).json()["id"]
    alice = http.post(f"/v1/projects/{project_id}/agents", json={"slug": "alice", "name": "Alice"}).json()
    http.post(f"/v1/projects/{project_id}/agents", json={"slug": "bob", "name": "Bob"}).raise_for_status()
    ring = KeyRing([new_key()])
    message_id = new_id()

    def seal(field: str) -> str:
        return ring.encrypt(b"seed", project_id=project_id, kind="message", record_id=message_id, field=field)

    sent = httpx.post(
        f"{base_url}/v1/messages",
        headers={"Authorization": f"Bearer {alice['api_key']}"},
        json={"id": message_id, "to": "bob", "type": "request", "topic": seal("topic"), "payload": seal("payload")},
    )
    sent.raise_for_status()
    # A device of the agents' project, whose token reads its own box (GET /v1/device/keys).
    device = http.post(
        f"/v1/projects/{project_id}/devices",
        json={"id": new_id(), "name": "seed", "public_key": "A" * 43, "attestation": "00000000." + "A" * 43},
    )
    device.raise_for_status()
    return {"agent": alice["api_key"], "message_id": message_id, "device": device.json()["token"]}


def test_the_whole_contract_holds(dev_servers: Callable[..., object], tmp_path: Path) -> None:
    # Streams end quickly so that schemathesis reads whole SSE responses instead of timing out.
    # Quota and rate limit are raised so that requests keep reaching the code behind them all run long.
    server = dev_servers(
        tmp_path / "data",
        {
            "NEXYSYNC_STREAM_MAX_DURATION_S": "0.5",
            "NEXYSYNC_HEARTBEAT_S": "0.2",
            "NEXYSYNC_QUOTA_MESSAGES_PER_DAY": "1000000",
            "NEXYSYNC_RATE_LIMIT_PER_MINUTE": "1000000",
        },
    )
    base_url = server.base_url  # type: ignore[attr-defined]
    seeded = _seed_data(base_url)
    config = tmp_path / "schemathesis.toml"
    # Security schemes get their own credentials, so human-token and agent-key operations are both
    # reached. Only the message id is pinned: project and agent ids come from the stateful links,
    # and pinning them would let the fuzzer delete the seeded project from under the other tests.
    config.write_text(
        f"""
# The human signs in again whenever a token is refused: a fuzzed POST /v1/auth/logout-all ends
# every session of the account, as it should, and would leave every later operation a 401.
[auth.dynamic.openapi.HumanToken]
path = "/v1/auth/login"
payload = {{ email = "{HUMAN_EMAIL}", password = "{PASSWORD}" }}
extract_selector = "/access_token"

[auth.openapi.AgentKey]
bearer = "{seeded["agent"]}"

[auth.openapi.DeviceToken]
bearer = "{seeded["device"]}"

[parameters]
message_id = "{seeded["message_id"]}"

[generation]
max-examples = {MAX_EXAMPLES}

# A conditional write whose condition fails (If-Match / If-None-Match) is 412 for valid input,
# exactly as a conflict is 409; a file size the schema allows can pass the server's configured
# file size limit (NEXYSYNC_FILE_MAX_MB), which is 413.
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "412", "413", "429", "5xx"]
"""
    )
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        f"{base_url}/v1/openapi.yaml",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--seed",
        os.environ.get("NEXYSYNC_CONTRACT_SEED", DEFAULT_SEED),
        # One worker: with two, hypothesis parses lambdas' source in two threads at once, which
        # CPython 3.11.7 can fail with "SystemError: AST constructor recursion depth mismatch" (a
        # runtime error of the run, not a finding; seen here). One worker costs about 20 s.
        "--workers",
        "1",
        "--request-timeout",
        "10",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=RUN_DEADLINE_S, check=False)
    report = result.stdout + result.stderr
    summary = report[report.find("SUMMARY") :] if "SUMMARY" in report else report[-3000:]
    assert result.returncode == 0, f"schemathesis found problems:\n{report[-20000:]}"
    assert "Authentication failed" not in summary, summary
    assert "Tested: 81" in summary, summary
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in summary, f"{phase} phase did not pass:\n{summary}"
