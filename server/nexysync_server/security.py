"""Credentials: password hashes, JWT access tokens, refresh tokens and agent API keys."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
from datetime import datetime, timedelta

import jwt
from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

# scrypt cost: 2**14 with r=8 takes 16 MiB and ~40 ms here; OWASP's floor for scrypt.
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_SALT_BYTES = 16
_HASH_BYTES = 32

API_KEY_RE = re.compile(r"^nsync_([a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?)_([0-9a-f]{40})$")
_JWT_ALGORITHM = "HS256"
_JWT_ISSUER = "nexysync"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """Hash a password with scrypt; the result names its parameters so they can change later."""
    salt = os.urandom(_SALT_BYTES)
    kdf = Scrypt(salt=salt, length=_HASH_BYTES, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    digest = kdf.derive(password.encode())
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Tell whether ``password`` matches the ``stored`` hash, in constant time."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    try:
        kdf = Scrypt(salt=_unb64(salt), length=_HASH_BYTES, n=int(n), r=int(r), p=int(p))
        kdf.verify(password.encode(), _unb64(digest))
    except (InvalidKey, ValueError, TypeError):
        # A wrong password, or a stored hash that is not one of ours: never a match.
        return False
    return True


# A real hash to check against when the account does not exist, so a login for an unknown
# email takes as long as one with a wrong password and does not reveal which emails exist.
DUMMY_PASSWORD_HASH = hash_password(secrets.token_urlsafe(16))


def sha256_hex(value: str) -> str:
    """Return the hex SHA-256 of a string (how keys and refresh tokens are stored)."""
    return hashlib.sha256(value.encode()).hexdigest()


def new_api_key(slug: str) -> str:
    """Make an agent API key ``nsync_<slug>_<40 hex>``."""
    return f"nsync_{slug}_{secrets.token_hex(20)}"


def api_key_prefix(api_key: str) -> str:
    """Return the displayable start of an API key: everything up to 4 hex digits of the secret."""
    return api_key[: len(api_key) - 36]


def new_refresh_token() -> str:
    """Make an opaque refresh token (32 random bytes, base64url, 43 characters)."""
    return secrets.token_urlsafe(32)


def make_access_token(secret: str, user_id: str, now: datetime, ttl_s: int) -> str:
    """Sign a short-lived access token for ``user_id``."""
    claims = {
        "iss": _JWT_ISSUER,
        "sub": user_id,
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_s)).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=_JWT_ALGORITHM)


def read_access_token(secret: str, token: str) -> str:
    """Return the user id of a valid access token.

    Raises:
        jwt.InvalidTokenError: the token is malformed, forged, expired or not an access token.
    """
    claims = jwt.decode(
        token,
        secret,
        algorithms=[_JWT_ALGORITHM],
        issuer=_JWT_ISSUER,
        options={"require": ["exp", "iat", "sub", "iss"]},
    )
    if claims.get("typ") != "access" or not isinstance(claims["sub"], str):
        raise jwt.InvalidTokenError("not an access token")
    return claims["sub"]
