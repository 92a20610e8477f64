"""Credentials: password hashes, JWT access tokens, refresh tokens and agent API keys."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

# The scrypt cost of hashes made before Argon2id; still verified, and rehashed at the next login.
_SALT_BYTES = 16
_HASH_BYTES = 32

API_KEY_RE = re.compile(r"^nsync_([a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?)_([0-9a-f]{40})$")
_JWT_ALGORITHM = "HS256"
_JWT_ISSUER = "nexysync"
#: Argon2id's floor: lanes x 8 KiB of memory.
_MIN_MEMORY_KIB = 8


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PasswordHasher:
    """Hash passwords with Argon2id at a configured cost; verify those and older scrypt hashes.

    A hash names its scheme and parameters (``argon2id$<memory KiB>$<passes>$<lanes>$salt$digest``,
    or ``scrypt$<n>$<r>$<p>$salt$digest``), so the cost can rise later: :meth:`needs_rehash` tells
    which stored hashes to replace at their owner's next successful login.

    Args:
        memory_kib: Argon2id memory per hash (OWASP: 19 MiB with 2 passes).
        iterations: Argon2id passes.
    """

    def __init__(self, memory_kib: int = 19456, iterations: int = 2) -> None:
        if memory_kib < _MIN_MEMORY_KIB or iterations < 1:
            raise ValueError("Argon2id needs at least 8 KiB of memory and one pass")
        self._memory_kib = memory_kib
        self._iterations = iterations
        self._lanes = 1
        # A real hash to check against when the account does not exist, so a login for an unknown
        # email takes as long as one with a wrong password and does not reveal which emails exist.
        self.dummy_hash = self.hash(secrets.token_urlsafe(16))

    def _params(self) -> str:
        return f"{self._memory_kib}${self._iterations}${self._lanes}"

    def hash(self, password: str) -> str:
        """Hash a password (it blocks for the whole cost: run it in a thread)."""
        salt = os.urandom(_SALT_BYTES)
        kdf = Argon2id(
            salt=salt,
            length=_HASH_BYTES,
            iterations=self._iterations,
            lanes=self._lanes,
            memory_cost=self._memory_kib,
        )
        return f"argon2id${self._params()}${_b64(salt)}${_b64(kdf.derive(password.encode()))}"

    def verify(self, password: str, stored: str) -> bool:
        """Tell whether ``password`` matches the ``stored`` hash, in constant time (it blocks, too)."""
        try:
            scheme, first, second, third, salt, digest = stored.split("$")
            if scheme == "argon2id":
                kdf: Argon2id | Scrypt = Argon2id(
                    salt=_unb64(salt),
                    length=_HASH_BYTES,
                    iterations=int(second),
                    lanes=int(third),
                    memory_cost=int(first),
                )
            elif scheme == "scrypt":
                kdf = Scrypt(salt=_unb64(salt), length=_HASH_BYTES, n=int(first), r=int(second), p=int(third))
            else:
                return False
            kdf.verify(password.encode(), _unb64(digest))
        except (InvalidKey, ValueError, TypeError):
            # A wrong password, or a stored hash that is not one of ours: never a match.
            return False
        return True

    def needs_rehash(self, stored: str) -> bool:
        """Tell whether a stored hash was made with another scheme or cost than this hasher's."""
        return not stored.startswith(f"argon2id${self._params()}$")


def scrypt_hash(password: str, n: int = 2**14, r: int = 8, p: int = 1) -> str:
    """Hash a password the way accounts made before Argon2id were (for tests of the upgrade)."""
    salt = os.urandom(_SALT_BYTES)
    digest = Scrypt(salt=salt, length=_HASH_BYTES, n=n, r=r, p=p).derive(password.encode())
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def sha256_hex(value: str) -> str:
    """Return the hex SHA-256 of a string (how keys and refresh tokens are stored)."""
    return hashlib.sha256(value.encode()).hexdigest()


def new_api_key(slug: str) -> str:
    """Make an agent API key ``nsync_<slug>_<40 hex>``."""
    return f"nsync_{slug}_{secrets.token_hex(20)}"


DEVICE_TOKEN_RE = re.compile(r"^nsdev_[0-9a-f]{40}$")


def new_device_token() -> str:
    """Make a device token ``nsdev_<40 hex>`` (only its SHA-256 is stored)."""
    return f"nsdev_{secrets.token_hex(20)}"


def api_key_prefix(api_key: str) -> str:
    """Return the displayable start of an API key: everything up to 4 hex digits of the secret."""
    return api_key[: len(api_key) - 36]


def new_refresh_token() -> str:
    """Make an opaque refresh token (32 random bytes, base64url, 43 characters)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class AccessToken:
    """What a valid access token says."""

    user_id: str
    #: The sign-in it belongs to: its refresh family, which signing out ends.
    session_id: str
    #: When it stops working (epoch seconds).
    expires_at: int


class SessionlessToken(jwt.InvalidTokenError):
    """A valid token signed before access tokens named their session: refresh it for one that does."""


def make_access_token(secret: str, user_id: str, session_id: str, now: datetime, ttl_s: int) -> str:
    """Sign a short-lived access token for ``user_id`` in the session (refresh family) ``session_id``."""
    claims = {
        "iss": _JWT_ISSUER,
        "sub": user_id,
        "sid": session_id,
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_s)).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=_JWT_ALGORITHM)


def read_access_token(secret: str, token: str) -> AccessToken:
    """Read a valid access token (whether its session is still signed in is the caller's to check).

    Raises:
        SessionlessToken: the token is valid but names no session (made before sessions were).
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
    session_id = claims.get("sid")
    if not isinstance(session_id, str) or not session_id:
        raise SessionlessToken("the token names no session")
    return AccessToken(claims["sub"], session_id, int(claims["exp"]))
