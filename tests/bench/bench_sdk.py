"""Benchmark: the SDK's costs against the bare libraries it is built on.

(a) Encryption throughput of ``nexysync.crypto.KeyRing.encrypt`` (AES-256-GCM plus the envelope)
against raw ``cryptography`` ``AESGCM.encrypt`` on the same payloads (1 KiB and 64 KiB), with the
same associated data and a fresh nonce each time; prints MB/s and the ratio. Beside them, the
ceiling of any envelope of the format DESIGN.md fixes (base64url text): raw ``AESGCM`` plus only the
base64url step (pybase64, SIMD) over the same bytes, and its ratio to raw.

(b) Send rate of ``Client.messages.send`` (sequential: encrypt, POST, parse and decrypt the
answer) against raw httpx POSTing the same, already encrypted, bodies sequentially to the same
server (an embedded database and one API process, as ``bench_send.py`` starts them); prints both
rates and the ratio.

Run: ``python tests/bench/bench_sdk.py [--messages N] [--rounds R]`` (or ``tox -e bench``).
"""

from __future__ import annotations

import argparse
import io
import os
import time
from collections.abc import Callable

import httpx
import pybase64
from _api import running_api, seed
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from nexysync import Client
from nexysync.crypto import (
    FILE_SEGMENT_BYTES,
    KeyRing,
    associated_data,
    decrypt_file_stream,
    encrypt_file_stream,
    new_key,
)
from nexysync_server.ids import new_id

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
    """Print KeyRing encrypt/decrypt against raw AESGCM throughput at 1 KiB and 64 KiB."""
    key = new_key()
    ring = KeyRing([key])
    aead = AESGCM(key)
    # What the SDK writes: a v2 envelope bound to its author and routing.
    bound = (("from", "alice"), ("to", "bob"), ("reply_to", "-"))
    ad = associated_data(PROJECT, "message", RECORD, "payload", bound)
    print("(a) field encryption throughput, AES-256-GCM (best of rounds)")
    for size in (1024, 64 * 1024):
        payload = os.urandom(size)
        envelope = ring.encrypt(
            payload, project_id=PROJECT, kind="message", record_id=RECORD, field="payload", bound=bound
        )
        nonce = os.urandom(12)
        sealed = aead.encrypt(nonce, payload, ad)

        def sdk_encrypt(payload: bytes = payload) -> str:
            return ring.encrypt(
                payload, project_id=PROJECT, kind="message", record_id=RECORD, field="payload", bound=bound
            )

        def raw_encrypt(payload: bytes = payload) -> bytes:
            return aead.encrypt(os.urandom(12), payload, ad)

        def sdk_decrypt(envelope: str = envelope) -> bytes:
            return ring.decrypt(
                envelope, project_id=PROJECT, kind="message", record_id=RECORD, field="payload", bound=bound
            )

        def raw_decrypt(nonce: bytes = nonce, sealed: bytes = sealed) -> bytes:
            return aead.decrypt(nonce, sealed, ad)

        # The least any envelope of this format costs: AES-GCM and base64url, nothing else.
        body = envelope.rpartition(".")[2] + "=" * (-len(envelope.rpartition(".")[2]) % 4)

        def floor_encrypt(payload: bytes = payload) -> bytes:
            nonce = os.urandom(12)
            return pybase64.b64encode(nonce + aead.encrypt(nonce, payload, ad), altchars=b"-_")

        def floor_decrypt(body: str = body) -> bytes:
            raw = pybase64.b64decode(body, altchars=b"-_")
            return aead.decrypt(raw[:12], raw[12:], ad)

        label = f"{size // 1024} KiB"
        for name, sdk, raw, floor in (
            ("encrypt", sdk_encrypt, raw_encrypt, floor_encrypt),
            ("decrypt", sdk_decrypt, raw_decrypt, floor_decrypt),
        ):
            sdk_rates, raw_rates, floor_rates = [], [], []
            for _ in range(rounds):  # alternate, so that drift in machine speed hits all alike
                sdk_rates.append(_throughput(sdk, size, min_seconds))
                raw_rates.append(_throughput(raw, size, min_seconds))
                floor_rates.append(_throughput(floor, size, min_seconds))
            sdk_best, raw_best, floor_best = max(sdk_rates), max(raw_rates), max(floor_rates)
            print(f"  {label:>6}  KeyRing.{name}: {sdk_best:8.1f} MB/s", end="")
            print(f"   raw AESGCM.{name}: {raw_best:8.1f} MB/s   ratio SDK / raw: {sdk_best / raw_best:5.2f}")
            print(
                f"  {'':>6}  ceiling of a base64url envelope (AESGCM + base64url only): {floor_best:8.1f} MB/s", end=""
            )
            print(f"   ratio ceiling / raw: {floor_best / raw_best:5.2f}")


def bench_file_crypto(min_seconds: float, rounds: int) -> None:
    """Print file content encryption (64 KiB segments, streamed) against raw AESGCM over the same chunks."""
    key = new_key()
    ring = KeyRing([key])
    aead = AESGCM(key)
    ad = associated_data(PROJECT, "file", RECORD, "content")
    content = os.urandom(8 * 1024 * 1024)
    chunks = [content[i : i + FILE_SEGMENT_BYTES] for i in range(0, len(content), FILE_SEGMENT_BYTES)]
    sealed = b"".join(encrypt_file_stream(ring, io.BytesIO(content).read, project_id=PROJECT, file_id=RECORD))
    nonce = os.urandom(12)
    raw_sealed = [aead.encrypt(nonce, chunk, ad) for chunk in chunks]

    def sdk_encrypt() -> None:
        for _ in encrypt_file_stream(ring, io.BytesIO(content).read, project_id=PROJECT, file_id=RECORD):
            pass

    def raw_encrypt() -> None:
        for chunk in chunks:
            aead.encrypt(nonce, chunk, ad)

    def sdk_decrypt() -> None:
        # Fed as a download arrives: in 1 MiB pieces.
        pieces = (sealed[i : i + 1024 * 1024] for i in range(0, len(sealed), 1024 * 1024))
        for _ in decrypt_file_stream(ring, pieces, project_id=PROJECT, file_id=RECORD):
            pass

    def raw_decrypt() -> None:
        for segment in raw_sealed:
            aead.decrypt(nonce, segment, ad)

    print("(a2) file content, 8 MiB streamed in 64 KiB segments (best of rounds)")
    for name, sdk, raw in (("encrypt", sdk_encrypt, raw_encrypt), ("decrypt", sdk_decrypt, raw_decrypt)):
        sdk_rates, raw_rates = [], []
        for _ in range(rounds):
            sdk_rates.append(_throughput(sdk, len(content), min_seconds))
            raw_rates.append(_throughput(raw, len(content), min_seconds))
        sdk_best, raw_best = max(sdk_rates), max(raw_rates)
        print(f"  64 KiB  file {name}: {sdk_best:8.1f} MB/s", end="")
        print(f"   raw AESGCM.{name}: {raw_best:8.1f} MB/s   ratio SDK / raw: {sdk_best / raw_best:5.2f}")


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
    with running_api() as api:
        base_url = api.base_url
        project_id, api_key = seed(base_url)
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
    bench_file_crypto(args.crypto_seconds, args.rounds)
    bench_send(args.messages, args.rounds)


if __name__ == "__main__":
    main()
