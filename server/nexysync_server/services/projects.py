"""Projects: the isolation boundary a user owns, created within the user's quota."""

from __future__ import annotations

from typing import Any

from ..realtime.hub import Hub
from ..settings import Settings
from ..store import Store
from ..store.documents import ProjectDoc
from .audit import Actor, AuditTrail
from .errors import NotFound, ServiceError
from .quotas import Quotas


class Projects:
    """Create, read, change and delete a user's projects.

    Args:
        store: The database.
        hub: Ends the streams of a deleted project's agents.
        settings: The default message retention.
        quotas: Projects per user.
        audit: Where changes are recorded.
    """

    def __init__(self, store: Store, hub: Hub, settings: Settings, quotas: Quotas, audit: AuditTrail) -> None:
        self._store = store
        self._hub = hub
        self._settings = settings
        self._quotas = quotas
        self._audit = audit

    async def owned(self, user_id: str, project_id: str) -> ProjectDoc:
        """Return a project of the user.

        Raises:
            NotFound: there is no such project, or another user owns it (the two look alike).
        """
        project = await self._store.projects.get_owned(project_id, user_id)
        if project is None:
            raise NotFound("Project", "PROJECT_NOT_FOUND")
        return project

    async def page(self, user_id: str, limit: int, cursor: str | None) -> tuple[list[ProjectDoc], str | None]:
        """Page through the user's projects, oldest first."""
        return await self._store.projects.list_owned(user_id, limit, cursor)

    async def create(self, actor: Actor, user_id: str, body: dict[str, Any]) -> ProjectDoc:
        """Create a project within the user's quota (a ``ProjectCreate``).

        Raises:
            QuotaExceeded: the user has as many projects as allowed.
        """
        ttl = body.get("default_ttl_hours", self._settings.default_message_ttl_hours)
        await self._quotas.reserve_project(user_id)
        try:
            project = await self._store.projects.create(user_id, body["name"], ttl)
        except BaseException:
            await self._quotas.release_project(user_id)
            raise
        await self._audit.record(actor, project["_id"], "project.create", f"project:{project['_id']}")
        return project

    async def update(self, actor: Actor, user_id: str, project_id: str, changes: dict[str, Any]) -> ProjectDoc:
        """Rename a project or change its retention (a ``ProjectUpdate``).

        Raises:
            NotFound: not the user's project (or deleted meanwhile).
        """
        project = await self._store.projects.update(project_id, user_id, changes)
        if project is None:
            raise NotFound("Project", "PROJECT_NOT_FOUND")
        await self._audit.record(actor, project_id, "project.update", f"project:{project_id}")
        return project

    async def delete(self, actor: Actor, project: ProjectDoc, *, confirmed: bool) -> None:
        """Delete a project and everything in it; its agents' streams end first, in the log's order.

        Args:
            actor: Who asked.
            project: The project, as :meth:`owned` returned it to its owner.
            confirmed: The owner said yes to losing every record of it.

        Raises:
            ServiceError: not ``confirmed`` (CONFIRMATION_REQUIRED): nothing was deleted.
        """
        project_id = project["_id"]
        if not confirmed:
            raise ServiceError(
                "CONFIRMATION_REQUIRED", "Deleting a project removes all its data; repeat with ?confirm=true."
            )
        await self._hub.revoke(project_id)
        await self._store.delete_project_data(project_id)
        await self._quotas.release_project(project["owner_id"])
        # Kept outside the deleted project, so that the deletion itself stays on record.
        await self._audit.record(actor, None, "project.delete", f"project:{project_id}")

    async def delete_all_owned(self, actor: Actor, user_id: str) -> int:
        """Delete every project of a user (their account is being deleted); return how many."""
        deleted = 0
        while True:
            projects, _ = await self._store.projects.list_owned(user_id, 100, None)
            if not projects:
                return deleted
            for project in projects:
                await self.delete(actor, project, confirmed=True)
                deleted += 1
