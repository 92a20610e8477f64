"""Leases on workspace paths: granted all or none, renewed, released (forced only when idle), swept when ended.

Each change is announced on the project's stream: ``lease_granted``, ``lease_released``,
``lease_expired``. See :mod:`..store.leases` for how grants stay atomic across workers.
"""

from __future__ import annotations

import logging
from typing import Any

from .. import views
from ..background import Periodic
from ..realtime.hub import Hub
from ..settings import Settings
from ..store import Store
from ..store import leases as store_leases
from ..store.documents import AgentDoc, PathLeaseDoc
from ..store.events import EVERYONE
from .activity import idle_s
from .errors import Busy, Conflict, Forbidden, NotFound, ServiceError

log = logging.getLogger(__name__)

#: How often ended leases are removed and announced (a lease counts for nothing once ended, at once).
SWEEP_INTERVAL_S = 2.0


def _missing() -> NotFound:
    return NotFound("Lease", "LEASE_NOT_FOUND")


class Leases:
    """Claim, list, renew and release leases; announce each change.

    Args:
        store: The database.
        hub: Where changes are announced.
        settings: The limits and the force-release rule.
    """

    def __init__(self, store: Store, hub: Hub, settings: Settings) -> None:
        self._store = store
        self._leases = store.path_leases
        self._hub = hub
        self._settings = settings
        self._sweeper = Periodic("lease-sweeper", self.sweep, SWEEP_INTERVAL_S)

    async def claim(
        self, agent: AgentDoc, items: list[dict[str, Any]], exclusive: bool, ttl_s: int
    ) -> list[PathLeaseDoc]:
        """Grant a lease per item (all or none) and announce them.

        Raises:
            ServiceError: ``TTL_TOO_LONG`` (400); ``LEASE_CONFLICT`` (409, with ``conflicts``);
                ``DUPLICATE_LEASE`` and ``ID_CONFLICT`` (409); ``LEASE_LIMIT`` (403); ``LEASES_BUSY`` (503).
        """
        self._check_ttl(ttl_s)
        if len({item["key"] for item in items}) < len(items) or len({item["id"] for item in items}) < len(items):
            raise Conflict("DUPLICATE_LEASE", "Each lease of a claim names another path and has its own id.")
        expires_ms = self._leases.clock() + ttl_s * 1000
        wanted: list[PathLeaseDoc] = [
            {
                "_id": item["id"],
                "project_id": agent["project_id"],
                "agent_id": agent["_id"],
                "agent": agent["slug"],
                "exclusive": exclusive,
                "key": item["key"],
                "ancestors": list(item["ancestors"]),
                "path": item["path"],
                "reason": item.get("reason"),
                "token": 0,
                "created_ms": 0,
                "renewed_ms": 0,
                "expires_ms": expires_ms,
            }
            for item in items
        ]
        try:
            granted = await self._leases.grant(
                agent,
                wanted,
                per_agent=self._settings.max_leases_per_agent,
                per_project=self._settings.max_leases_per_project,
            )
        except (store_leases.GuardBusy, store_leases.GuardLost) as exc:
            raise Busy("LEASES_BUSY", "The project's leases are being changed by many claims at once; retry.") from exc
        except store_leases.IdTaken as exc:
            raise Conflict("ID_CONFLICT", "A lease id of this claim is used already; make new ids.") from exc
        if isinstance(granted, store_leases.Refused):
            raise self._refusal(granted)
        await self._hub.emit(
            agent["project_id"], "lease_granted", [EVERYONE], {"leases": [views.lease(doc) for doc in granted]}
        )
        return granted

    def _check_ttl(self, ttl_s: int) -> None:
        """Refuse a ``ttl_s`` past this server's bound (the contract's may be higher).

        Raises:
            ServiceError: ``TTL_TOO_LONG``.
        """
        if ttl_s > self._settings.lease_max_ttl_s:
            raise ServiceError(
                "TTL_TOO_LONG", f"ttl_s is at most {self._settings.lease_max_ttl_s} s here (NEXYSYNC_LEASE_MAX_TTL_S)."
            )

    def _refusal(self, refused: store_leases.Refused) -> ServiceError:
        if refused.limit == "agent":
            return Forbidden(
                "LEASE_LIMIT",
                f"An agent holds at most {self._settings.max_leases_per_agent} leases (NEXYSYNC_MAX_LEASES_PER_AGENT).",
            )
        if refused.limit == "project":
            return Forbidden(
                "LEASE_LIMIT",
                f"A project holds at most {self._settings.max_leases_per_project} leases "
                "(NEXYSYNC_MAX_LEASES_PER_PROJECT).",
            )
        conflicts = [views.lease(doc) for doc in refused.conflicts]
        holders = ", ".join(
            f"{lease['agent']} (lease {lease['id']}, {'exclusive' if lease['exclusive'] else 'shared'}, "
            f"until {lease['expires_at']})"
            for lease in conflicts
        )
        return Conflict(
            "LEASE_CONFLICT",
            f"Held by {holders}; `conflicts` has each lease (its path sealed).",
            {"conflicts": conflicts},
        )

    async def live(self, project_id: str, slug: str | None = None) -> list[PathLeaseDoc]:
        """Return the project's live leases, or those of the agent ``slug`` (none for an unknown slug)."""
        if slug is None:
            return await self._leases.live(project_id)
        agent_id = await self._store.agents.id_for_slug(project_id, slug)
        return [] if agent_id is None else await self._leases.live(project_id, agent_id)

    async def renew(self, agent: AgentDoc, lease_id: str, ttl_s: int) -> PathLeaseDoc:
        """Extend one of the agent's live leases.

        Raises:
            NotFound: ``LEASE_NOT_FOUND``.
            ServiceError: ``TTL_TOO_LONG``.
        """
        self._check_ttl(ttl_s)
        renewed = await self._leases.renew(agent["project_id"], agent["_id"], lease_id, ttl_s)
        if renewed is None:
            raise _missing()
        return renewed

    async def release(self, agent: AgentDoc, lease_id: str, force: bool) -> None:
        """Release a lease: the agent's own, or another's with ``force`` once its holder is inactive; announce it.

        Raises:
            NotFound: ``LEASE_NOT_FOUND``.
            Conflict: ``LEASE_NOT_YOURS`` (no force), ``LEASE_HOLDER_ACTIVE``.
        """
        project_id = agent["project_id"]
        lease = await self._leases.get(project_id, lease_id)
        if lease is None:
            raise _missing()
        forced_by = None
        if lease["agent_id"] == agent["_id"]:
            removed = await self._leases.remove(project_id, lease_id)
        elif not force:
            raise Conflict("LEASE_NOT_YOURS", f"Lease {lease_id} is {lease['agent']}'s; release it with force=true.")
        else:
            idle_s = await self._holder_idle_s(lease)
            wait_s = self._settings.lease_force_after_s - idle_s
            if wait_s > 0:
                raise Conflict(
                    "LEASE_HOLDER_ACTIVE",
                    f"{lease['agent']} was active {idle_s:.0f} s ago; its lease may be forced after "
                    f"{self._settings.lease_force_after_s:.0f} s of inactivity ({wait_s:.0f} s from now).",
                )
            # Only if not renewed since: a renewal is activity.
            removed = await self._leases.remove(project_id, lease_id, renewed_ms=lease["renewed_ms"])
            if removed is None:
                raise Conflict("LEASE_HOLDER_ACTIVE", f"{lease['agent']} renewed lease {lease_id} just now.")
            forced_by = agent["slug"]
        if removed is None:
            raise _missing()
        await self._hub.emit(
            project_id,
            "lease_released",
            [EVERYONE],
            {"id": removed["_id"], "agent": removed["agent"], "key": removed["key"], "forced_by": forced_by},
        )

    async def _holder_idle_s(self, lease: PathLeaseDoc) -> float:
        """Seconds since the holder last showed activity: a request (its last-seen time) or a renewal."""
        return await idle_s(
            self._store.agents, lease["project_id"], lease["agent_id"], lease["renewed_ms"], self._leases.clock()
        )

    async def sweep(self) -> None:
        """Remove the leases that ended, and announce each once (whichever server removes it)."""
        for lease in await self._leases.ended():
            if await self._leases.remove_ended(lease):
                await self._hub.emit(
                    lease["project_id"],
                    "lease_expired",
                    [EVERYONE],
                    {"id": lease["_id"], "agent": lease["agent"], "key": lease["key"]},
                )

    def start(self) -> None:
        """Start the sweep."""
        self._sweeper.start()

    async def stop(self) -> None:
        """Stop the sweep."""
        await self._sweeper.stop()
