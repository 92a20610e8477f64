"""The limits on every way in: requests per caller per minute, and the ways in that need no key.

**Requests per caller** (:class:`RateLimiter`): each process counts its requests in memory and
adds them to the shared per-minute counter once a second, reading back the total; a check
compares the shared total plus this process's unsent count against the limit. The first request
of a caller in a minute reads the shared count, so a new worker does not start from zero. Far
from the limit that costs no write per request; near it, a process works on its share of what is
left (see :func:`must_settle`): once its unsent count would pass a sixteenth of what the shared
total leaves, the request adds it (and itself) to the shared counter at once and is let through
only if the new total is within the limit. So the workers of a server overshoot a limit by at
most a sixteenth of it for each worker but one (19% with four), and the last requests of a
window are counted exactly.

**Sign-ins, registrations and refused credentials** (:class:`AuthLimits`): one counted write
per request, so every worker and server sees the same counts at once (sign-ins are rare enough):

- failed sign-ins per account, and per account and client IP: once either is spent, the account
  is refused from there (or from everywhere) until the window ends, *before* the password is
  checked, so the right password does not help a guesser and a flood costs no hashing;
- auth requests (register, login, refresh, logout, refused API keys) per client IP;
- registrations per client IP: with the same answer time for a new and a taken email (the
  password is hashed either way), this is what keeps ``EMAIL_TAKEN`` from being an oracle at scale;
- pairing: slots opened per user and hour; accepts per client IP and hour (each accept is one
  guess of a code); slot reads and accepts per client IP and minute.

Every refusal is a :class:`~.errors.LimitReached`; the first refusal of a window is audited, the
others are not, so a flood cannot fill the audit log.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..background import Periodic
from ..security import sha256_hex
from ..settings import Settings
from ..store.limits import RequestCounters, WindowCounters
from .audit import Actor, AuditTrail
from .errors import LimitReached

_WINDOW_S = 60
_FLUSH_S = 1.0
#: A process settles at once when its unsent spending would pass this fraction of what is left.
SETTLE_SHARE = 1 / 16


def must_settle(limit: int, shared: int, unsent: int, adding: int) -> bool:
    """Tell whether spending ``adding`` more must be settled with the shared count now.

    Args:
        limit: The limit.
        shared: The shared count as this process last read it (it only grows within a window).
        unsent: What this process spent and has not added to the shared count yet (or is adding).
        adding: What is about to be spent.

    A process may spend up to :data:`SETTLE_SHARE` of what the shared count leaves before it
    tells the others. With ``n`` processes whose views are fresh, together they spend ``n/16``
    of what is left, within the limit for up to sixteen. A settle is exact (its request passes
    only if the new total is within the limit) and makes its process's view fresh, so only the
    other ``n - 1`` can act on an old view, each spending at most a sixteenth of the limit past
    it: with four workers a limit is overshot by at most 3/16 (19%). Near the limit every
    request settles, and is counted exactly.
    """
    return unsent + adding > (limit - shared) * SETTLE_SHARE


# Counter documents of windows this old are deleted at the next flush.
_KEEP_WINDOWS = 5


class RateLimiter:
    """Fixed one-minute windows per caller.

    Args:
        counters: Where the shared counts live.
        per_minute: Requests a caller may make per minute.
        caller: What a caller is, for the refusal's text ("agent", "user").
        name: The background flusher's name.
    """

    def __init__(
        self, counters: RequestCounters, per_minute: int, caller: str = "agent", name: str = "rate-limit"
    ) -> None:
        self._counters = counters
        self._limit = per_minute
        self._caller = caller
        self._pending: Counter[tuple[str, int]] = Counter()
        # Counts being added to the shared counter right now: still this process's to count.
        self._in_flight: Counter[tuple[str, int]] = Counter()
        self._shared: dict[tuple[str, int], int] = {}
        self._flusher = Periodic(f"{name}-flusher", self.flush, _FLUSH_S)
        #: The window whose old counters were last deleted: they age only when the window moves.
        self._swept_window: int | None = None
        #: Callers refused in a window already (by this process): their refusal is on record.
        self._refused: set[tuple[str, int]] = set()

    async def hit(
        self,
        caller_id: str,
        now: float | None = None,
        on_first_refusal: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Count one request of ``caller_id``, or refuse it when over the limit.

        Args:
            caller_id: The caller.
            now: The time (for tests).
            on_first_refusal: Called on the caller's first refusal of a window in this process
                (to put it on record once, not once per try).

        Raises:
            LimitReached: ``RATE_LIMITED``, until the minute ends.
        """
        moment = time.time() if now is None else now
        window = int(moment // _WINDOW_S)
        key = (caller_id, window)
        if key not in self._shared:
            self._shared[key] = await self._counters.count(caller_id, window)
        unsent = self._pending[key] + self._in_flight[key]
        if self._shared[key] + unsent < self._limit:
            if not must_settle(self._limit, self._shared[key], unsent, 1):
                self._pending[key] += 1
                return
            if await self._settle(key) <= self._limit:
                return
        reset_s = max(1, int((window + 1) * _WINDOW_S - moment + 0.999))
        if on_first_refusal is not None and key not in self._refused:
            self._refused.add(key)
            await on_first_refusal()
        raise LimitReached(
            "RATE_LIMITED",
            f"This {self._caller} made {self._limit} requests this minute; retry in {reset_s} s.",
            self._limit,
            reset_s,
            f"{self._caller}_requests",
        )

    async def _settle(self, key: tuple[str, int]) -> int:
        """Add this process's unsent count of ``key`` and one request to the shared counter; return the new total.

        The request is counted even when the total passes the limit and it is refused: the
        window is spent then anyway, and the count only decides refusals.
        """
        amount = self._pending.pop(key, 0) + 1
        self._in_flight[key] += amount
        try:
            total = await self._counters.add(key[0], key[1], amount)
        except BaseException:
            self._pending[key] += amount - 1  # served before, so still to add; this request failed
            raise
        finally:
            self._in_flight[key] -= amount
        self._shared[key] = max(self._shared.get(key, 0), total)
        return total

    async def flush(self) -> None:
        """Add this process's counts to the shared counters and read back the totals."""
        pending, self._pending = self._pending, Counter()
        items = list(pending.items())
        self._in_flight.update(pending)
        for index, (key, count) in enumerate(items):
            try:
                total = await self._counters.add(key[0], key[1], count)
            except Exception:
                # Keep what was not written, to add on the next flush (as the usage counters do).
                for left_key, left in items[index:]:
                    self._pending[left_key] += left
                    self._in_flight[left_key] -= left
                raise
            self._in_flight[key] -= count
            self._shared[key] = max(self._shared.get(key, 0), total)
        current = int(time.time() // _WINDOW_S)
        for key in [key for key in self._shared if key[1] < current - 1]:
            del self._shared[key]
        self._in_flight = +self._in_flight  # drop the zeros
        self._refused = {key for key in self._refused if key[1] >= current - 1}
        if current != self._swept_window:
            await self._counters.forget_before(current - _KEEP_WINDOWS)
            self._swept_window = current

    def start(self) -> None:
        """Flush every second in the background."""
        self._flusher.start()

    async def stop(self) -> None:
        """Stop flushing; write what is left."""
        await self._flusher.stop()
        await self.flush()


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: str
    limit: int
    window_s: int
    code: str
    detail: str


def _refusal(rule: _Rule, reset_s: int) -> LimitReached:
    name = rule.kind.replace("-", "_")
    return LimitReached(rule.code, f"{rule.detail}; retry in {reset_s} s.", rule.limit, reset_s, name)


@dataclass(frozen=True, slots=True)
class LoginSlot:
    """The failed sign-in counted in advance for one password check (the counters' keys it took)."""

    keys: tuple[str, ...]


class AuthLimits:
    """Count and enforce the limits on unauthenticated ways in.

    Args:
        counters: Where the counts live.
        settings: The limits and their windows.
        audit: Where the first refusal of each window is recorded.
    """

    def __init__(self, counters: WindowCounters, settings: Settings, audit: AuditTrail) -> None:
        self._counters = counters
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
        self._pair_offers = _Rule(
            "pair-user",
            settings.pairings_per_user_per_hour,
            3600,
            "TOO_MANY_PAIRINGS",
            f"This account opened {settings.pairings_per_user_per_hour} pairing slots this hour",
        )
        self._pair_accepts = _Rule(
            "pair-accept-ip",
            settings.pairing_accepts_per_ip_per_hour,
            3600,
            "TOO_MANY_PAIRINGS",
            f"This address tried {settings.pairing_accepts_per_ip_per_hour} pairing codes this hour",
        )
        self._pair_requests = _Rule(
            "pair-ip",
            settings.pairing_requests_per_ip_per_minute,
            60,
            "RATE_LIMITED",
            f"This address made {settings.pairing_requests_per_ip_per_minute} pairing requests this minute",
        )

    async def pairing_offer(self, user_id: str, ip: str) -> None:
        """Count one pairing slot opened by ``user_id``; refuse it past the per-user limit (:class:`LimitReached`)."""
        await self._count_or_refuse(self._pair_offers, user_id, ip, target=f"user:{user_id}")

    async def pairing_request(self, ip: str, *, accept: bool = False) -> None:
        """Count one pairing request (a read, or with ``accept`` a guess of a code) from ``ip``.

        Raises:
            LimitReached: past the per-minute limit, or for an accept past the hourly one.
        """
        await self._count_or_refuse(self._pair_requests, ip, ip)
        if accept:
            await self._count_or_refuse(self._pair_accepts, ip, ip)

    async def auth_request(self, ip: str) -> None:
        """Count one auth request from ``ip``; refuse it past the per-IP limit (:class:`LimitReached`)."""
        await self._count_or_refuse(self._ip, ip, ip)

    async def registration(self, ip: str) -> None:
        """Count one registration attempt from ``ip``; refuse it past the per-IP limit (:class:`LimitReached`)."""
        await self._count_or_refuse(self._registrations, ip, ip)

    async def take_login_slot(self, email: str, ip: str) -> LoginSlot:
        """Take a failed sign-in of the account, and of the account from ``ip``, before the password is checked.

        The failure is counted in advance, atomically, so that a burst of concurrent guesses
        gets no more password checks than the limits allow; :meth:`give_back` returns the slot
        when the password was right. Past either limit nothing is kept and the sign-in is
        refused, the right password too.

        Raises:
            LimitReached: ``TOO_MANY_FAILED_LOGINS``.
        """
        account = sha256_hex(email.lower())
        taken: list[str] = []
        # The address's own limit first: a spent address must not spend the account's tries.
        for rule, subject in ((self._account_ip, f"{account}|{ip}"), (self._account, account)):
            key, count, reset_s = await self._increment(rule, subject)
            taken.append(key)
            if count > rule.limit:
                for held in taken:
                    await self._counters.decrement(held)
                if await self._counters.refused(key) == 1:
                    target = f"email:{email.lower()}"
                    await self._audit.record(Actor("anonymous", ip), None, "auth.login", target, rule.code)
                raise _refusal(rule, reset_s)
        return LoginSlot(tuple(taken))

    async def give_back(self, slot: LoginSlot) -> None:
        """Return a sign-in's slot: its password was right, so it was no failure."""
        for key in slot.keys:
            await self._counters.decrement(key)

    async def _count_or_refuse(self, rule: _Rule, subject: str, ip: str, *, target: str | None = None) -> None:
        _, count, reset_s = await self._increment(rule, subject)
        if count > rule.limit:
            if count == rule.limit + 1:
                where = target or f"ip:{ip}"
                await self._audit.record(Actor("anonymous", ip), None, f"limit.{rule.kind}", where, rule.code)
            raise _refusal(rule, reset_s)

    async def _increment(self, rule: _Rule, subject: str) -> tuple[str, int, int]:
        """Add one to the subject's counter of the current window; return its key, the new count and seconds left."""
        key, reset_s = _window(rule, subject)
        return key, await self._counters.increment(key, reset_s + rule.window_s), reset_s


def _window(rule: _Rule, subject: str) -> tuple[str, int]:
    """Return the counter key of ``subject``'s current window and the seconds until it ends."""
    now = time.time()
    window = int(now // rule.window_s)
    reset_s = max(1, int((window + 1) * rule.window_s - now + 0.999))
    return f"{rule.kind}:{subject}:{window}", reset_s
