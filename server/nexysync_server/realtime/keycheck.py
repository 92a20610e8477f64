"""End streams whose key no longer works, whatever the reason, on every worker.

The ``key_revoked`` event ends a revoked key's streams in ``seq`` order (see :mod:`.hub`); this
check is the net under it: every ``interval_s`` one query asks which keys of this process's
streams still exist, and the streams of any other key end. It catches what no event told of (a
watcher that was down, a project deleted with its event log).
"""

from __future__ import annotations

from ..background import Periodic
from ..store.agents import AgentStore
from .hub import REVOKED, Hub


class KeyCheck:
    """Periodically end the streams of this process whose API key is gone.

    Args:
        hub: Whose listeners are checked.
        agents: Where the live keys are.
        interval_s: How often to check.
    """

    def __init__(self, hub: Hub, agents: AgentStore, interval_s: float) -> None:
        self._hub = hub
        self._agents = agents
        self._periodic = Periodic("key-check", self.check, interval_s)

    async def check(self) -> None:
        """End every stream of a key that matches no agent any more."""
        listeners = [listener for listener in self._hub.listeners() if listener.key_hash and not listener.ended]
        if not listeners:
            return
        live = await self._agents.live_key_hashes({listener.key_hash for listener in listeners})
        for listener in listeners:
            if listener.key_hash not in live:
                listener.end(REVOKED)

    def start(self) -> None:
        """Start checking in the background."""
        self._periodic.start()

    async def stop(self) -> None:
        """Stop checking."""
        await self._periodic.stop()
