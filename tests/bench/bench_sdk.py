"""Benchmark: the SDK's costs against the bare libraries it is built on.

(a) Encryption throughput of ``nexysync.crypto.KeyRing.encrypt`` (AES-256-GCM plus the envelope)
against raw ``cryptography`` ``AESGCM.encrypt`` on the same payloads (1 KiB and 64 KiB), with the
same associated data and a fresh nonce each time; prints MB/s and the ratio.

(b) Send rate of ``Client.messages.send`` (sequential: encrypt, POST, parse and decrypt the
answer) against raw httpx POSTing the same, already encrypted, bodies sequentially to the same
server (an embedded database and one API process, as ``bench_send.py`` starts them); prints both
rates and the ratio.

Run: ``python tests/bench/bench_sdk.py [--messages N] [--rounds R]`` (or ``tox -e bench``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from nexysync import Client
from nexysync.crypto import KeyRing, associated_data, new_key
from nexysync_server.embedded import EmbeddedMongo, free_port
from nexysync_server.ids import new_id

READY_DEADLINE_S = 60.0
PROJECT = "01JAAAAAAAAAAAAAAAAAAAAAAA"
RECORD = "01JBBBBBBBBBBBBBBBBBBBBBBB"
TOPIC = "benchmark topic"
PAYLOAD = "x" * 200


def _throughput(encrypt: Callable[[], object], size: int, min_seconds: float) -> float:
    """Return MB/s (10**6 bytes of plaintext per second) of calling ``encrypt`` repeatedly."""
    for _ in range(20):
        encrypt()
    count = 0
    started = time.perf_counter()
    elapsed = 0.0
    while elapsed < min_seconds:
        for _ in range(50):
            encrypt()
        count += 50
        elapsed = time.perf_counter() - started
    return count * size / elapsed / 1e6


def bench_crypto(min_seconds: float, rounds: int) -> None:
    """Print KeyRing.encrypt against raw AESGCM.encrypt throughput at 1 KiB and 64 KiB."""
    key = new_key()
    ring = KeyRing([key])
    aead = AESGCM(key)
    ad = associated_data(PROJECT, "message", RECORD, "payload")
    print("(a) encryption throughput, AES-256-GCM (best of rounds)")
    for size in (1024, 64 * 1024):
        payload = os.urandom(size)

        def sdk(payload: bytes = payload) -> str:
            return ring.encrypt(payload, project_id=PROJECT, kind="message", record_id=RECORD, field="payload")

        def raw(payload: bytes = payload) -> bytes:
            return aead.encrypt(os.urandom(12), payload, ad)

        sdk_rates, raw_rates = [], []
        for _ in range(rounds):  # alternate, so that drift in machine speed hits both alike
            sdk_rates.append(_throughput(sdk, size, min_seconds))
            raw_rates.append(_throughput(raw, size, min_seconds))
        sdk_best, raw_best = max(sdk_rates), max(raw_rates)
        label = f"{size // 1024} KiB"
        print(f"  {label:>6}  KeyRing.encrypt: {sdk_best:9.1f} MB/s   raw AESGCM.encrypt: {raw_best:9.1f} MB/s", end="")
        print(f"   ratio SDK / raw: {sdk_best / raw_best:5.2f}")


def _wait_ready(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/v1/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError("the API did not become ready")


def _seed(base_url: str) -> tuple[str, str]:
    """Register an owner, make a project with agents sender and receiver; return (project id, sender key)."""
    with httpx.Client(base_url=base_url, timeout=10) as http:
        tokens = http.post(
            "/v1/auth/register",
            json={
                "email": f"bench-{new_id().lower()}@example.test",
                "name": "Bench",
                "password": "benchmark!",
                "tos_accepted": True,
            },
        ).json()
        http.headers["Authorization"] = f"Bearer {tokens['access_token']}"
        project_id = http.post("/v1/projects", json={"name": "bench"}).json()["id"]
        sender = http.post(f"/v1/projects/{project_id}/agents", json={"slug": "sender", "name": "Sender"}).json()
        http.post(f"/v1/projects/{project_id}/agents", json={"slug": "receiver", "name": "Receiver"}).raise_for_status()
    return project_id, sender["api_key"]


def _bodies(ring: KeyRing, project_id: str, count: int) -> list[dict[str, str]]:
    """Return ``count`` send bodies, encrypted as the SDK encrypts them (fresh ids)."""
    bodies = []
    for _ in range(count):
        message_id = new_id()

        def seal(field: str, text: str, message_id: str = message_id) -> str:
            return ring.encrypt(text.encode(), project_id=project_id, kind="message", record_id=message_id, field=field)

        bodies.append(
            {
                "id": message_id,
                "to": "receiver",
                "type": "request",
                "topic": seal("topic", TOPIC),
                "payload": seal("payload", PAYLOAD),
            }
        )
    return bodies


def _run_sdk(client: Client, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        client.messages.send("receiver", topic=TOPIC, payload=PAYLOAD, type="request")
    return time.perf_counter() - started


def _run_raw(http: httpx.Client, bodies: list[dict[str, str]]) -> float:
    started = time.perf_counter()
    for body in bodies:
        response = http.post("/v1/messages", json=body, headers={"Idempotency-Key": body["id"]})
        if response.status_code != 201:
            raise RuntimeError(f"send failed: {response.status_code} {response.text[:300]}")
    return time.perf_counter() - started


def bench_send(messages: int, rounds: int) -> None:
    """Print Client.messages.send against raw httpx sequential send rates on one server."""
    with tempfile.TemporaryDirectory() as tmp, EmbeddedMongo(Path(tmp) / "db") as mongo:
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "NEXYSYNC_MONGODB_URI": mongo.uri,
            "NEXYSYNC_JWT_SECRET": "bench-" + "x" * 32,
            # The benchmark sends far more than an agent may per minute in production.
            "NEXYSYNC_RATE_LIMIT_PER_MINUTE": "100000000",
            "NEXYSYNC_QUOTA_MESSAGES_PER_DAY": "100000000",
        }
        api = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "nexysync_server.app:create_app",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
        )
        try:
            _wait_ready(base_url, api)
            project_id, api_key = _seed(base_url)
            ring = KeyRing([new_key()])
            auth = {"Authorization": f"Bearer {api_key}"}
            with (
                Client(base_url=base_url, api_key=api_key, key_ring=ring, project_id=project_id) as sdk,
                httpx.Client(base_url=base_url, headers=auth, timeout=30) as http,
            ):
                _run_sdk(sdk, 50)
                _run_raw(http, _bodies(ring, project_id, 50))
                sdk_times, raw_times = [], []
                for _ in range(rounds):  # alternate, so that a growing collection weighs on both alike
                    sdk_times.append(_run_sdk(sdk, messages))
                    raw_times.append(_run_raw(http, _bodies(ring, project_id, messages)))
        finally:
            api.terminate()
            api.wait(timeout=30)
    sdk_rate = messages / min(sdk_times)
    raw_rate = messages / min(raw_times)
    print(f"(b) sequential sends, {messages} messages per round, best of {rounds}; nx-27017 (embedded), 1 API worker")
    print(f"  SDK Client.messages.send:        {sdk_rate:8.1f} msg/s  ({min(sdk_times):.2f} s)")
    print(f"  raw httpx POST (pre-encrypted):  {raw_rate:8.1f} msg/s  ({min(raw_times):.2f} s)")
    print(f"  ratio SDK / raw:                 {sdk_rate / raw_rate:8.2f}")


def main() -> None:
    """Run both benchmarks and print the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--crypto-seconds", type=float, default=0.5, help="minimum time per crypto measurement")
    args = parser.parse_args()
    bench_crypto(args.crypto_seconds, args.rounds)
    bench_send(args.messages, args.rounds)


if __name__ == "__main__":
    main()
