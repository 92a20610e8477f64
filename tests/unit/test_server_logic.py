"""Pure logic of the server and of client-side crypto: ids, credentials, caching, validation, envelopes."""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import time
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nexysync.crypto import DecryptionError, KeyRing, key_id, new_key
from nexysync_generated import load_spec
from nexysync_server import cache as cache_module
from nexysync_server.cache import TtlCache
from nexysync_server.errors import Problem
from nexysync_server.ids import iso, new_id, parse_rfc3339
from nexysync_server.security import (
    API_KEY_RE,
    PasswordHasher,
    api_key_prefix,
    make_access_token,
    new_api_key,
    read_access_token,
    scrypt_hash,
)
from nexysync_server.store.messages import body_fingerprint, status_for
from nexysync_server.validation import SchemaValidator

CROCKFORD_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SECRET = "unit-test-secret-0123456789abcdef0123456789"
PROJECT = "01J0000000000000000000000P"
# A cheap cost keeps these tests fast; the default's cost has its own test.
HASHER = PasswordHasher(memory_kib=64, iterations=1)
hash_password, verify_password = HASHER.hash, HASHER.verify
RECORD = "01J0000000000000000000000M"
SPEC: dict[str, Any] = load_spec()
ENVELOPE_RE = re.compile(SPEC["components"]["schemas"]["Envelope"]["pattern"])


# --- ids ---------------------------------------------------------------------------------------


def test_new_id_is_a_crockford_ulid_strictly_increasing_in_a_tight_loop() -> None:
    ids = [new_id() for _ in range(10_000)]

    assert all(CROCKFORD_ULID.match(value) for value in ids)
    assert all(earlier < later for earlier, later in itertools.pairwise(ids))


def test_new_id_starts_with_the_current_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    value = new_id()
    after = time.time_ns() // 1_000_000

    millis = 0
    for char in value[:10]:
        millis = millis * 32 + CROCKFORD.index(char)
    # Ids made in the same millisecond may borrow the next one, hence the small allowance.
    assert before <= millis <= after + 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), "2026-01-02T03:04:05.678Z"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05.000Z"),
        (datetime(2026, 1, 2, 5, 4, 5, 1000, tzinfo=timezone(timedelta(hours=2))), "2026-01-02T03:04:05.001Z"),
        (datetime(2026, 1, 2, 3, 4, 5, 999999), "2026-01-02T03:04:05.999Z"),
    ],
    ids=["utc", "whole-second", "offset", "naive-is-utc"],
)
def test_iso_is_utc_with_milliseconds_and_z(value: datetime, expected: str) -> None:
    assert iso(value) == expected


def test_iso_strings_sort_in_time_order() -> None:
    start = datetime(2026, 1, 2, 23, 59, 59, 998000, tzinfo=UTC)
    moments = [start + timedelta(milliseconds=step * 7) for step in range(50)]

    assert sorted(iso(moment) for moment in reversed(moments)) == [iso(moment) for moment in moments]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02t03:04:05z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05.250Z", datetime(2026, 1, 2, 3, 4, 5, 250000, tzinfo=UTC)),
        ("2026-01-02T05:04:05+02:00", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-01T22:04:05.5-05:00", datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)),
        ("2026-01-02T03:04:05+00:00", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ],
)
def test_parse_rfc3339_accepts_z_and_offsets_and_returns_utc(text: str, expected: datetime) -> None:
    parsed = parse_rfc3339(text)

    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-02",
        "2026-01-02T03:04:05",
        "2026-01-02 03:04:05Z",
        "03:04:05Z",
        "garbage",
        "",
        "2026-13-02T03:04:05Z",
        "2026-01-02T03:04:05+0200",
        "1767323045",
    ],
)
def test_parse_rfc3339_rejects_what_is_not_a_date_time(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339(text)


# --- security ----------------------------------------------------------------------------------


def test_password_hash_round_trip_and_wrong_password() -> None:
    stored = hash_password("correct horse battery")

    assert stored.startswith("argon2id$64$1$1$")
    assert "correct horse battery" not in stored
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterY", stored)
    assert not verify_password("", stored)


def test_the_default_cost_is_owasps_argon2id_recommendation() -> None:
    # OWASP Password Storage Cheat Sheet: Argon2id, m=19 MiB, t=2, p=1.
    assert PasswordHasher().hash("x").startswith("argon2id$19456$2$1$")


def test_old_scrypt_hashes_still_verify_and_ask_for_a_rehash() -> None:
    old = scrypt_hash("correct horse battery")

    assert verify_password("correct horse battery", old)
    assert not verify_password("wrong", old)
    assert HASHER.needs_rehash(old)
    assert HASHER.needs_rehash(PasswordHasher(memory_kib=128, iterations=1).hash("x"))
    assert not HASHER.needs_rehash(hash_password("x"))


def test_password_hashes_are_salted() -> None:
    first, second = hash_password("same password"), hash_password("same password")

    assert first != second
    assert verify_password("same password", first) and verify_password("same password", second)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "not-a-hash",
        "argon2id$v=19$m=65536,t=3,p=4$c2FsdA$ZGlnZXN0",
        "scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2E",
        "scrypt$16384$8$1$!!!$ZGlnZXN0",
        "scrypt$sixteen$8$1$c2FsdHNhbHRzYWx0c2E$ZGlnZXN0",
        "scrypt$3$8$1$c2FsdHNhbHRzYWx0c2E$ZGlnZXN0",
    ],
    ids=["empty", "garbage", "other-scheme", "missing-part", "bad-base64", "non-integer-cost", "invalid-cost"],
)
def test_a_malformed_stored_hash_never_matches(stored: str) -> None:
    assert verify_password("correct horse battery", stored) is False


def test_api_key_format_and_prefix() -> None:
    key = new_api_key("build-bot")
    prefix = api_key_prefix(key)

    assert re.fullmatch(r"nsync_build-bot_[0-9a-f]{40}", key)
    match = API_KEY_RE.match(key)
    assert match is not None and match.group(1) == "build-bot"
    assert key.startswith(prefix)
    # The prefix tells keys apart without giving away the secret: 4 of its 40 hex digits.
    assert prefix == key[: len("nsync_build-bot_") + 4]
    assert new_api_key("build-bot") != key


def test_api_key_pattern_refuses_near_misses() -> None:
    good = new_api_key("a")
    for bad in [good.upper(), good[:-1], good + "0", good.replace("nsync_", "nsync-"), "nsync_-a_" + "0" * 40]:
        assert API_KEY_RE.match(bad) is None, bad


def test_access_token_round_trip() -> None:
    token = make_access_token(SECRET, "01J00000000000000000000USR", datetime.now(UTC), 60)

    assert read_access_token(SECRET, token) == "01J00000000000000000000USR"


def test_expired_access_token_is_refused() -> None:
    token = make_access_token(SECRET, "user", datetime.now(UTC) - timedelta(minutes=10), 60)

    with pytest.raises(jwt.ExpiredSignatureError):
        read_access_token(SECRET, token)


def test_access_token_signed_with_another_secret_is_refused() -> None:
    token = make_access_token("another-secret-0123456789abcdef0123456789", "user", datetime.now(UTC), 60)

    with pytest.raises(jwt.InvalidTokenError) as raised:
        read_access_token(SECRET, token)
    assert not isinstance(raised.value, jwt.ExpiredSignatureError)


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": "nexysync", "sub": "user", "typ": "access", "iat": now, "exp": now + 60}
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


@pytest.mark.parametrize(
    "claims",
    [
        _claims(typ="refresh"),
        _claims(typ=None),
        _claims(iss="someone-else"),
        _claims(exp=None),
        _claims(sub=None),
    ],
    ids=["typ-refresh", "no-typ", "other-issuer", "no-exp", "no-sub"],
)
def test_token_that_is_not_an_access_token_is_refused(claims: dict[str, Any]) -> None:
    token = jwt.encode(claims, SECRET, algorithm="HS256")

    with pytest.raises(jwt.InvalidTokenError):
        read_access_token(SECRET, token)


def test_unsigned_token_is_refused() -> None:
    token = jwt.encode(_claims(), None, algorithm="none")

    with pytest.raises(jwt.InvalidTokenError):
        read_access_token(SECRET, token)


# --- TtlCache ----------------------------------------------------------------------------------


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        """Return the current fake time."""
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Make the cache module read time from a fake clock (the real time module stays untouched)."""
    fake = FakeClock()
    monkeypatch.setattr(cache_module, "time", SimpleNamespace(monotonic=fake.monotonic))
    return fake


def test_cache_entry_lives_for_its_ttl_then_expires(clock: FakeClock) -> None:
    cache: TtlCache[str, int] = TtlCache(ttl_s=5.0)
    cache.put("a", 1)

    clock.now += 4.9
    assert cache.get("a") == 1
    clock.now += 0.2
    assert cache.get("a") is None
    clock.now -= 1.0  # the expired entry is gone, not merely hidden
    assert cache.get("a") is None


def test_cache_put_again_restarts_the_ttl(clock: FakeClock) -> None:
    cache: TtlCache[str, str] = TtlCache(ttl_s=5.0)
    cache.put("a", "old")
    clock.now += 4.0
    cache.put("a", "new")
    clock.now += 4.0

    assert cache.get("a") == "new"


def test_cache_keeps_at_most_max_entries_dropping_the_oldest(clock: FakeClock) -> None:
    cache: TtlCache[str, int] = TtlCache(ttl_s=60.0, max_entries=3)
    for number, key in enumerate("abc"):
        cache.put(key, number)
    cache.put("a", 10)  # written again: now the newest
    cache.put("d", 3)

    assert cache.get("b") is None
    assert [cache.get(key) for key in "acd"] == [10, 2, 3]
    cache.put("e", 4)
    assert cache.get("c") is None
    assert [cache.get(key) for key in "ade"] == [10, 3, 4]


def test_cache_drop_forgets_a_key_and_ignores_unknown_ones(clock: FakeClock) -> None:
    cache: TtlCache[tuple[str, str], str] = TtlCache(ttl_s=60.0)
    cache.put(("p", "alice"), "id-1")
    cache.put(("p", "bob"), "id-2")

    cache.drop(("p", "alice"))
    cache.drop(("p", "nobody"))

    assert cache.get(("p", "alice")) is None
    assert cache.get(("p", "bob")) == "id-2"


# --- SchemaValidator against the real contract --------------------------------------------------


def _envelope(field: str, text: str = "x") -> str:
    return KeyRing([bytes(range(32))]).encrypt(
        text.encode(), project_id=PROJECT, kind="message", record_id=RECORD, field=field
    )


def _message_create(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": RECORD,
        "to": "bob",
        "type": "request",
        "topic": _envelope("topic"),
        "payload": _envelope("payload"),
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


@pytest.fixture(scope="module")
def validator() -> SchemaValidator:
    """A validator over the contract the server ships."""
    return SchemaValidator(load_spec())


def _problem(validator: SchemaValidator, schema: str, document: Any) -> Problem:
    with pytest.raises(Problem) as raised:
        validator.check(schema, document)
    problem = raised.value
    assert problem.status_code == 422
    assert problem.code == "VALIDATION_FAILED"
    assert problem.errors
    return problem


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"to": None, "broadcast": True},
        {"broadcast": False},
        {"priority": "urgent", "reply_to": "01J0000000000000000000000R", "metadata": _envelope("metadata")},
    ],
    ids=["direct", "broadcast", "direct-broadcast-false", "all-fields"],
)
def test_valid_message_create_passes(validator: SchemaValidator, changes: dict[str, Any]) -> None:
    validator.check("MessageCreate", _message_create(**changes))


def test_plaintext_topic_is_a_422_naming_topic(validator: SchemaValidator) -> None:
    problem = _problem(validator, "MessageCreate", _message_create(topic="hello in clear"))

    assert [error["field"] for error in problem.errors or []] == ["topic"]
    assert "topic" in problem.description
    # The message tells what to send, not the contract's regular expression.
    assert "ciphertext made by the client" in (problem.errors or [{}])[0]["message"]
    assert "[0-9a-f]" not in (problem.errors or [{}])[0]["message"]


def test_extra_property_is_rejected(validator: SchemaValidator) -> None:
    problem = _problem(validator, "MessageCreate", _message_create(sneaky="value"))

    assert any("sneaky" in error["message"] for error in problem.errors or [])


@pytest.mark.parametrize(
    "changes",
    [{"to": None}, {"broadcast": True}, {"to": None, "broadcast": False}],
    ids=["neither", "both", "broadcast-false-alone"],
)
def test_exactly_one_of_to_and_broadcast(validator: SchemaValidator, changes: dict[str, Any]) -> None:
    _problem(validator, "MessageCreate", _message_create(**changes))


def test_unknown_schema_name_is_a_programming_error(validator: SchemaValidator) -> None:
    with pytest.raises(KeyError):
        validator.check("NoSuchSchema", {})


# --- message fingerprint and status ------------------------------------------------------------


def test_body_fingerprint_is_stable_and_sensitive_to_content() -> None:
    body = _message_create()

    assert body_fingerprint(body) == body_fingerprint(dict(reversed(list(body.items()))))
    assert body_fingerprint(body) == body_fingerprint({**body, "priority": "normal"})
    assert body_fingerprint(body) == body_fingerprint({**body, "broadcast": False})
    assert body_fingerprint(body) != body_fingerprint({**body, "payload": _envelope("payload", "y")})
    assert body_fingerprint(body) != body_fingerprint({**body, "priority": "urgent"})
    assert body_fingerprint(body) != body_fingerprint({**body, "to": "carol"})
    assert body_fingerprint(body) != body_fingerprint({**body, "metadata": _envelope("metadata")})


def test_status_for_each_party() -> None:
    message = {"recipients": ["bob", "carol", "dave"], "read_by": ["carol", "dave"], "acked_by": ["dave"]}

    assert status_for(message, "bob") == "unread"
    assert status_for(message, "carol") == "read"
    assert status_for(message, "dave") == "acked"
    assert status_for(message, "alice") == "sent"


# --- client-side envelopes ---------------------------------------------------------------------

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
