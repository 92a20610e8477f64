"""Who is online: stream leases kept alive by this process, and the ``presence_change`` events.

An agent comes online with its first stream on any worker and goes offline when its last one
has been gone for ``grace_s`` (so a reconnect blip announces nothing). Leases of a worker that
died are found by the sweep once they run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..background import Periodic, cancel_and_wait
from ..realtime.hub import Hub
from ..store.documents import AgentRef
from ..store.events import EVERYONE
from ..store.presence import PresenceStore

log = logging.getLogger(__name__)


class TooManyStreams(Exception):
    """The agent holds as many streams as it may (on all workers together)."""


class Presence:
    """Hold this process's stream leases and announce online/offline transitions.

    Args:
        store: Lease and state storage.
        hub: Where ``presence_change`` events go.
        lease_s: How long a lease lives without renewal.
        grace_s: How long an agent with no stream stays online before it is announced offline.
    """

    def __init__(self, store: PresenceStore, hub: Hub, lease_s: float, grace_s: float) -> None:
        self._store = store
        self._hub = hub
        self._lease_s = lease_s
        self._grace_s = grace_s
        self._held: dict[str, AgentRef] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._upkeep = Periodic("presence", self._maintain, lease_s / 3)

    async def connect(self, agent: AgentRef, max_streams: int = 0) -> str:
        """Take a lease for a new stream; announce the agent if it just came online.

        Args:
            agent: The streaming agent.
            max_streams: The most streams the agent may hold on all workers (0: no limit). The
                lease is taken first and counted after, so racing opens can only refuse too many,
                never let too many in.

        Raises:
            TooManyStreams: the agent holds ``max_streams`` already.
        """
        lease_id = await self._store.hold(agent, self._lease_s)
        if max_streams and await self._store.live_leases(agent["_id"]) > max_streams:
            await self._store.release(lease_id)
            raise TooManyStreams(agent["_id"])
        self._held[lease_id] = agent
        if await self._store.flip(agent, online=True):
            await self._announce(agent, online=True)
        return lease_id

    async def disconnect(self, lease_id: str) -> None:
        """Drop a stream's lease; check after the grace period whether the agent went offline."""
        agent = self._held.pop(lease_id, None)
        await self._store.release(lease_id)
        if agent is not None:
            task = asyncio.create_task(self._settle_later(agent))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _settle_later(self, agent: AgentRef) -> None:
        await asyncio.sleep(self._grace_s)
        try:
            await self._settle(agent)
        except Exception:
            log.exception("presence of agent %s could not be settled", agent["_id"])

    async def _settle(self, agent: AgentRef) -> None:
        if await self._store.live_leases(agent["_id"]) == 0 and await self._store.flip(agent, online=False):
            await self._announce(agent, online=False)

    async def _announce(self, agent: AgentRef, *, online: bool) -> None:
        await self._hub.emit(
            agent["project_id"], "presence_change", [EVERYONE], {"agent": agent["slug"], "online": online}
        )

    def start(self) -> None:
        """Start renewing leases and sweeping expired ones."""
        self._upkeep.start()

    async def stop(self) -> None:
        """Stop, releasing this process's leases so that its agents go offline without waiting."""
        await self._upkeep.stop()
        for task in list(self._tasks):
            await cancel_and_wait(task)
        for lease_id in list(self._held):
            with contextlib.suppress(Exception):
                await self._store.release(lease_id)

    async def _maintain(self) -> None:
        """Renew this process's leases; settle the agents of leases that expired (a server died)."""
        await self._store.renew(list(self._held), self._lease_s)
        for lease in await self._store.expired():
            # Only the process whose delete succeeds settles it, so it is announced once.
            if await self._store.release(lease["_id"]):
                agent: AgentRef = {"_id": lease["agent_id"], "project_id": lease["project_id"], "slug": lease["slug"]}
                await self._settle(agent)
