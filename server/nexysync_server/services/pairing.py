"""Pairing: relay one SPAKE2 exchange between a machine that holds a project's key and a new one.

The server is a mailbox it cannot read. The offering side (the project's owner) opens a slot
with its SPAKE2 message; the new machine, with no credentials, reads it and accepts with its own
message, its X25519 public key and its key confirmation; the offering side checks that
confirmation (a wrong code shows there) and either burns the slot or finishes it with its own
confirmation and the key ring sealed under the key the two derived. Each step is a conditional
write on the state it leaves, so a slot is accepted once: an attacker gets one online guess per
code, and a wrong guess burns the slot for the right code too. Slots expire; opening them is
limited per user, reading and accepting them per client address.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..settings import Settings
from ..store import Store
from ..store.documents import PairingSlotDoc
from ..store.pairing import NoFreeNumber, view_state
from .audit import Actor, AuditTrail
from .errors import Busy, Conflict, NotFound
from .limits import AuthLimits
from .projects import Projects

#: After its expiry an accepted slot may still be finished for this long (the offering side was
#: checking the confirmation as the clock ran out).
FINISH_GRACE_MS = 30_000
#: How often a waiting read looks at the slot again.
_POLL_S = 0.2


def _missing() -> NotFound:
    return NotFound("Pairing slot (unknown, or expired a while ago)", "PAIRING_NOT_FOUND")


class Pairing:
    """Open, read, accept, finish and burn pairing slots.

    Args:
        store: The slots.
        settings: The longest slot life.
        projects: Who owns which project.
        limits: The per-user and per-address limits.
        audit: Where offers, accepts and their outcomes are recorded.
    """

    def __init__(self, store: Store, settings: Settings, projects: Projects, limits: AuthLimits, audit: AuditTrail):
        self._slots = store.pairing_slots
        self._max_ttl_s = settings.pairing_ttl_s
        self._projects = projects
        self._limits = limits
        self._audit = audit

    async def open(self, actor: Actor, user_id: str, project_id: str, msg: str, ttl_s: int) -> PairingSlotDoc:
        """Open a slot for a project of the user.

        Raises:
            ServiceError: ``PROJECT_NOT_FOUND`` (404); ``TOO_MANY_PAIRINGS`` (429);
                ``PAIRING_BUSY`` (503) when no number is free.
        """
        await self._projects.owned(user_id, project_id)
        await self._limits.pairing_offer(user_id, actor.ip)
        try:
            slot = await self._slots.open(user_id, project_id, msg, min(ttl_s, self._max_ttl_s))
        except NoFreeNumber as exc:
            raise Busy("PAIRING_BUSY", "Every pairing slot number is taken; retry in a minute.") from exc
        await self._audit.record(actor, project_id, "pairing.offer", f"slot:{slot['_id']}")
        return slot

    async def read(self, ip: str, number: str, wait_s: int = 0, known: str | None = None) -> PairingSlotDoc:
        """Return a slot; with ``wait_s``, as soon as its shown state is not ``known`` (or when the wait ends).

        Raises:
            ServiceError: ``PAIRING_NOT_FOUND`` (404); ``RATE_LIMITED`` (429).
        """
        await self._limits.pairing_request(ip)
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            slot = await self._slots.get(number)
            if slot is None:
                raise _missing()
            if known is None or view_state(slot) != known or asyncio.get_running_loop().time() >= deadline:
                return slot
            await asyncio.sleep(_POLL_S)

    async def accept(self, actor: Actor, number: str, body: dict[str, Any]) -> PairingSlotDoc:
        """Take a waiting slot with the new machine's message, public key, name and confirmation.

        Raises:
            ServiceError: ``PAIRING_NOT_FOUND`` (404); ``PAIRING_EXPIRED``, ``PAIRING_USED``
                (409); ``TOO_MANY_PAIRINGS``, ``RATE_LIMITED`` (429).
        """
        await self._limits.pairing_request(actor.ip, accept=True)
        fields = {
            "accept_msg": body["msg"],
            "public_key": body["public_key"],
            "name": body["name"],
            "accept_confirm": body["confirm"],
        }
        moved = await self._slots.move(number, "waiting", "accepted", fields, before_ms=0)
        if moved is not None:
            await self._audit.record(actor, moved["project_id"], "pairing.accept", f"slot:{number}")
            return moved
        slot = await self._slots.get(number)
        if slot is None:
            raise _missing()
        if view_state(slot) == "expired":
            raise Conflict("PAIRING_EXPIRED", f"Pairing code {number}-… has expired; ask for a new one.")
        raise Conflict(
            "PAIRING_USED",
            f"Pairing slot {number} was used already (each code is good for one try); ask for a new code.",
        )

    async def finish(self, actor: Actor, user_id: str, number: str, confirm: str, sealed: str) -> PairingSlotDoc:
        """Finish an accepted slot of the user with the offering side's confirmation and sealed bundle.

        Finishing again with the same box answers the slot again.

        Raises:
            ServiceError: ``PAIRING_NOT_FOUND`` (404); ``PAIRING_NOT_ACCEPTED``, ``PAIRING_EXPIRED`` (409).
        """
        slot = await self._owned_slot(user_id, number)
        if slot["state"] == "done" and slot["sealed"] == sealed and slot["offer_confirm"] == confirm:
            return slot
        fields = {"offer_confirm": confirm, "sealed": sealed}
        moved = await self._slots.move(number, "accepted", "done", fields, before_ms=FINISH_GRACE_MS)
        if moved is not None:
            await self._audit.record(actor, moved["project_id"], "pairing.finish", f"slot:{number}")
            return moved
        slot = await self._owned_slot(user_id, number)
        if slot["state"] == "accepted":
            raise Conflict("PAIRING_EXPIRED", f"Pairing slot {number} expired before it was finished.")
        raise Conflict(
            "PAIRING_NOT_ACCEPTED",
            f"Pairing slot {number} is {view_state(slot)}: only an accepted slot is finished.",
            {"state": view_state(slot)},
        )

    async def burn(self, actor: Actor, user_id: str, number: str) -> None:
        """Burn a waiting or accepted slot of the user (a wrong code, or the offer given up); others are left.

        An expired slot is left expired: it cannot be used either way, and it tells the truth.

        Raises:
            ServiceError: ``PAIRING_NOT_FOUND`` (404).
        """
        slot = await self._owned_slot(user_id, number)
        for state in ("waiting", "accepted"):
            moved = await self._slots.move(number, state, "burned", {}, before_ms=0)
            if moved is not None:
                await self._audit.record(actor, slot["project_id"], "pairing.burn", f"slot:{number}")
                return

    async def _owned_slot(self, user_id: str, number: str) -> PairingSlotDoc:
        slot = await self._slots.get(number)
        if slot is None or slot["user_id"] != user_id:
            raise _missing()
        return slot
