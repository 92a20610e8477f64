"""``nexysync lease ...`` and ``nexysync task ...`` as a person and a script run them, in two workspaces."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cli_support import CliProject, provision_project, run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture
def team(dev_server: Any, tmp_path: Path) -> CliProject:
    return provision_project(dev_server.base_url, tmp_path)


def cli(team: CliProject, slug: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(list(args), config_dir=team.config_dir, cwd=cwd or team.workspaces[slug])


def test_leases_from_the_cli_are_all_or_none_and_a_refusal_exits_1_naming_the_holder(team: CliProject) -> None:
    alice = team.workspaces["alice"]
    (alice / "src" / "auth").mkdir(parents=True)
    # A path is taken from the working directory, and leased relative to the workspace.
    granted = cli(
        team, "alice", "--json", "lease", "claim", "auth", "--ttl", "600", "--reason", "rework", cwd=alice / "src"
    )
    assert granted.returncode == 0, granted.stderr
    (lease,) = json.loads(granted.stdout)["data"]
    assert (lease["path"], lease["reason"], lease["agent"]) == ("src/auth/", "rework", "alice")

    refused = cli(team, "bob", "lease", "claim", "src/auth/login.py", "docs/")
    assert refused.returncode == 1
    assert (
        "src/auth/ is held by alice" in refused.stderr and lease["id"] in refused.stderr and "rework" in refused.stderr
    )
    as_json = cli(team, "bob", "--json", "lease", "claim", "src/auth/login.py")
    assert as_json.returncode == 1 and json.loads(as_json.stderr)["error"]["code"] == "LEASE_CONFLICT"
    listed = json.loads(cli(team, "bob", "--json", "lease", "list").stdout)["data"]
    assert [(item["path"], item["agent"]) for item in listed] == [("src/auth/", "alice")]  # docs/ was not granted
    assert "src/auth/  alice  exclusive" in cli(team, "bob", "lease", "list").stdout

    not_mine = cli(team, "bob", "lease", "release", "src/auth/")
    assert not_mine.returncode == 1 and "no live lease of yours" in not_mine.stderr
    outside = cli(team, "bob", "lease", "claim", "../alice/x.py")
    assert outside.returncode == 1 and "outside the workspace" in outside.stderr
    assert cli(team, "alice", "lease", "release", "src/auth/").returncode == 0
    assert cli(team, "bob", "lease", "claim", "src/auth/login.py").returncode == 0


def test_a_task_added_in_one_workspace_is_claimed_once_and_done_in_another(team: CliProject) -> None:
    added = cli(team, "alice", "--json", "task", "add", "Fix the login redirect", "--body", "see #42")
    assert added.returncode == 0, added.stderr
    task = json.loads(added.stdout)
    then = json.loads(cli(team, "alice", "--json", "task", "add", "Ship it", "--blocked-by", task["id"]).stdout)
    listed = cli(team, "bob", "task", "list", "--state", "open").stdout
    assert f"{task['id']}  open  Fix the login redirect" in listed and "(blocked by" in listed

    blocked = cli(team, "bob", "task", "claim", then["id"])
    assert blocked.returncode == 1 and task["id"] in blocked.stderr
    assert cli(team, "bob", "task", "claim", task["id"]).returncode == 0
    taken = cli(team, "alice", "task", "claim", task["id"])
    assert taken.returncode == 1 and "claimed by bob" in taken.stderr
    done = cli(team, "bob", "--json", "task", "done", task["id"], "--result", "fixed in 3f2a")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["result"] == {"task": task["id"], "by": "bob", "text": "fixed in 3f2a"}
    mine = json.loads(cli(team, "bob", "--json", "task", "list", "--mine").stdout)["data"]
    assert [(item["title"], item["state"]) for item in mine] == [("Fix the login redirect", "done")]
    assert cli(team, "alice", "task", "claim", then["id"]).returncode == 0
    assert cli(team, "alice", "task", "release", then["id"]).returncode == 0
    cancelled = cli(team, "alice", "--json", "task", "cancel", then["id"])
    assert json.loads(cancelled.stdout)["state"] == "cancelled"
