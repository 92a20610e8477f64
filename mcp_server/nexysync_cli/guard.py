"""``nexysync guard``: a git hook that refuses a commit (or a push) touching a path another agent leases.

``nexysync guard install`` writes the hooks; git then runs ``python -m nexysync_cli.guard
pre-commit`` (and ``pre-push``), which:

1. does nothing when ``NEXYSYNC_GUARD=off``, or outside a NexySync workspace (no
   ``.nexysync/key`` from the repository upward);
2. lists the paths the commit touches (staged: added, changed, deleted, both sides of a rename) or
   the commits a push sends, and stops there when there are none;
3. asks the API for the project's live leases (``GET /v1/leases``) and stops there when no other
   agent holds an exclusive one; this is the path of every commit while nothing is leased, so it
   loads the standard library and :mod:`nexysync.keyfile` only;
4. otherwise makes each path's lease keys with the project key (:mod:`nexysync.paths`) and
   refuses the commit when a path is, or is under, another agent's exclusive lease, naming the
   holder, the leased path and when the lease ends. ``NEXYSYNC_GUARD=warn`` says the same and lets
   the commit through.

When the API cannot be reached, or the key file cannot be read, the guard says so on stderr and
lets the commit through: it never blocks work because NexySync is down, and never passes a commit
silently without saying it was not checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from nexysync.keyfile import KeyFileError, find_key_file, load_key_file

TYPE_CHECKING = False
if TYPE_CHECKING:  # ``typing`` costs every commit a few ms at run time; only checkers need it
    from typing import Any

    from nexysync.keyfile import KeyFile

__all__ = ["HOOKS", "MODES", "Conflict", "conflicts", "main", "touched_paths"]

HOOKS = ("pre-commit", "pre-push")
MODES = ("block", "warn", "off")
ENV_MODE = "NEXYSYNC_GUARD"
HTTP_TIMEOUT_S = 3.0
#: What a pushed ref's "remote sha" is when the branch is new, and a local one when it is deleted.
_NO_COMMIT = "0" * 40
PREFIX = "nexysync guard"


class GuardError(Exception):
    """The guard cannot check now (the API or the key file is not usable): it warns and lets the change through."""


class Conflict:
    """One touched path in the way of another agent's exclusive lease."""

    __slots__ = ("lease", "path")

    def __init__(self, path: str, lease: dict[str, Any]) -> None:
        self.path = path
        self.lease = lease


def _git(*args: str, cwd: Path | None = None, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, input=stdin, capture_output=True, text=True, check=False, encoding="utf-8"
    )
    if done.returncode != 0:
        raise GuardError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def _names(output: str) -> list[str]:
    return [name for name in output.split("\0") if name]


def touched_paths(hook: str, top: Path, stdin_text: str = "") -> list[str]:
    """Return the repository paths (relative to its top) a commit or a push changes, each once.

    Args:
        hook: ``pre-commit`` (the staged changes) or ``pre-push`` (the commits of each pushed ref,
            as git gives them on stdin: ``<local ref> <local sha> <remote ref> <remote sha>``).
        top: The repository's top directory.
        stdin_text: What git gave a pre-push hook on stdin.
    """
    if hook == "pre-commit":
        # --no-renames: a rename is its old path deleted and its new one added; both are touched.
        return _names(_git("diff", "--cached", "--name-only", "--no-renames", "-z", cwd=top))
    paths: dict[str, None] = {}
    for line in stdin_text.splitlines():
        fields = line.split()
        if len(fields) != 4 or fields[1] == _NO_COMMIT:
            continue  # a deleted branch sends no commit
        local, remote = fields[1], fields[3]
        if remote == _NO_COMMIT:
            # A new branch: every commit not on any remote yet.
            listed = _git("log", "--name-only", "--no-renames", "-z", "--format=", local, "--not", "--remotes", cwd=top)
        else:
            listed = _git("diff", "--name-only", "--no-renames", "-z", remote, local, cwd=top)
        paths.update(dict.fromkeys(_names(listed)))
    return list(paths)


def _get(config: KeyFile, path: str) -> Any:
    base = config.api_url.rstrip("/")
    request = urllib.request.Request(
        f"{base}{path}", headers={"Authorization": f"Bearer {config.api_key}", "Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise GuardError(f"the NexySync API at {base} answered {exc.code} to {path}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise GuardError(f"the NexySync API at {base} cannot be reached ({exc})") from exc


def conflicts(config: KeyFile, workspace: Path, top: Path, paths: list[str]) -> list[Conflict]:
    """Return the touched paths another agent's exclusive lease covers, with that lease (its path opened).

    Raises:
        GuardError: the API cannot be reached or refuses the key.
    """
    leases = [lease for lease in _get(config, "/v1/leases").get("data") or [] if lease.get("exclusive")]
    if not leases:
        return []  # the path of every commit while nothing is leased: no crypto, no second call
    me = _get(config, "/v1/me")
    slug, project_id = me["agent"]["slug"], me["project_id"]
    leases = [lease for lease in leases if lease.get("agent") != slug]
    if not leases:
        return []
    from nexysync.paths import PathKeys, normalise  # the crypto: only when another agent leases something

    ring = config.key_ring()
    keys = PathKeys(ring, project_id)
    found: list[Conflict] = []
    for path in paths:
        try:
            normalised = normalise(top / path, workspace)
        except ValueError:
            continue  # outside the workspace: no lease of this project names it
        key, ancestors = keys.of(normalised)
        for lease in leases:
            if lease["key"] == key or lease["key"] in ancestors or key in lease.get("ancestors", ()):
                from nexysync import decrypt_record  # the SDK's models: only to name what is in the way

                try:
                    lease = decrypt_record(ring, project_id, "Lease", lease)
                except Exception as exc:  # shown as what it is; the holder and the end still are
                    lease = {**lease, "path": f"[a path this workspace's key cannot open: {exc}]", "reason": None}
                found.append(Conflict(normalised, lease))
                break
    return found


def describe(found: list[Conflict]) -> str:
    """Return the lines that name each path, its holder, the leased path and when the lease ends."""
    lines = []
    for conflict in found:
        lease = conflict.lease
        reason = f"; reason: {lease['reason']}" if lease.get("reason") else ""
        lines.append(
            f"  {conflict.path}: leased by {lease['agent']} (lease {lease['id']} on {lease['path']}, "
            f"until {lease['expires_at']}{reason})"
        )
    return "\n".join(lines)


def _mode(stderr: Any) -> str:
    mode = (os.environ.get(ENV_MODE) or "block").strip().lower()
    if mode not in MODES:
        print(f"{PREFIX}: {ENV_MODE}={mode!r} is not one of {', '.join(MODES)}; blocking", file=stderr)
        return "block"
    return mode


def main(argv: list[str], stdin: Any = None, stderr: Any = None) -> int:
    """Run the guard as the git hook ``argv[0]``; return its exit code (1 refuses the commit or push).

    ``argv[1]``, when given, is the workspace relative to the repository's top (where
    ``nexysync guard install`` found the key file); the key file is looked for from there upward.
    """
    stdin, stderr = stdin or sys.stdin, stderr or sys.stderr
    if not argv or argv[0] not in HOOKS or len(argv) > 2:
        print(f"usage: python -m nexysync_cli.guard {'|'.join(HOOKS)} [WORKSPACE]  (run by git)", file=stderr)
        return 2
    hook = argv[0]
    workspace = argv[1] if len(argv) > 1 else "."
    mode = _mode(stderr)
    if mode == "off":
        return 0
    stdin_text = stdin.read() if hook == "pre-push" else ""
    what = "commit" if hook == "pre-commit" else "push"
    try:
        top = Path(_git("rev-parse", "--show-toplevel").strip())
        key_path = find_key_file(top / workspace)
        if key_path is None:
            return 0  # not a NexySync workspace
        paths = touched_paths(hook, top, stdin_text)
        if not paths:
            return 0
        try:
            config = load_key_file(key_path)
        except KeyFileError as exc:
            raise GuardError(f"the key file cannot be used: {exc}") from exc
        found = conflicts(config, key_path.parent.parent, top, paths)
    except GuardError as exc:
        print(f"{PREFIX}: {exc}; this {what} was NOT checked against the project's leases.", file=stderr)
        return 0
    if not found:
        return 0
    held = f"{len(found)} path(s) this {what} touches are leased by another agent:\n{describe(found)}"
    if mode == "warn":
        print(f"{PREFIX} (warn): {held}\nGoing on, as {ENV_MODE}=warn.", file=stderr)
        return 0
    print(
        f"{PREFIX}: {what} refused. {held}\n"
        "Ask the holder to release it (`nexysync lease list` shows every lease), wait for the lease to end, "
        f"or {what} anyway with {ENV_MODE}=warn.",
        file=stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
