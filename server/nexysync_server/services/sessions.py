"""Sign-in sessions: an access token works only while the sign-in it names is signed in.

A session is a refresh-token family (:mod:`..store.tokens`): a sign-in starts one, each refresh
continues it, and signing out, signing out everywhere, a password change, a reused refresh
token or the account's deletion revokes it. Access tokens carry their session's id (``sid``),
so revoking the family ends them too, on every worker: each human request asks whether its
session is live, and a yes is cached for no longer than the API-key cache (a change made on
this worker is seen here at once; on another, within that time).
"""

from __future__ import annotations

from ..cache import TtlCache
from ..store.tokens import RefreshTokenStore


class Sessions:
    """Which sessions are live, cached briefly; ending one or all of a user's.

    Args:
        tokens: The refresh-token families.
        cache_ttl_s: How long a live session is remembered without asking the database.
    """

    def __init__(self, tokens: RefreshTokenStore, cache_ttl_s: float) -> None:
        self._tokens = tokens
        # Only live sessions are cached: a signed-out one costs a query each time, as a guessed
        # API key does, and can never be served from a stale entry.
        self._live: TtlCache[str, bool] = TtlCache(ttl_s=cache_ttl_s)

    async def is_live(self, session_id: str) -> bool:
        """Tell whether a session is still signed in."""
        return session_id in await self.live({session_id})

    async def live(self, session_ids: set[str]) -> set[str]:
        """Return which of these sessions are still signed in."""
        known = {session_id for session_id in session_ids if self._live.get(session_id)}
        missing = session_ids - known
        if missing:
            epoch = self._live.epoch
            found = await self._tokens.live_families(missing)
            for session_id in found:
                self._live.put(session_id, True, epoch)
            known |= found
        return known

    async def end(self, session_id: str) -> None:
        """Sign one session out."""
        await self._tokens.revoke_family(session_id)
        self._live.drop(session_id)

    async def end_all(self, user_id: str) -> None:
        """Sign every session of a user out."""
        await self._tokens.revoke_user(user_id)
        self._live.clear()
