"""Code references: shared once (idempotent by their client-made id), counted toward storage, announced."""

from __future__ import annotations

from typing import Any

from ..settings import Settings
from ..store import Store, refs
from ..store.documents import AgentDoc, RefDoc
from ..store.idempotency import is_retry
from .announcements import Announcements
from .errors import Conflict, Forbidden, NotFound
from .quotas import Quotas


def _conflict(ref_id: str) -> Conflict:
    return Conflict("ID_CONFLICT", f"Reference {ref_id} was already shared with a different body.")


def _missing() -> NotFound:
    return NotFound("Reference", "REF_NOT_FOUND")


class RefService:
    """Share, read, list and delete code references.

    Args:
        store: The database.
        settings: The read budget.
        quotas: The storage quota references count toward.
        announcements: Where new references are told.
    """

    def __init__(self, store: Store, settings: Settings, quotas: Quotas, announcements: Announcements) -> None:
        self._store = store
        self._settings = settings
        self._quotas = quotas
        self._announcements = announcements

    async def share(self, author: AgentDoc, body: dict[str, Any]) -> tuple[RefDoc, bool]:
        """Store and announce a reference; return it and whether this call stored it.

        Raises:
            Conflict: ``ID_CONFLICT``, the id is taken by another body (or author).
            NotFound: ``RECIPIENT_NOT_FOUND``.
            QuotaExceeded: it does not fit the project's storage.
        """
        store = self._store
        project_id = author["project_id"]
        # A retry is answered before the quota is asked: repeating a stored share must not be refused.
        stored = await store.refs.get(project_id, body["id"])
        if stored is not None:
            if not is_retry(stored, author["_id"], refs.body_fingerprint(body)):
                raise _conflict(body["id"])
            await self._announcements.ref_shared(stored)  # unless the first try did
            return stored, False
        recipient_id = None
        if body.get("to") is not None:
            recipient_id = await store.agents.id_for_slug(project_id, body["to"])
            if recipient_id is None:
                raise NotFound(f"Agent '{body['to']}'", "RECIPIENT_NOT_FOUND")
        try:
            ref, created = await self._quotas.store_within_storage(
                project_id,
                refs.stored_size(body),
                lambda: store.refs.insert(project_id=project_id, author=author, body=body, recipient_id=recipient_id),
            )
        except refs.IdConflict as exc:
            raise _conflict(body["id"]) from exc
        # When not created, a concurrent try stored it, whose server may have died before telling.
        await self._announcements.ref_shared(ref)
        return ref, created

    async def get(self, reader: AgentDoc, ref_id: str) -> RefDoc:
        """Return a reference the reader may see.

        Raises:
            NotFound: ``REF_NOT_FOUND``, also for another project's id.
        """
        ref = await self._store.refs.get(reader["project_id"], ref_id)
        if ref is None or not refs.visible_to(ref, reader["_id"]):
            raise _missing()
        return ref

    async def delete(self, agent: AgentDoc, ref_id: str) -> None:
        """Delete a reference the agent shared and give its storage back.

        Raises:
            NotFound: ``REF_NOT_FOUND``.
            Forbidden: ``NOT_REF_AUTHOR``, the agent may see it but did not share it.
        """
        ref = await self.get(agent, ref_id)
        if ref["from_id"] != agent["_id"]:
            raise Forbidden("NOT_REF_AUTHOR", "Only the agent that shared a reference may delete it.")
        deleted = await self._store.refs.delete(agent["project_id"], ref_id, agent["_id"])
        if deleted is None:
            raise _missing()  # deleted meanwhile, and its storage given back then
        await self._quotas.release_storage(agent["project_id"], deleted["size_bytes"])

    async def page(
        self,
        project_id: str,
        reader_id: str | None,
        *,
        author_slug: str | None,
        language: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[RefDoc], str | None]:
        """Return a page of the references ``reader_id`` may see (all of them for ``None``, the owner)."""
        return await self._store.refs.list(
            project_id,
            reader_id,
            author_slug=author_slug,
            language=language,
            limit=limit,
            cursor=cursor,
            budget=self._settings.read_budget_bytes,
        )
