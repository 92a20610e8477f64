"""``nexysync lease ...``, ``nexysync task ...`` and ``nexysync guard install``: coordination as the workspace's agent.

Paths are given as a person types them (relative to the working directory) and leased relative
to the workspace: the directory that holds ``.nexysync/``. A refusal (a path someone else holds,
a task another agent took) exits 1 and names the holder.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from nexysync import Client, ConflictError
from nexysync.paths import normalise
from nexysync.types import Lease, Task
from nexysync_cli.context import Context
from nexysync_cli.errors import CliError
from nexysync_cli.guard import HOOKS, PREFIX
from nexysync_cli.keyfiles import agent_key_file

__all__ = [
    "GUARD_MARKER",
    "run_guard_install",
    "run_lease_claim",
    "run_lease_list",
    "run_lease_release",
    "run_task_add",
    "run_task_cancel",
    "run_task_claim",
    "run_task_done",
    "run_task_list",
    "run_task_release",
]

#: The line that marks a hook as the guard's (re-installing rewrites it; anything else is chained).
GUARD_MARKER = "# nexysync guard: installed by `nexysync guard install`"
#: The suffix a hook that was there before is moved to; the guard's hook runs it after itself.
CHAINED_SUFFIX = ".pre-nexysync"


class _Agent:
    """The workspace's agent: its key file, its workspace directory and a client."""

    def __init__(self, ctx: Context) -> None:
        self.key_path = agent_key_file(ctx.args.key_file, ctx.args.dir)
        self.workspace = self.key_path.parent.parent.resolve()
        self.client = Client.from_key_file(self.key_path)

    def __enter__(self) -> _Agent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def normalised(self, path: str) -> str:
        # Made absolute from the working directory, keeping a trailing "/" (a directory not made yet).
        full = str(Path(path).expanduser().absolute()) + ("/" if path.endswith(("/", os.sep)) else "")
        try:
            return normalise(full, self.workspace)
        except ValueError as exc:
            raise CliError(str(exc), code="PATH_OUTSIDE_WORKSPACE") from exc


def _until(lease: Lease) -> str:
    return lease.expires_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _held_by(lease: Lease) -> str:
    reason = f", reason: {lease.reason}" if lease.reason else ""
    kind = "exclusive" if lease.exclusive else "shared"
    return f"{lease.path} is held by {lease.agent} (lease {lease.id}, {kind}, until {_until(lease)}{reason})"


def run_lease_claim(ctx: Context) -> int:
    """Claim a lease on each path, all or none; a refusal exits 1 naming each holder."""
    args = ctx.args
    with _Agent(ctx) as agent:
        paths = [agent.normalised(path) for path in args.paths]
        try:
            granted = agent.client.leases.claim_paths(
                paths, ttl_s=args.ttl, exclusive=not args.shared, reason=args.reason, root=agent.workspace
            )
        except ConflictError as exc:
            if exc.code != "LEASE_CONFLICT":
                raise
            held = "; ".join(_held_by(lease) for lease in agent.client.leases.conflicts(exc))
            raise CliError(f"not granted: {held}", code="LEASE_CONFLICT") from exc
    lines = [
        f"Leased {lease.path} until {_until(lease)} (lease {lease.id}, token {lease.token})." for lease in granted.data
    ]
    ctx.output.result(granted, "\n".join(lines))
    return 0


def run_lease_release(ctx: Context) -> int:
    """Release the agent's lease on each path (another agent's with ``--force``, once it is inactive)."""
    args = ctx.args
    with _Agent(ctx) as agent:
        me = agent.client.me.get().agent.slug
        keys = agent.client.leases.path_keys()
        live = agent.client.leases.list().data
        released = []
        for path in args.paths:
            normalised = agent.normalised(path)
            wanted = keys.named(normalised)
            lease = next((lease for lease in live if lease.key in wanted and lease.agent == me), None)
            if lease is None and args.force:
                lease = next((lease for lease in live if lease.key in wanted), None)
            if lease is None:
                raise CliError(f"no live lease of yours on {agent.normalised(path)}", code="LEASE_NOT_FOUND")
            agent.client.leases.release(lease.id, force=lease.agent != me)
            released.append(lease)
    text = "\n".join(f"Released {lease.path} (lease {lease.id}, {lease.agent}'s)." for lease in released)
    ctx.output.result({"released": [lease.id for lease in released]}, text)
    return 0


def run_lease_list(ctx: Context) -> int:
    """List the project's live leases, paths opened."""
    with _Agent(ctx) as agent:
        leases = agent.client.leases.list(agent=ctx.args.agent).data
    rows = [
        [lease.path, lease.agent, "exclusive" if lease.exclusive else "shared", _until(lease), lease.reason or ""]
        for lease in leases
    ]
    text = ctx.output.table(rows, ["PATH", "AGENT", "KIND", "UNTIL", "REASON"]) if rows else "No live leases."
    ctx.output.result({"data": leases}, text)
    return 0


def _task_line(task: Task) -> str:
    who = f" by {task.assignee}" if task.assignee else ""
    blocked = f" (blocked by {', '.join(task.blocked_by)})" if task.blocked_by and task.state.value == "open" else ""
    return f"{task.id}  {task.state.value}{who}  {task.title}{blocked}"


def _read_text(value: str | None) -> str | None:
    return sys.stdin.read() if value == "-" else value


def run_task_add(ctx: Context) -> int:
    """Add a task to the project's board."""
    args = ctx.args
    with _Agent(ctx) as agent:
        task = agent.client.tasks.create(args.title, body=_read_text(args.body), blocked_by=args.blocked_by or None)
    ctx.output.result(task, f"Added task {task.id}: {task.title}")
    return 0


def run_task_list(ctx: Context) -> int:
    """List the project's tasks (all pages), oldest first."""
    args = ctx.args
    with _Agent(ctx) as agent:
        assignee = agent.client.me.get().agent.slug if args.mine else None
        tasks = list(agent.client.tasks.list(state=args.state, assignee=assignee))
    text = "\n".join(_task_line(task) for task in tasks) or "No tasks."
    ctx.output.result({"data": tasks}, text)
    return 0


def _task_change(ctx: Context, said: str, change: Callable[[Client], Task]) -> int:
    with _Agent(ctx) as agent:
        task = change(agent.client)
    ctx.output.result(task, f"{said} task {task.id}: {task.title}")
    return 0


def run_task_claim(ctx: Context) -> int:
    """Claim a task; another agent's claim exits 1 naming it."""
    return _task_change(ctx, "Claimed", lambda client: client.tasks.claim(ctx.args.task_id))


def run_task_release(ctx: Context) -> int:
    """Give a claimed task back to the board."""
    return _task_change(ctx, "Released", lambda client: client.tasks.release(ctx.args.task_id, force=ctx.args.force))


def run_task_done(ctx: Context) -> int:
    """Mark a claimed task done, with a result."""
    text = _read_text(ctx.args.result)
    return _task_change(ctx, "Done:", lambda client: client.tasks.done(ctx.args.task_id, text=text))


def run_task_cancel(ctx: Context) -> int:
    """Cancel a task the agent added."""
    return _task_change(ctx, "Cancelled", lambda client: client.tasks.cancel(ctx.args.task_id))


def _hook_script(hook: str, workspace: str) -> str:
    """Return the hook that runs the guard, then the hook that was there before (moved aside)."""
    guard = f"{shlex.quote(sys.executable)} -m nexysync_cli.guard {hook} {shlex.quote(workspace)}"
    chained = f'"$0{CHAINED_SUFFIX}"'
    if hook == "pre-push":  # git gives the pushed refs on stdin: both hooks read them
        body = (
            "input=$(cat)\n"
            f'printf "%s\\n" "$input" | {guard} || exit $?\n'
            f'if [ -x {chained} ]; then printf "%s\\n" "$input" | {chained} "$@"; exit $?; fi\n'
        )
    else:
        body = f'{guard} || exit $?\nif [ -x {chained} ]; then exec {chained} "$@"; fi\n'
    return (
        f"#!/bin/sh\n{GUARD_MARKER}\n"
        f"# It refuses a {'commit' if hook == 'pre-commit' else 'push'} touching a path another agent leases; "
        "NEXYSYNC_GUARD=warn only warns, =off skips it.\n"
        f"# A hook that was here before is now {hook}{CHAINED_SUFFIX}, run after the guard.\n{body}"
    )


def run_guard_install(ctx: Context) -> int:
    """Install the guard as the repository's pre-commit hook (and pre-push), chaining hooks already there."""
    args = ctx.args
    start = Path(args.dir).expanduser().resolve()
    key_path = agent_key_file(None, str(start))

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=start, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise CliError(f"{start} is not in a git repository ({done.stderr.strip()})", code="NOT_A_GIT_REPOSITORY")
        return done.stdout.strip()

    top = Path(git("rev-parse", "--show-toplevel")).resolve()
    hooks_dir = (start / git("rev-parse", "--git-path", "hooks")).resolve()
    workspace = key_path.parent.parent.resolve()
    relative = os.path.relpath(workspace, top) if workspace.is_relative_to(top) else "."
    hooks_dir.mkdir(parents=True, exist_ok=True)
    installed, chained = [], []
    for hook in HOOKS[: 2 if args.pre_push else 1]:
        path = hooks_dir / hook
        aside = path.with_name(hook + CHAINED_SUFFIX)
        if path.exists() and GUARD_MARKER not in path.read_text("utf-8", errors="replace"):
            if aside.exists():
                raise CliError(
                    f"{path} is not the guard's, and {aside.name} is taken: merge them by hand, then install again",
                    code="HOOK_IN_THE_WAY",
                )
            path.rename(aside)
        if aside.exists():
            chained.append(aside.name)
        path.write_text(_hook_script(hook, relative), encoding="utf-8")
        path.chmod(0o755)
        installed.append(str(path))
    text = f"{PREFIX} installed: " + ", ".join(installed)
    if chained:
        text += f"; it runs the hooks that were there before after itself ({', '.join(chained)})"
    ctx.output.result({"hooks": installed, "chained": chained, "workspace": str(workspace)}, text + ".")
    return 0
