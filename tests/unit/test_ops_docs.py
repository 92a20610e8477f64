"""The README's test command is what CI runs, and the HAProxy variables are documented where they are used."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
HAPROXY_CFG = (REPO / "ops" / "haproxy" / "haproxy.cfg").read_text()


def _readme_test_command() -> str:
    section = README.split("Install the test tooling and run every test", 1)[1]
    return re.search(r"```sh\n(.+?)\n```", section, re.S).group(1).strip()  # type: ignore[union-attr]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    commands = [
        line
        for line in (REPO / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]
    assert commands == [_readme_test_command()]


def test_the_test_command_never_pip_installs_outside_a_virtualenv() -> None:
    # PEP 668: Debian's and Ubuntu's system python3 refuse `python3 -m pip install` outright.
    steps = [step.strip() for step in _readme_test_command().split("&&")]
    assert steps[0] == "python3 -m venv .venv"
    assert not any(step.startswith(("python3 -m pip", "pip ", "tox ")) for step in steps)
    assert steps[-1].startswith(".venv/bin/tox ")


def test_every_variable_haproxy_cfg_reads_is_documented_in_its_header_and_the_readme() -> None:
    used = set(re.findall(r"\$\{(NEXYSYNC_[A-Z_]+)", HAPROXY_CFG)) | set(
        re.findall(r"defined\((NEXYSYNC_[A-Z_]+)\)", HAPROXY_CFG)
    )
    header = "\n".join(line for line in HAPROXY_CFG.splitlines() if line.startswith("#"))
    assert used, "haproxy.cfg reads no variables?"
    for name in sorted(used):
        assert name in header, f"{name} is not in haproxy.cfg's header"
        assert f"`{name}`" in README, f"{name} is not in the README"
