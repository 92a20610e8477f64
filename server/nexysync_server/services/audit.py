"""The audit trail: who changed what in a project, and who was refused at the door."""

from __future__ import annotations

from dataclasses import dataclass

from ..store.audit import AuditStore
from ..store.documents import AuditDoc


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks, as the audit log names them, and from where.

    Attributes:
        name: ``user:<id>``, ``agent:<slug>`` or ``anonymous``.
        ip: The client's address.
    """

    name: str
    ip: str


class AuditTrail:
    """Records management actions and refusals; pages through a project's entries.

    Args:
        store: The audit collection's store.
    """

    def __init__(self, store: AuditStore) -> None:
        self._store = store

    async def record(self, actor: Actor, project_id: str | None, action: str, target: str, outcome: str = "ok") -> None:
        """Append one entry; ``project_id`` is ``None`` for what happened outside a project."""
        await self._store.record(project_id, actor.name, action, target, outcome, actor.ip)

    async def page(self, project_id: str, limit: int, cursor: str | None) -> tuple[list[AuditDoc], str | None]:
        """Page through a project's entries, oldest first."""
        return await self._store.list(project_id, limit, cursor)
