"""Human accounts: register, sign in, refresh, sign out (one session or all), change the password, delete.

A sign-in starts a session, a family of refresh tokens; each refresh uses one up and issues the
next. A used token that comes back (stolen, or a client that kept a copy) signs the whole family
out. Access tokens name their session, so whatever ends a session ends its access tokens too
(:mod:`.sessions`).

Deleting an account deletes every project it owns with all their data (agents, messages,
events, kv, refs, files and their bytes), exactly as deleting each project would, then the
account and its sessions; the audit trail keeps the entries that record the deletions.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..ids import new_id, utcnow
from ..security import PasswordHasher, make_access_token
from ..settings import Settings
from ..store import Store
from ..store.documents import UserDoc
from ..store.users import EmailTaken
from .audit import Actor, AuditTrail
from .errors import Conflict, Forbidden, Unauthenticated
from .limits import AuthLimits
from .projects import Projects
from .sessions import Sessions


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in user and the tokens of the session."""

    user: UserDoc
    access_token: str
    refresh_token: str
    #: Seconds the access token lives.
    expires_in: int


class Accounts:
    """Registration and the token families of sign-ins.

    The caller counts each request against its address's auth requests first (before the body
    is read); this service adds the registration and failed sign-in limits.

    Args:
        store: Users and refresh tokens.
        settings: Token lifetimes and the signing secret.
        hasher: Password hashing (deliberately slow; run off the event loop).
        limits: Auth requests per address, registrations per address, failed logins.
        audit: Where refused sign-ins and account changes are recorded.
        sessions: Which sessions are signed in; ends them.
        projects: Deletes an account's projects with it.
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        hasher: PasswordHasher,
        limits: AuthLimits,
        audit: AuditTrail,
        sessions: Sessions,
        projects: Projects,
    ) -> None:
        self._store = store
        self._settings = settings
        self._hasher = hasher
        self._limits = limits
        self._audit = audit
        self._sessions = sessions
        self._projects = projects

    async def register(self, actor: Actor, email: str, name: str, password: str) -> Session:
        """Create an account and sign it in.

        A taken email is refused (a person needs to know to sign in instead), after the same
        hashing work as a new one, and registrations per address are limited: probing which
        emails have accounts costs the same time either way and runs out fast.

        Raises:
            Conflict: the email has an account (EMAIL_TAKEN).
            LimitReached: too many registrations from this address.
        """
        await self._limits.registration(actor.ip)
        password_hash = await asyncio.to_thread(self._hasher.hash, password)
        try:
            user = await self._store.users.create(email, name, password_hash)
        except EmailTaken as exc:
            raise Conflict("EMAIL_TAKEN", "An account with this email exists; sign in instead.") from exc
        return await self._session(user)

    async def login(self, actor: Actor, email: str, password: str) -> Session:
        """Check email and password and start a token family; store an old password hash at today's cost.

        Raises:
            Unauthenticated: the email or the password is wrong (INVALID_CREDENTIALS).
            LimitReached: the account or the address failed too often.
        """
        # The failure is counted before the password is checked: a spent account refuses the
        # right password too, and a burst of guesses gets no more checks than the limits.
        user = await self._store.users.by_email(email)
        stored = user["password_hash"] if user else self._hasher.dummy_hash
        if not await self._verify_counted(actor, email, password, stored) or user is None:
            await self._audit.record(actor, None, "auth.login", f"email:{email.lower()}", "refused")
            raise Unauthenticated("INVALID_CREDENTIALS", "The email or the password is wrong.")
        if self._hasher.needs_rehash(stored):
            # The password is at hand only now.
            fresh = await asyncio.to_thread(self._hasher.hash, password)
            await self._store.users.replace_password_hash(user["_id"], stored, fresh)
        return await self._session(user)

    async def refresh(self, refresh_token: str) -> Session:
        """Trade a live refresh token for a new pair of the same family.

        Raises:
            Unauthenticated: the token was used already, and its family is now signed out
                (REFRESH_TOKEN_REUSED); or it is unknown, expired, or its account is gone
                (INVALID_REFRESH_TOKEN).
        """
        record, reused = await self._store.tokens.consume(refresh_token)
        if reused:
            raise Unauthenticated(
                "REFRESH_TOKEN_REUSED",
                "This refresh token was already used; every session of its family is now signed out.",
            )
        if record is None:
            raise Unauthenticated(
                "INVALID_REFRESH_TOKEN", "The refresh token is not valid or has expired; sign in again."
            )
        user = await self._store.users.get(record["user_id"])
        if user is None:
            raise Unauthenticated("INVALID_REFRESH_TOKEN", "The account no longer exists.")
        return await self._session(user, record["family_id"])

    async def logout(self, refresh_token: str) -> None:
        """Sign out the token's session (its access tokens too); the same whether or not the token was known."""
        session_id = await self._store.tokens.family_of(refresh_token)
        if session_id is not None:
            await self._sessions.end(session_id)

    async def logout_all(self, actor: Actor, user_id: str) -> None:
        """Sign every session of the user out, this one included."""
        await self._sessions.end_all(user_id)
        await self._audit.record(actor, None, "auth.logout_all", f"user:{user_id}")

    async def change_password(self, actor: Actor, user_id: str, current: str, new: str) -> Session:
        """Set a new password, given the current one; end every session and start a new one.

        A wrong current password counts as a failed sign-in of the account, so a stolen access
        token cannot be used to guess the password any faster than the sign-in page allows.

        Raises:
            Forbidden: the current password is wrong (WRONG_PASSWORD).
            Unauthenticated: the account is gone.
            LimitReached: the account failed too often (TOO_MANY_FAILED_LOGINS).
        """
        user = await self._confirm_password(actor, user_id, current, "auth.password_change")
        fresh = await asyncio.to_thread(self._hasher.hash, new)
        await self._store.users.set_password_hash(user_id, fresh)
        await self._sessions.end_all(user_id)
        await self._audit.record(actor, None, "auth.password_change", f"user:{user_id}")
        return await self._session(user)

    async def delete(self, actor: Actor, user_id: str, password: str) -> None:
        """Delete the account, given its password: every project it owns with all their data, then it.

        Raises:
            Forbidden: the password is wrong (WRONG_PASSWORD).
            Unauthenticated: the account is gone.
            LimitReached: the account failed too often (TOO_MANY_FAILED_LOGINS).
        """
        await self._confirm_password(actor, user_id, password, "account.delete")
        # Sessions first: no request of this account starts anything new while it goes.
        await self._sessions.end_all(user_id)
        await self._audit.record(actor, None, "account.delete", f"user:{user_id}")
        await self._projects.delete_all_owned(actor, user_id)
        await self._store.users.delete(user_id)
        await self._store.tokens.delete_user(user_id)
        # A project a request already past its checks made meanwhile goes too.
        await self._projects.delete_all_owned(actor, user_id)

    async def _confirm_password(self, actor: Actor, user_id: str, password: str, action: str) -> UserDoc:
        user = await self._store.users.get(user_id)
        if user is None:
            raise Unauthenticated("SESSION_ENDED", "The account no longer exists.")
        if not await self._verify_counted(actor, user["email"], password, user["password_hash"]):
            await self._audit.record(actor, None, action, f"user:{user_id}", "refused")
            # Not a 401: the request's own credentials are fine, and a client that refreshes on
            # 401 would send the wrong password twice.
            raise Forbidden("WRONG_PASSWORD", "The password is wrong; nothing was changed.")
        return user

    async def _verify_counted(self, actor: Actor, email: str, password: str, stored: str) -> bool:
        """Check a password against a stored hash as a counted sign-in attempt of the account.

        The failure is counted before the check (:meth:`AuthLimits.take_login_slot`), so a burst
        of guesses gets no more checks than the limits; it is given back when the password is
        right or nothing was checked.

        Raises:
            LimitReached: the account failed too often (TOO_MANY_FAILED_LOGINS).
        """
        slot = await self._limits.take_login_slot(email, actor.ip)
        try:
            matches = await asyncio.to_thread(self._hasher.verify, password, stored)
        except BaseException:
            await self._limits.give_back(slot)  # nothing was checked
            raise
        if matches:
            await self._limits.give_back(slot)
        return matches

    async def _session(self, user: UserDoc, family_id: str | None = None) -> Session:
        settings = self._settings
        family_id = family_id or new_id()
        refresh = await self._store.tokens.issue(user["_id"], settings.refresh_token_ttl_days, family_id)
        access = make_access_token(settings.jwt_secret, user["_id"], family_id, utcnow(), settings.access_token_ttl_s)
        return Session(user, access, refresh, settings.access_token_ttl_s)
