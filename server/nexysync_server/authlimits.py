"""Limits on the ways in that need no key: sign-ins, registrations and refused credentials.

Counted in MongoDB, one ``$inc`` per counted request, so every worker and server sees the same
counts at once (sign-ins are rare enough for a write each; the agent limiter batches instead).
Each counter is a fixed window keyed ``<kind>:<subject>:<window>`` and expires with a TTL index.

- failed sign-ins per account, and per account and client IP: once either is spent, the account
  is refused from there (or from everywhere) until the window ends, *before* the password is
  checked, so the right password does not help a guesser and a flood costs no hashing;
- auth requests (register, login, refresh, logout, refused API keys) per client IP;
- registrations per client IP: with the same answer time for a new and a taken email (the
  password is hashed either way), this is what keeps ``EMAIL_TAKEN`` from being an oracle at scale.

Every refusal is a 429 with ``Retry-After``; the first refusal of a window is audited, the
others are not, so a flood cannot fill the audit log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from .errors import Problem
from .ids import utcnow
from .security import sha256_hex
from .settings import Settings
from .store.audit import AuditStore


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: str
    limit: int
    window_s: int
    code: str
    detail: str


def too_many(code: str, detail: str, limit: int, reset_s: int) -> Problem:
    """Return the 429 problem of a spent limit, with the headers that say when to retry."""
    return Problem(
        429,
        code,
        f"{detail}; retry in {reset_s} s.",
        headers={
            "Retry-After": str(reset_s),
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(reset_s),
        },
    )


class AuthLimits:
    """Count and enforce the limits on unauthenticated ways in.

    Args:
        db: Where the counters live (collection ``auth_limits``).
        settings: The limits and their windows.
        audit: Where the first refusal of each window is recorded.
    """

    def __init__(self, db: AsyncDatabase[Any], settings: Settings, audit: AuditStore) -> None:
        self.col = db["auth_limits"]
        self._audit = audit
        window = settings.login_failure_window_s
        minutes = max(1, window // 60)
        self._account = _Rule(
            "login-account",
            settings.login_failures_per_account,
            window,
            "TOO_MANY_FAILED_LOGINS",
            f"This account had {settings.login_failures_per_account} failed sign-ins in {minutes} minutes",
        )
        self._account_ip = _Rule(
            "login-account-ip",
            settings.login_failures_per_account_ip,
            window,
            "TOO_MANY_FAILED_LOGINS",
            f"This account had {settings.login_failures_per_account_ip} failed sign-ins from this address "
            f"in {minutes} minutes",
        )
        self._ip = _Rule(
            "auth-ip",
            settings.auth_requests_per_ip_per_minute,
            60,
            "RATE_LIMITED",
            f"This address made {settings.auth_requests_per_ip_per_minute} sign-in requests this minute",
        )
        self._registrations = _Rule(
            "register-ip",
            settings.registrations_per_ip_per_hour,
            3600,
            "TOO_MANY_REGISTRATIONS",
            f"This address registered {settings.registrations_per_ip_per_hour} accounts this hour",
        )

    async def ensure_indexes(self) -> None:
        """Create the TTL index that drops finished windows."""
        await self.col.create_index("expires_at", expireAfterSeconds=0)

    async def auth_request(self, ip: str) -> None:
        """Count one auth request from ``ip``; refuse it (429) past the per-IP limit."""
        await self._count_or_refuse(self._ip, ip, ip)

    async def registration(self, ip: str) -> None:
        """Count one registration attempt from ``ip``; refuse it (429) past the per-IP limit."""
        await self._count_or_refuse(self._registrations, ip, ip)

    async def check_login(self, email: str, ip: str) -> None:
        """Refuse (429) a sign-in to an account that spent its failures, from anywhere or from ``ip``."""
        account = sha256_hex(email.lower())
        for rule, subject in ((self._account, account), (self._account_ip, f"{account}|{ip}")):
            key, reset_s = _window(rule, subject)
            doc = await self.col.find_one({"_id": key}, {"count": 1})
            if doc is not None and int(doc["count"]) >= rule.limit:
                refused = await self.col.find_one_and_update(
                    {"_id": key}, {"$inc": {"refused": 1}}, return_document=ReturnDocument.AFTER
                )
                if refused is not None and int(refused.get("refused", 0)) == 1:
                    await self._audit.record(None, "anonymous", "auth.login", f"email:{email.lower()}", rule.code, ip)
                raise too_many(rule.code, rule.detail, rule.limit, reset_s)

    async def login_failed(self, email: str, ip: str) -> None:
        """Count a failed sign-in against the account and against the account from ``ip``."""
        account = sha256_hex(email.lower())
        await self._increment(self._account, account)
        await self._increment(self._account_ip, f"{account}|{ip}")

    async def _count_or_refuse(self, rule: _Rule, subject: str, ip: str) -> None:
        count, reset_s = await self._increment(rule, subject)
        if count > rule.limit:
            if count == rule.limit + 1:
                await self._audit.record(None, "anonymous", f"limit.{rule.kind}", f"ip:{ip}", rule.code, ip)
            raise too_many(rule.code, rule.detail, rule.limit, reset_s)

    async def _increment(self, rule: _Rule, subject: str) -> tuple[int, int]:
        """Add one to the subject's counter of the current window; return the new count and seconds left."""
        key, reset_s = _window(rule, subject)
        update = {"$inc": {"count": 1}}
        try:
            doc = await self.col.find_one_and_update(
                {"_id": key}, update, upsert=True, return_document=ReturnDocument.AFTER
            )
        except DuplicateKeyError:
            # Two first hits raced to create the counter: it exists now, so increment it.
            doc = await self.col.find_one_and_update({"_id": key}, update, return_document=ReturnDocument.AFTER)
        if doc is not None and "expires_at" not in doc:
            await self.col.update_one(
                {"_id": key}, {"$set": {"expires_at": utcnow() + timedelta(seconds=reset_s + rule.window_s)}}
            )
        return (int(doc["count"]) if doc else 1), reset_s


def _window(rule: _Rule, subject: str) -> tuple[str, int]:
    """Return the counter key of ``subject``'s current window and the seconds until it ends."""
    now = time.time()
    window = int(now // rule.window_s)
    reset_s = max(1, int((window + 1) * rule.window_s - now + 0.999))
    return f"{rule.kind}:{subject}:{window}", reset_s
