"""Benchmark: lease claim and release round trips, task claims, and the git guard's run time.

On a fresh embedded database with one API process (``_api.running_api``):

1. ``--rounds`` lease claims through the SDK (one path each, keys made and the path sealed on the
   client) each released at once, while another agent holds 100 leases: p50 and p99 of each;
2. as many tasks added then claimed: the claim's p50 and p99;
3. the guard as git runs it (``python -m nexysync_cli.guard pre-commit``, a new process each time,
   one staged file) in a real repository, ``--guard-runs`` times each: with nothing leased; with
   150 leases (the repository agent's own 100, another's 50) none of which covers the file; and
   with one that does (refused).
   The time includes the interpreter's start; the goal is "well under 200 ms" with nothing leased.

Run: ``python tests/bench/bench_coordination.py [--rounds 300] [--guard-runs 20]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _api import running_api, seed_keys

from nexysync import Client, KeyRing
from nexysync.crypto import new_key
from nexysync.keyfile import key_file_fields, write_key_file


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered) * 1000:7.2f} ms   p99 {p99 * 1000:7.2f} ms   (n={len(ordered)})"


def _timed(action: object) -> float:
    started = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - started


def _guard_runs(repo: Path, runs: int) -> tuple[list[float], int]:
    """Run the pre-commit guard ``runs`` times in ``repo``; return the wall times and the last exit code."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NEXYSYNC_")}
    times, code = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "nexysync_cli.guard", "pre-commit"],
            cwd=repo,
            env=env,
            capture_output=True,
            check=False,
        )
        times.append(time.perf_counter() - started)
        code = done.returncode
    return times, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--guard-runs", type=int, default=20)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} / {os.getloadavg()[1]:.2f} (1 / 5 min), {os.cpu_count()} cores")
    with running_api() as api, tempfile.TemporaryDirectory() as tmp:
        project_id, keys = seed_keys(api.base_url)
        project_key = new_key()
        ring = KeyRing([project_key])
        root = Path(tmp)

        def client(slug: str) -> Client:
            return Client(base_url=api.base_url, api_key=keys[slug], key_ring=ring, project_id=project_id)

        with client("sender") as holder, client("receiver") as other:
            # 100 live leases of another agent in the project: each claim checks against them.
            for batch in (range(50), range(50, 100)):  # at most 50 paths per claim
                other.leases.claim_paths([f"lib/held{i}.py" for i in batch], ttl_s=600, root=root)
            first = holder.leases.claim_paths(["warm/up.py"], ttl_s=60, root=root).data[0]  # first-call costs
            holder.leases.release(first.id)
            claims, releases = [], []
            for i in range(args.rounds):
                started = time.perf_counter()
                (lease,) = holder.leases.claim_paths([f"src/module{i}/file.py"], ttl_s=600, root=root).data
                claims.append(time.perf_counter() - started)
                releases.append(_timed(lambda lease_id=lease.id: holder.leases.release(lease_id)))
            print(f"lease claim (1 path, SDK)   {_percentiles(claims)}")
            print(f"lease release               {_percentiles(releases)}")
            task_ids = [holder.tasks.create(f"task {i}").id for i in range(args.rounds)]
            task_claims = [_timed(lambda task_id=task_id: other.tasks.claim(task_id)) for task_id in task_ids]
            print(f"task claim                  {_percentiles(task_claims)}")

            repo = root / "repo"
            repo.mkdir()
            fields = key_file_fields(
                api_key=keys["receiver"], api_url=api.base_url, project_id=project_id, keys=[project_key],
                agent_name="Receiver",
            )  # fmt: skip
            write_key_file(repo, fields)
            git_env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b"}
            subprocess.run(["git", "init", "-q"], cwd=repo, check=True, env=git_env)
            (repo / "src" / "auth").mkdir(parents=True)
            (repo / "src" / "auth" / "login.py").write_text("x\n")
            subprocess.run(["git", "add", "src/auth/login.py"], cwd=repo, check=True, env=git_env)
            for lease in other.leases.list().data:
                other.leases.release(lease.id)
            assert holder.leases.list().data == []
            nothing, code = _guard_runs(repo, args.guard_runs)
            assert code == 0
            print(f"guard, nothing leased       {_percentiles(nothing)}")
            for batch in (range(50), range(50, 100)):  # at most 50 paths per claim
                other.leases.claim_paths([f"lib/held{i}.py" for i in batch], ttl_s=600, root=root)
            holder.leases.claim_paths([f"lib/part{i}.py" for i in range(50)], ttl_s=600, root=root)
            elsewhere, code = _guard_runs(repo, args.guard_runs)
            assert code == 0
            print(f"guard, 150 leases elsewhere {_percentiles(elsewhere)}")
            holder.leases.claim_paths(["src/auth/"], ttl_s=600, root=root)
            refused, code = _guard_runs(repo, args.guard_runs)
            assert code == 1, "the guard did not refuse a leased path"
            print(f"guard, path leased (refuse) {_percentiles(refused)}")
            bare = [_timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True)) for _ in range(10)]
            print(f"(python -c pass, for scale  {_percentiles(bare)})")


if __name__ == "__main__":
    main()
