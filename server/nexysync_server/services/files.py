"""Files: announced by an agent, uploaded to the CDN, listed once ready, deleted by their uploader.

The content never passes through the API; this service keeps the records, the storage quota and
the blobs in step. Signed URLs are the HTTP layer's (:mod:`..resources.files`).
"""

from __future__ import annotations

from typing import Any

from ..settings import Settings
from ..store import Store, files
from ..store.documents import AgentDoc, FileDoc
from .errors import Conflict, Forbidden, NotFound, TooLarge
from .quotas import Quotas


def _not_found() -> NotFound:
    return NotFound("File", "FILE_NOT_FOUND")


class FileService:
    """Announce, read, list and delete a project's files.

    Args:
        store: The file records and the blob store.
        settings: The largest file.
        quotas: Storage per project.
    """

    def __init__(self, store: Store, settings: Settings, quotas: Quotas) -> None:
        self._store = store
        self._settings = settings
        self._quotas = quotas

    async def announce(self, uploader: AgentDoc, body: dict[str, Any]) -> tuple[FileDoc, bool]:
        """Record a file to upload (a ``FileCreate``, idempotent by its client-made id).

        Returns:
            The file and whether this call created it (false for a retry).

        Raises:
            TooLarge: larger than a file may be (FILE_TOO_LARGE).
            QuotaExceeded: the project's storage would pass its quota.
            Conflict: the id was announced with another body (ID_CONFLICT).
        """
        project_id = uploader["project_id"]
        limit_mb = self._settings.file_max_mb
        if body["size"] > limit_mb * 1024 * 1024:
            raise TooLarge("FILE_TOO_LARGE", f"A file may be at most {limit_mb} MiB (encrypted).")
        store = self._store
        # A retry is answered before the quota is asked: repeating an announcement must not be refused.
        stored = await store.files.get(project_id, body["id"])
        created = False
        if stored is None:
            new, created = await self._quotas.store_within_storage(
                project_id, body["size"], lambda: store.files.create(project_id, uploader, body)
            )
            stored = new
        if not files.is_same(stored, uploader["_id"], body):
            raise Conflict("ID_CONFLICT", f"File {body['id']} was already announced with a different body.")
        return stored, created

    async def get(self, project_id: str, file_id: str) -> FileDoc:
        """Return a file of the project.

        Raises:
            NotFound: no such file in the project (also another project's id).
        """
        doc = await self._store.files.get(project_id, file_id)
        if doc is None:
            raise _not_found()
        return doc

    async def page(self, project_id: str, limit: int, cursor: str | None) -> tuple[list[FileDoc], str | None]:
        """Page through the project's ready files in id order."""
        return await self._store.files.list_ready(project_id, limit, cursor)

    async def delete(self, agent: AgentDoc, file_id: str) -> None:
        """Delete a file the agent uploaded, with its content; give its storage back.

        Raises:
            NotFound: no such file in the agent's project (or deleted meanwhile).
            Forbidden: another agent uploaded it (NOT_FILE_UPLOADER).
        """
        project_id = agent["project_id"]
        doc = await self.get(project_id, file_id)
        if doc["from_id"] != agent["_id"]:
            raise Forbidden("NOT_FILE_UPLOADER", "Only the agent that uploaded a file may delete it.")
        deleted = await self._store.files.delete(project_id, file_id)
        if deleted is None:
            raise _not_found()  # deleted meanwhile, and its storage given back then
        if self._store.blobs is not None:
            self._store.blobs.delete(project_id, file_id)
        await self._quotas.release_storage(project_id, deleted["size"])
