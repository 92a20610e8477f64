"""Run the ``nexysync`` CLI as a real subprocess, and provision workspaces with it for e2e tests.

Example (in another e2e test, e.g. of the MCP server)::

    from cli_support import provision_with_cli

    def test_something(dev_server, tmp_path):
        alice_dir, bob_dir = provision_with_cli(dev_server.base_url, tmp_path)
        # alice_dir/.nexysync/key and bob_dir/.nexysync/key are ready: agents "alice" and "bob"
        # of one new project, sharing its encryption key.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = ["CLI", "CliProcess", "CliProject", "cli_env", "provision_project", "provision_with_cli", "run_cli"]

#: The CLI, run with the interpreter of the tests (and so the dev venv's packages).
CLI = [sys.executable, "-m", "nexysync_cli"]
PASSWORD = "cli-e2e-password"
CLI_DEADLINE_S = 60.0


def cli_env(config_dir: Path, **extra: str) -> dict[str, str]:
    """Return an environment for the CLI: the caller's, without NEXYSYNC_* settings, with its own config dir."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NEXYSYNC_")}
    env["NEXYSYNC_CONFIG_DIR"] = str(config_dir)
    env.update(extra)
    return env


def run_cli(
    args: Sequence[str],
    *,
    config_dir: Path,
    cwd: Path | None = None,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = CLI_DEADLINE_S,
) -> subprocess.CompletedProcess[str]:
    """Run ``nexysync ARGS`` to completion and return its exit code and output."""
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd or config_dir.parent,
        env=cli_env(config_dir, **(env or {})),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_json(
    args: Sequence[str], *, config_dir: Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> Any:
    """Run ``nexysync --json ARGS``, require success, and return the parsed stdout."""
    done = run_cli(["--json", *args], config_dir=config_dir, cwd=cwd, env=env)
    assert done.returncode == 0, f"nexysync {' '.join(args)} failed ({done.returncode}):\n{done.stderr}"
    return json.loads(done.stdout)


class CliProcess:
    """A long-running ``nexysync`` subprocess (``tail``) whose output lines are read as they come."""

    def __init__(self, args: Sequence[str], *, config_dir: Path, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [*CLI, *args],
            cwd=cwd,
            env=cli_env(config_dir, **(env or {})),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout_lines: queue.Queue[str] = queue.Queue()
        self.stderr_lines: queue.Queue[str] = queue.Queue()
        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers = [
            threading.Thread(target=self._pump, args=(self.process.stdout, self.stdout_lines), daemon=True),
            threading.Thread(target=self._pump, args=(self.process.stderr, self.stderr_lines), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _pump(stream: IO[str], lines: queue.Queue[str]) -> None:
        for line in stream:
            lines.put(line)

    def wait_for_stderr(self, text: str, deadline_s: float = CLI_DEADLINE_S) -> str:
        """Return the first stderr line containing ``text``; fail after ``deadline_s``."""
        deadline = time.monotonic() + deadline_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.stderr_lines.get(timeout=left)
            except queue.Empty:
                break
            if text in line:
                return line
        raise AssertionError(f"no stderr line with {text!r} within {deadline_s:g} s (exit {self.process.poll()})")

    def stdout_line(self, deadline_s: float = CLI_DEADLINE_S) -> str:
        """Return the next stdout line; fail after ``deadline_s``."""
        try:
            return self.stdout_lines.get(timeout=deadline_s)
        except queue.Empty:
            raise AssertionError(f"no stdout line within {deadline_s:g} s (exit {self.process.poll()})") from None

    def finish(self, deadline_s: float = CLI_DEADLINE_S) -> tuple[int, str, str]:
        """Wait for the exit and return the code, all stdout and the rest of stderr."""
        code = self.process.wait(timeout=deadline_s)
        for reader in self._readers:
            reader.join(timeout=deadline_s)
        return code, _drain(self.stdout_lines), _drain(self.stderr_lines)

    def kill(self) -> None:
        """Make sure it is not left running."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _drain(lines: queue.Queue[str]) -> str:
    out: list[str] = []
    while True:
        try:
            out.append(lines.get_nowait())
        except queue.Empty:
            return "".join(out)


@dataclass
class CliProject:
    """A project provisioned with the CLI.

    Attributes:
        api_url: The API root.
        config_dir: The CLI config dir used (its session and project key live there).
        email: The owner's email (password :data:`PASSWORD`).
        project_id: The project's id.
        project_name: The project's name.
        workspaces: Each agent's workspace (holding ``.nexysync/key``), by slug.
    """

    api_url: str
    config_dir: Path
    email: str
    project_id: str
    project_name: str
    workspaces: dict[str, Path] = field(default_factory=dict)


def provision_project(
    api_url: str,
    root: Path,
    agents: Sequence[str] = ("alice", "bob"),
    *,
    write_config: str | None = None,
    hooks: bool = False,
) -> CliProject:
    """Register an owner, create a project and ``nexysync init`` one workspace per agent, all with the CLI.

    Args:
        api_url: The API root, e.g. ``dev_server.base_url``.
        root: A temp dir; the config dir is ``root/nexysync-config``, workspaces ``root/<slug>``.
        agents: The agents' slugs.
        write_config: Passed to ``init --write-config`` (``claude``, ``cursor``, ``vscode``, ``codex``, ``all``).
        hooks: Pass ``--hooks`` to ``init`` too.
    """
    config_dir = root / "nexysync-config"
    email = f"cli-{secrets.token_hex(5)}@example.test"
    run_json(
        ["register", "--api-url", api_url, "--email", email, "--name", "CLI owner"],
        config_dir=config_dir,
        env={"NEXYSYNC_PASSWORD": PASSWORD},
    )
    name = f"cli-e2e-{secrets.token_hex(3)}"
    project = run_json(["projects", "create", name], config_dir=config_dir)
    made = CliProject(api_url, config_dir, email, project["id"], name)
    for slug in agents:
        workspace = root / slug
        workspace.mkdir(parents=True, exist_ok=True)
        args = ["init", "--project", name, "--agent", slug, "--name", slug.title(), "--dir", str(workspace)]
        if write_config:
            args += ["--write-config", write_config]
        if hooks:
            args.append("--hooks")
        run_json(args, config_dir=config_dir)
        made.workspaces[slug] = workspace
    return made


def provision_with_cli(api_url: str, tmp_path: Path) -> tuple[Path, Path]:
    """Provision agents ``alice`` and ``bob`` of one new project with the CLI; return their workspaces.

    Each workspace holds ``.nexysync/key`` (the agent's API key and the shared project key) and a
    ``.gitignore`` naming ``.nexysync/``; ``nexysync send``/``tail`` and
    ``nexysync.Client.from_key_file()`` work from them.

    Args:
        api_url: The API root (``dev_server.base_url``).
        tmp_path: A temp dir of the test; workspaces are ``tmp_path/alice`` and ``tmp_path/bob``.
    """
    project = provision_project(api_url, tmp_path)
    return project.workspaces["alice"], project.workspaces["bob"]
