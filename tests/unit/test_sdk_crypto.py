"""The SDK's field envelopes (nexysync.crypto): known answers, binding, tampering, key rings."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nexysync.crypto import DecryptionError, KeyRing, key_id, new_key
from nexysync_generated import load_spec

PROJECT = "01J0000000000000000000000P"
RECORD = "01J0000000000000000000000M"
SPEC: dict[str, Any] = load_spec()
ENVELOPE_RE = re.compile(SPEC["components"]["schemas"]["Envelope"]["pattern"])


KAT_KEY = bytes(range(32))
KAT_ENVELOPE = "v1.630dcd29.AAAAAAAAAAAAAAAAZtnZstoAo9Nt0NBGYULykyeseP7SpoXtgq0myrJRIw"


def _seal(ring: KeyRing, data: bytes, *, record_id: str = RECORD, field: str = "payload") -> str:
    return ring.encrypt(data, project_id=PROJECT, kind="message", record_id=record_id, field=field)


def _open(ring: KeyRing, envelope: str, *, record_id: str = RECORD, field: str = "payload") -> bytes:
    return ring.decrypt(envelope, project_id=PROJECT, kind="message", record_id=record_id, field=field)


def test_known_answer() -> None:
    ring = KeyRing([KAT_KEY])
    envelope = ring.encrypt(
        b"hello, nexysync", project_id=PROJECT, kind="message", record_id=RECORD, field="payload", nonce=bytes(12)
    )

    assert envelope == KAT_ENVELOPE
    assert _open(ring, KAT_ENVELOPE) == b"hello, nexysync"


def test_kid_is_the_first_8_hex_of_sha256_of_the_key() -> None:
    key = new_key()
    envelope = _seal(KeyRing([key]), b"x")

    assert key_id(key) == hashlib.sha256(key).hexdigest()[:8]
    assert envelope.split(".")[1] == hashlib.sha256(key).hexdigest()[:8]
    assert key_id(KAT_KEY) == "630dcd29"


def test_round_trip_with_fresh_nonces() -> None:
    ring = KeyRing([new_key()])
    first, second = _seal(ring, b"same text"), _seal(ring, b"same text")

    assert first != second
    assert _open(ring, first) == _open(ring, second) == b"same text"


@pytest.mark.parametrize(
    ("record_id", "field"),
    [("01J0000000000000000000000N", "payload"), (RECORD, "topic")],
    ids=["other-record", "other-field"],
)
def test_moved_envelope_fails_naming_record_and_field(record_id: str, field: str) -> None:
    ring = KeyRing([new_key()])
    envelope = _seal(ring, b"secret")

    with pytest.raises(DecryptionError) as raised:
        _open(ring, envelope, record_id=record_id, field=field)
    assert raised.value.record == f"message/{record_id}"
    assert raised.value.field == field
    assert record_id in str(raised.value) and field in str(raised.value)


def test_envelope_moved_to_another_project_fails() -> None:
    ring = KeyRing([new_key()])
    envelope = _seal(ring, b"secret")

    with pytest.raises(DecryptionError):
        ring.decrypt(
            envelope, project_id="01J0000000000000000000000Q", kind="message", record_id=RECORD, field="payload"
        )


@pytest.mark.parametrize("position", [0, 12, 20, -1], ids=["nonce", "ciphertext-start", "ciphertext", "tag"])
def test_tampered_envelope_fails(position: int) -> None:
    ring = KeyRing([new_key()])
    prefix, body = _seal(ring, b"pay 10 EUR to alice").rsplit(".", 1)
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[position] ^= 0x01
    tampered = prefix + "." + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()

    with pytest.raises(DecryptionError):
        _open(ring, tampered)


@pytest.mark.parametrize(
    "envelope",
    [
        "",
        "hello",
        "v2.630dcd29.AAAA",
        "v1.630dcd29.",
        "v1.630dcd29.AAAAAAAA",
        "v1.630DCD29." + "A" * 40,
        "v1.630dcd2." + "A" * 40,
        "v1.630dcd29." + "A" * 39 + "=",
        "v1.630dcd29.+/" + "A" * 38,
        "v1.630dcd29." + "A" * 20 + "." + "A" * 19,
        "v1.630dcd29." + "A" * 41,
        "v1.630dcd29. " + "A" * 40,
    ],
    ids=[
        "empty",
        "plaintext",
        "version",
        "no-body",
        "too-short",
        "uppercase-kid",
        "short-kid",
        "padded",
        "standard-alphabet",
        "extra-dot",
        "impossible-length",
        "whitespace",
    ],
)
def test_malformed_envelope_fails(envelope: str) -> None:
    with pytest.raises(DecryptionError):
        _open(KeyRing([KAT_KEY]), envelope)


def test_key_not_in_ring_fails_naming_the_key() -> None:
    stranger = KeyRing([new_key()])
    envelope = _seal(stranger, b"secret")

    with pytest.raises(DecryptionError) as raised:
        _open(KeyRing([new_key()]), envelope)
    assert stranger.current_id in str(raised.value)


def test_ring_of_two_encrypts_with_the_newest_and_decrypts_both() -> None:
    old, new = new_key(), new_key()
    ring = KeyRing([old, new])
    from_old = _seal(KeyRing([old]), b"before rotation")
    from_new = _seal(KeyRing([new]), b"after rotation")
    sealed = _seal(ring, b"now")

    assert ring.current_id == key_id(new)
    assert sealed.split(".")[1] == key_id(new)
    assert _open(ring, from_old) == b"before rotation"
    assert _open(ring, from_new) == b"after rotation"
    assert _open(KeyRing([new]), sealed) == b"now"
    with pytest.raises(DecryptionError):
        _open(KeyRing([old]), sealed)


def test_ring_refuses_bad_keys() -> None:
    with pytest.raises(ValueError):
        KeyRing([])
    with pytest.raises(ValueError):
        KeyRing([bytes(31)])
    with pytest.raises(ValueError):
        KeyRing.from_base64(["not base64!"])
    ring = KeyRing.from_base64([base64.b64encode(KAT_KEY).decode()])
    assert ring.current_id == "630dcd29"


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=4096), field=st.sampled_from(["topic", "payload", "metadata"]))
def test_any_bytes_round_trip_in_an_envelope_the_contract_accepts(data: bytes, field: str) -> None:
    ring = KeyRing([KAT_KEY])
    envelope = _seal(ring, data, field=field)

    assert ENVELOPE_RE.match(envelope), envelope
    assert _open(ring, envelope, field=field) == data
