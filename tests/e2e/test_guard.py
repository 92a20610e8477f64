"""``nexysync guard``: the git hooks in real repositories, with the CLI leasing paths from another workspace."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_support import CliProject, cli_env, provision_project, run_cli

pytestmark = pytest.mark.e2e

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bob",
    "GIT_AUTHOR_EMAIL": "bob@example.test",
    "GIT_COMMITTER_NAME": "Bob",
    "GIT_COMMITTER_EMAIL": "bob@example.test",
}


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = cli_env(repo.parent / "nexysync-config", **GIT_ENV, **(env or {}))
    return subprocess.run(
        ["git", *args], cwd=repo, env=full_env, capture_output=True, text=True, timeout=60, check=False
    )


def cli(team: CliProject, slug: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(list(args), config_dir=team.config_dir, cwd=team.workspaces[slug])


def commit_touching(repo: Path, path: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    target = repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(target.read_text() + "x\n" if target.exists() else "x\n")
    assert git(repo, "add", path).returncode == 0
    return git(repo, "commit", "-q", "-m", f"touch {path}", env=env)


@pytest.fixture
def team(dev_server: Any, tmp_path: Path) -> CliProject:
    """alice and bob in one project; bob's workspace is a git repository with one commit."""
    made = provision_project(dev_server.base_url, tmp_path)
    repo = made.workspaces["bob"]
    assert git(repo, "init", "-q", "-b", "main").returncode == 0
    (repo / "README.md").write_text("bob\n")
    git(repo, "add", "README.md", ".gitignore")
    assert git(repo, "commit", "-q", "-m", "start").returncode == 0
    return made


def test_a_commit_touching_a_path_another_agent_leases_is_refused_naming_the_holder(team: CliProject) -> None:
    repo = team.workspaces["bob"]
    installed = cli(team, "bob", "--json", "guard", "install")
    assert installed.returncode == 0, installed.stderr
    assert json.loads(installed.stdout)["chained"] == []
    leased = cli(team, "alice", "--json", "lease", "claim", "src/auth/", "--reason", "login rework")
    assert leased.returncode == 0, leased.stderr
    (lease,) = json.loads(leased.stdout)["data"]

    refused = commit_touching(repo, "src/auth/login.py")
    assert refused.returncode != 0
    assert "src/auth/login.py: leased by alice" in refused.stderr
    assert lease["id"] in refused.stderr and "src/auth/" in refused.stderr and "login rework" in refused.stderr
    assert lease["expires_at"][:19] in refused.stderr  # when it ends
    assert git(repo, "log", "--oneline").stdout.count("\n") == 1  # nothing committed
    git(repo, "reset", "-q")  # unstage src/auth/login.py
    # A sibling with the same prefix is not leased.
    assert commit_touching(repo, "src/authz.py").returncode == 0
    released = cli(team, "alice", "lease", "release", "src/auth/")
    assert released.returncode == 0, released.stderr
    assert commit_touching(repo, "src/auth/login.py").returncode == 0


def test_warn_and_off_let_the_commit_through_and_warn_says_why(team: CliProject) -> None:
    repo = team.workspaces["bob"]
    assert cli(team, "bob", "guard", "install").returncode == 0
    assert cli(team, "alice", "lease", "claim", "docs/").returncode == 0
    warned = commit_touching(repo, "docs/a.md", env={"NEXYSYNC_GUARD": "warn"})
    assert warned.returncode == 0 and "docs/a.md: leased by alice" in warned.stderr and "warn" in warned.stderr
    off = commit_touching(repo, "docs/b.md", env={"NEXYSYNC_GUARD": "off"})
    assert off.returncode == 0 and "nexysync" not in off.stderr
    assert commit_touching(repo, "docs/c.md").returncode != 0  # block is the default


def test_when_the_api_cannot_be_reached_the_commit_goes_through_and_says_it_was_not_checked(team: CliProject) -> None:
    repo = team.workspaces["bob"]
    assert cli(team, "bob", "guard", "install").returncode == 0
    assert cli(team, "alice", "lease", "claim", "src/").returncode == 0
    down = commit_touching(repo, "src/x.py", env={"NEXYSYNC_API_URL": "http://127.0.0.1:9"})
    assert down.returncode == 0
    assert "cannot be reached" in down.stderr and "NOT checked" in down.stderr


def test_a_hook_already_there_runs_after_the_guard_and_keeps_its_say(team: CliProject) -> None:
    repo = team.workspaces["bob"]
    hooks = repo / ".git" / "hooks"
    marker = repo.parent / "old-hook-ran"
    old = hooks / "pre-commit"
    old.write_text(f'#!/bin/sh\necho ran >> "{marker}"\n[ ! -e "{repo.parent / "old-hook-says-no"}" ]\n')
    old.chmod(0o755)
    installed = cli(team, "bob", "--json", "guard", "install")
    assert json.loads(installed.stdout)["chained"] == ["pre-commit.pre-nexysync"]
    assert (hooks / "pre-commit.pre-nexysync").read_text().startswith("#!/bin/sh\necho ran")
    assert commit_touching(repo, "a.py").returncode == 0 and marker.read_text() == "ran\n"
    (repo.parent / "old-hook-says-no").touch()
    assert commit_touching(repo, "b.py").returncode != 0  # the old hook still refuses
    # Installing again rewrites the guard's hook and keeps the chain (never chains itself).
    again = cli(team, "bob", "--json", "guard", "install")
    assert json.loads(again.stdout)["chained"] == ["pre-commit.pre-nexysync"]
    assert "echo ran" not in (hooks / "pre-commit").read_text()


def test_outside_a_workspace_the_guard_does_nothing_and_install_says_why(team: CliProject, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert git(plain, "init", "-q").returncode == 0
    (plain / "a.py").write_text("x\n")
    git(plain, "add", "a.py")
    done = subprocess.run(
        [sys.executable, "-m", "nexysync_cli.guard", "pre-commit"],
        cwd=plain,
        env=cli_env(team.config_dir),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    refused = run_cli(["guard", "install", "--dir", str(plain)], config_dir=team.config_dir)
    assert refused.returncode == 1 and "nexysync init" in refused.stderr
    # A workspace that is not a git repository is told so.
    not_git = run_cli(["guard", "install"], config_dir=team.config_dir, cwd=team.workspaces["alice"])
    assert not_git.returncode == 1 and "not in a git repository" in not_git.stderr


def test_the_pre_push_hook_refuses_a_push_of_commits_touching_a_leased_path(team: CliProject, tmp_path: Path) -> None:
    repo = team.workspaces["bob"]
    remote = tmp_path / "remote.git"
    assert subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=False).returncode == 0
    git(repo, "remote", "add", "origin", str(remote))
    assert git(repo, "push", "-q", "origin", "main").returncode == 0
    assert cli(team, "bob", "guard", "install", "--pre-push").returncode == 0
    assert cli(team, "alice", "lease", "claim", "api/").returncode == 0
    assert commit_touching(repo, "api/v1.py", env={"NEXYSYNC_GUARD": "off"}).returncode == 0
    pushed = git(repo, "push", "-q", "origin", "main")
    assert pushed.returncode != 0 and "push refused" in pushed.stderr and "api/v1.py: leased by alice" in pushed.stderr
    # A new branch carrying the commit is checked too.
    branch = git(repo, "push", "-q", "origin", "main:feature")
    assert branch.returncode != 0 and "leased by alice" in branch.stderr
    assert cli(team, "alice", "lease", "release", "api/").returncode == 0
    assert git(repo, "push", "-q", "origin", "main").returncode == 0
