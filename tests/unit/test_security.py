"""Credentials (nexysync_server.security): password hashes, API keys and access tokens."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from nexysync_server.security import (
    API_KEY_RE,
    PasswordHasher,
    SessionlessToken,
    api_key_prefix,
    make_access_token,
    new_api_key,
    read_access_token,
    scrypt_hash,
)

SECRET = "unit-test-secret-0123456789abcdef0123456789"
# A cheap cost keeps these tests fast; the default's cost has its own test.
HASHER = PasswordHasher(memory_kib=64, iterations=1)
hash_password, verify_password = HASHER.hash, HASHER.verify


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
    now = datetime.now(UTC)
    token = make_access_token(SECRET, "01J00000000000000000000USR", "01J0000000000000000000FAM1", now, 60)

    read = read_access_token(SECRET, token)

    assert read.user_id == "01J00000000000000000000USR"
    assert read.session_id == "01J0000000000000000000FAM1"
    assert read.expires_at == int(now.timestamp()) + 60


def test_access_token_without_a_session_is_told_apart() -> None:
    # Signed before tokens named their session: valid, but the caller must refresh it.
    token = jwt.encode(_claims(sid=None), SECRET, algorithm="HS256")

    with pytest.raises(SessionlessToken):
        read_access_token(SECRET, token)


def test_expired_access_token_is_refused() -> None:
    token = make_access_token(SECRET, "user", "fam", datetime.now(UTC) - timedelta(minutes=10), 60)

    with pytest.raises(jwt.ExpiredSignatureError):
        read_access_token(SECRET, token)


def test_access_token_signed_with_another_secret_is_refused() -> None:
    token = make_access_token("another-secret-0123456789abcdef0123456789", "user", "fam", datetime.now(UTC), 60)

    with pytest.raises(jwt.InvalidTokenError) as raised:
        read_access_token(SECRET, token)
    assert not isinstance(raised.value, jwt.ExpiredSignatureError)


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": "nexysync", "sub": "user", "sid": "fam", "typ": "access", "iat": now, "exp": now + 60}
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
