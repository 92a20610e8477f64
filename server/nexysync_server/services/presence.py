"""Who is online: stream leases kept alive by this process, and the ``presence_change`` events.

An agent comes online with its first stream on any worker and goes offline when its last one
has been gone for ``grace_s`` (so a reconnect blip announces nothing). Leases of a worker that
died are found by the sweep once they run out.

Transitions are announced in batches: the first one in a project starts a ``batch_s`` timer, and
when it fires every transition this process saw in that project since goes out as one
``presence_change`` event, ``{"changes": [{"agent": slug, "online": bool}, ...]}``, an agent's
last transition winning. One event per project per interval, whatever the number of agents: a
thousand agents connecting at once cost each stream a handful of events, not a thousand (the
O(N^2) storm of one event per transition). Each worker batches its own transitions; a batch that
cannot be written is kept, under anything newer for the same agent, and tried again.
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

    def __init__(self, store: PresenceStore, hub: Hub, lease_s: float, grace_s: float, batch_s: float) -> None:
        self._store = store
        self._hub = hub
        self._lease_s = lease_s
        self._grace_s = grace_s
        self._batch_s = batch_s
        self._held: dict[str, AgentRef] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Per project, slug -> online, in the order the agents first changed.
        self._pending: dict[str, dict[str, bool]] = {}
        self._flushing: dict[str, asyncio.Task[None]] = {}
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
            self._announce(agent, online=True)
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
            self._announce(agent, online=False)

    def _announce(self, agent: AgentRef, *, online: bool) -> None:
        """Queue a transition for the project's next batch, starting the batch's timer if none runs."""
        project_id = agent["project_id"]
        changes = self._pending.setdefault(project_id, {})
        changes.pop(agent["slug"], None)  # a later transition goes to the end: the batch's order is the agents' last
        changes[agent["slug"]] = online
        if project_id not in self._flushing:
            self._flushing[project_id] = asyncio.create_task(self._flush_later(project_id))

    async def _flush_later(self, project_id: str) -> None:
        # Until nothing waits: a transition queued while a batch was being written, or a batch
        # whose write failed, goes out an interval later. No await between the loop's test and
        # the ``finally``, so no transition is queued without a timer to send it.
        try:
            while project_id in self._pending:
                await asyncio.sleep(self._batch_s)
                await self._flush(project_id)
        finally:
            self._flushing.pop(project_id, None)

    async def _flush(self, project_id: str) -> None:
        changes = self._pending.pop(project_id, None)
        if not changes:
            return
        data = {"changes": [{"agent": slug, "online": online} for slug, online in changes.items()]}
        try:
            await self._hub.emit(project_id, "presence_change", [EVERYONE], data)
        except Exception:
            log.exception("presence changes of project %s could not be announced; retrying", project_id)
            newer = self._pending.pop(project_id, {})
            self._pending[project_id] = {slug: online for slug, online in changes.items() if slug not in newer} | newer

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
        # Announce what is waiting for its interval now, once; a project whose write fails is lost
        # to the others only until their sweep (the leases released above end this worker's agents).
        for task in list(self._flushing.values()):
            await cancel_and_wait(task)
        for project_id in list(self._pending):
            await self._flush(project_id)
        self._pending.clear()

    async def _maintain(self) -> None:
        """Renew this process's leases; settle the agents of leases that expired (a server died)."""
        await self._store.renew(list(self._held), self._lease_s)
        for lease in await self._store.expired():
            # Only the process whose delete succeeds settles it, so it is announced once.
            if await self._store.release(lease["_id"]):
                agent: AgentRef = {"_id": lease["agent_id"], "project_id": lease["project_id"], "slug": lease["slug"]}
                await self._settle(agent)
