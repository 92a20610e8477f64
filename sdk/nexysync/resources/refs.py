"""``client.refs``: code references shared with one agent or the whole project; content is encrypted."""

from __future__ import annotations

from typing import Any

from nexysync._errors import ConflictError
from nexysync._pagination import AsyncPager, SyncPager
from nexysync.resources._base import AsyncResource, SyncResource, compact, is_id_conflict, operation
from nexysync.types import Ref

__all__ = ["AsyncRefs", "Refs"]


def _share_body(
    title: str, content: str, source_file: str | None, language: str | None, to: str | None, id: str | None
) -> dict[str, Any]:
    return compact(id=id, title=title, content=content, source_file=source_file, language=language, to=to)


def _list_query(from_: str | None, language: str | None, limit: int | None) -> dict[str, Any]:
    return {"from": from_, "language": language, "limit": limit}


def _same_ref(stored: Ref, body: dict[str, Any]) -> bool:
    """Return whether a stored reference is the one ``body`` describes (compared in plaintext)."""
    return (
        stored.title == body["title"]
        and stored.content == body["content"]
        and stored.source_file == body.get("source_file")
        and stored.language == body.get("language")
        and stored.to == body.get("to")
    )


class Refs(SyncResource):
    """Code references: a titled piece of code, optionally with its source file and language."""

    @operation("refs_share")
    def share(
        self,
        title: str,
        content: str,
        *,
        source_file: str | None = None,
        language: str | None = None,
        to: str | None = None,
        id: str | None = None,
    ) -> Ref:
        """Share a code reference with one agent, or with the whole project.

        Args:
            title: What the reference is (encrypted).
            content: The code (encrypted; at most about 190 KiB of text).
            source_file: Where the code comes from, e.g. ``src/app.py:10-42`` (encrypted).
            language: The code's language in lowercase (``python``, ``c++``; not encrypted, it filters).
            to: The recipient's slug; leave out to share with every agent of the project.
            id: A ULID of your own; by default a fresh one. Sharing again with the same id and the
                same content returns the stored reference instead of making a second one.

        Returns:
            The stored reference, decrypted.

        Raises:
            ConflictError: ``id`` was already used for a reference with other content.
            PermissionDeniedError: the project's storage quota is full (``QUOTA_EXCEEDED``).
        """
        body = _share_body(title, content, source_file, language, to, id)
        try:
            result: Ref = self._client.call("refs_share", body=body)
        except ConflictError as error:
            # Envelopes have fresh nonces, so a repeat's body differs byte for byte from the
            # stored one; compare in plaintext to tell a repeat from a real clash of ids.
            if not is_id_conflict(error, body) or not _same_ref(stored := self.get(body["id"]), body):
                raise
            return stored
        return result

    @operation("refs_list")
    def list(
        self, *, from_: str | None = None, language: str | None = None, limit: int | None = None
    ) -> SyncPager[Ref]:
        """List the references the caller may see (addressed to it or to everyone, or its own), decrypted.

        A reference that fails to decrypt (another project key, tampered with) is skipped, not raised:
        it is listed in ``pager.undecryptable`` (and each page's ``undecryptable``) and logged.

        Args:
            from_: Only references shared by this agent's slug.
            language: Only references in this language.
            limit: Page size (1 to 200).
        """
        return self._pager("refs_list", **_list_query(from_, language, limit))

    @operation("refs_get")
    def get(self, ref_id: str) -> Ref:
        """Return one reference, decrypted (bound to the id asked for)."""
        result: Ref = self._client.call("refs_get", path_params={"ref_id": ref_id})
        return result

    @operation("refs_delete")
    def delete(self, ref_id: str) -> None:
        """Delete a reference the caller shared, giving its storage back.

        Raises:
            PermissionDeniedError: another agent shared it.
        """
        self._client.call("refs_delete", path_params={"ref_id": ref_id})


class AsyncRefs(AsyncResource):
    """Code references; the async twin of :class:`Refs`."""

    @operation("refs_share")
    async def share(
        self,
        title: str,
        content: str,
        *,
        source_file: str | None = None,
        language: str | None = None,
        to: str | None = None,
        id: str | None = None,
    ) -> Ref:
        """Share a code reference with one agent, or with the whole project, as :meth:`Refs.share`.

        Raises:
            ConflictError: ``id`` was already used for a reference with other content.
            PermissionDeniedError: the project's storage quota is full (``QUOTA_EXCEEDED``).
        """
        body = _share_body(title, content, source_file, language, to, id)
        try:
            result: Ref = await self._client.call("refs_share", body=body)
        except ConflictError as error:
            if not is_id_conflict(error, body) or not _same_ref(stored := await self.get(body["id"]), body):
                raise
            return stored
        return result

    @operation("refs_list")
    def list(
        self, *, from_: str | None = None, language: str | None = None, limit: int | None = None
    ) -> AsyncPager[Ref]:
        """List the references the caller may see (``async for``), as :meth:`Refs.list` (``undecryptable``)."""
        return self._pager("refs_list", **_list_query(from_, language, limit))

    @operation("refs_get")
    async def get(self, ref_id: str) -> Ref:
        """Return one reference, decrypted."""
        result: Ref = await self._client.call("refs_get", path_params={"ref_id": ref_id})
        return result

    @operation("refs_delete")
    async def delete(self, ref_id: str) -> None:
        """Delete a reference the caller shared, giving its storage back."""
        await self._client.call("refs_delete", path_params={"ref_id": ref_id})
