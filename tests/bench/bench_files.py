"""Benchmark: files through the CDN against copying the same bytes on local disk.

(a) Throughput of ``client.files.upload`` and ``client.files.download`` (encrypting and decrypting
in 64 KiB segments, streamed over HTTP to and from the CDN app, which writes to and reads from its
volume) against ``shutil.copyfile`` of the same file on the same disk; prints MB/s and the ratio
(goal: at least 0.3). Two ceilings are printed beside them: a local copy made durable (``fsync``),
which is the least an upload costs since the CDN makes each one durable before it is ready, and a
bare httpx GET of the same ciphertext from the CDN that decrypts and keeps nothing, which is the
most a download through the SDK's HTTP client can reach.

(b) The CDN process's peak memory growth during a 20 MB upload: its ``VmHWM`` (peak RSS) from
``/proc/<pid>/status`` before and after (reset first through ``/proc/<pid>/clear_refs`` where the
kernel allows; goal: under 5 MB, i.e. it does not grow with the file).

The API and the CDN run as two processes (uvicorn, one worker each) on one embedded database, as
in production. Run: ``python tests/bench/bench_files.py [--mb 20] [--rounds 3]`` (or ``tox -e bench``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from _api import CDN_APP, seed, start_api

from nexysync import Client
from nexysync.crypto import KeyRing, new_key
from nexysync_server.store.embedded import EmbeddedMongo, free_port

MB = 1_000_000


@contextmanager
def running_api_and_cdn(root: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start an embedded database, one API process and one CDN process; yield the API URL and the CDN process."""
    with EmbeddedMongo(root / "db") as mongo:
        api_port, cdn_port = free_port(), free_port()
        settings = {
            "NEXYSYNC_CDN_URL": f"http://127.0.0.1:{cdn_port}",
            "NEXYSYNC_FILES_DIR": str(root / "files"),
            "NEXYSYNC_QUOTA_STORAGE_MB": "100000",
        }
        processes = [start_api(mongo.uri, api_port, **settings)]
        try:
            processes.append(start_api(mongo.uri, cdn_port, app=CDN_APP, ready_path="/health", **settings))
            yield f"http://127.0.0.1:{api_port}", processes[1]
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _durable_copy(source: Path, target: Path) -> None:
    """Copy a file and flush it to disk, as the CDN does with an upload before it is ready."""
    shutil.copyfile(source, target)
    with target.open("rb") as handle:
        os.fsync(handle.fileno())


def _bare_get(http: httpx.Client, url: str) -> None:
    """Read a download URL to the end and keep nothing: the HTTP client's own ceiling."""
    with http.stream("GET", url) as response:
        response.raise_for_status()
        for _ in response.iter_raw():
            pass


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {field}")


def _reset_peak(pid: int) -> bool:
    """Reset the process's peak RSS (Linux: write 5 to clear_refs); tell whether it worked."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=20, help="file size in MB (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is printed (default: %(default)s)")
    args, _ = parser.parse_known_args()
    size = args.mb * MB
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        source = root / "source.bin"
        with source.open("wb") as handle:
            for _ in range(args.mb):
                handle.write(os.urandom(MB))
        with running_api_and_cdn(root) as (api_url, cdn):
            project_id, api_key = seed(api_url)
            ring = KeyRing([new_key()])
            with (
                Client(base_url=api_url, api_key=api_key, key_ring=ring, project_id=project_id) as client,
                httpx.Client(timeout=60) as bare,
            ):
                client.files.upload(source, name="warm-up")  # first-use costs (imports, connections) out of the way
                local, durable, uploads, downloads, bare_gets = [], [], [], [], []
                file_id = ""
                for round_no in range(args.rounds):
                    copy = root / f"copy-{round_no}.bin"
                    local.append(_timed(lambda copy=copy: shutil.copyfile(source, copy)))
                    copy.unlink()
                    durable.append(_timed(lambda copy=copy: _durable_copy(source, copy)))
                    copy.unlink()
                    started = time.perf_counter()
                    file_id = client.files.upload(source, name=f"bench-{round_no}").id
                    uploads.append(time.perf_counter() - started)
                    target = root / f"download-{round_no}.bin"
                    downloads.append(
                        _timed(lambda target=target, file_id=file_id: client.files.download(file_id, to=target))
                    )
                    target.unlink()
                    url = str(client.files.get(file_id).download_url)
                    bare_gets.append(_timed(lambda url=url: _bare_get(bare, url)))
                    client.files.delete(file_id)

                # (b) peak memory of the CDN process during one upload of the file
                reset = _reset_peak(cdn.pid)
                rss_before, hwm_before = _status_kb(cdn.pid, "VmRSS"), _status_kb(cdn.pid, "VmHWM")
                client.files.upload(source, name="memory")
                hwm_after = _status_kb(cdn.pid, "VmHWM")

        medians = (statistics.median(v) for v in (local, durable, uploads, downloads, bare_gets))
        local_rate, durable_rate, up_rate, down_rate, bare_rate = (size / seconds / MB for seconds in medians)
        print(f"(a) {args.mb} MB file, median of {args.rounds} rounds; ratios against each local copy")
        print(f"    local disk copy (shutil.copyfile, page cache)  {local_rate:9.1f} MB/s")
        print(f"    local disk copy made durable (+ fsync)         {durable_rate:9.1f} MB/s")
        for label, rate in (
            ("upload (SDK encrypts, CDN fsyncs)", up_rate),
            ("download (SDK decrypts)", down_rate),
            ("bare httpx GET, nothing kept", bare_rate),
        ):
            print(f"    {label:<34} {rate:9.1f} MB/s   ratio {rate / local_rate:.2f} / {rate / durable_rate:.2f}")
        print("    (goal: ratio at least 0.3)")
        baseline = "reset through clear_refs" if reset else "not resettable here: the peak since start"
        print(f"(b) CDN process peak RSS during a {args.mb} MB upload ({baseline})")
        before, rss, after = hwm_before / 1024, rss_before / 1024, hwm_after / 1024
        print(f"    before {before:.1f} MiB (RSS {rss:.1f} MiB), after {after:.1f} MiB")
        print(f"    growth {(hwm_after - hwm_before) / 1024:.2f} MiB   (goal: under 5 MB)")


if __name__ == "__main__":
    main()
