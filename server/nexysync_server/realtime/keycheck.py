"""End streams whose credentials no longer work, whatever the reason, on every worker.

The ``key_revoked`` event ends a revoked key's streams in ``seq`` order (see :mod:`.hub`); this
check is the net under it: every ``interval_s`` one query asks which keys the agents of this
process's streams hold now, and the streams of any other key end. It catches what no event told of (a
watcher that was down, a project deleted with its event log). Owner streams are checked the
same way against their sign-in session: one signed out (logout, everywhere, a password change,
the account deleted) ends its streams within ``interval_s``.
"""

from __future__ import annotations

from ..background import Periodic
from ..services.sessions import Sessions
from ..store.agents import AgentStore
from .hub import REVOKED, Hub


class KeyCheck:
    """Periodically end the streams of this process whose API key is gone or whose session ended.

    Args:
        hub: Whose listeners are checked.
        agents: Where the live keys are.
        sessions: Which sign-in sessions are live.
        interval_s: How often to check.
    """

    def __init__(self, hub: Hub, agents: AgentStore, sessions: Sessions, interval_s: float) -> None:
        self._hub = hub
        self._agents = agents
        self._sessions = sessions
        self._periodic = Periodic("key-check", self.check, interval_s)

    async def check(self) -> None:
        """End every stream of a key that matches no agent any more, or of a session signed out."""
        listeners = [listener for listener in self._hub.listeners() if not listener.ended]
        keyed = [listener for listener in listeners if listener.key_hash and listener.agent_id]
        if keyed:
            live = await self._agents.key_hashes({listener.agent_id for listener in keyed if listener.agent_id})
            for listener in keyed:
                if listener.key_hash not in live:
                    listener.end(REVOKED)
        signed_in = [listener for listener in listeners if listener.session_id]
        if signed_in:
            sessions = await self._sessions.live({listener.session_id for listener in signed_in})
            for listener in signed_in:
                if listener.session_id not in sessions:
                    listener.end(REVOKED)

    def start(self) -> None:
        """Start checking in the background."""
        self._periodic.start()

    async def stop(self) -> None:
        """Stop checking."""
        await self._periodic.stop()
