"""``client.leases``: claiming workspace paths by name (the keys are made here, the server sees only them).

The operation methods (claim, list, renew, release) are generated into
``nexysync._generated.leases``; these subclasses add ``claim_paths``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nexysync._auth import Session
from nexysync._errors import ConflictError, KeyFileError
from nexysync._generated import leases as generated
from nexysync._operations import decrypt_record
from nexysync.crypto import DecryptionError, KeyRing
from nexysync.paths import PathKeys, normalise
from nexysync.types import Lease, LeaseList

__all__ = ["AsyncLeases", "Leases"]


def _ring(session: Session) -> KeyRing:
    """Return the client's key ring, which the lease keys are made from."""
    if session.ring is None:
        raise KeyFileError("lease keys are made from the project key: give the client an encryption key")
    return session.ring


def _opened(ring: KeyRing, project_id: str, error: ConflictError) -> list[Lease]:
    """Return the leases a ``LEASE_CONFLICT`` names, their paths and reasons opened.

    One whose envelopes do not open (a key this ring lacks) comes with ``path`` saying so: its
    holder and end still tell the caller what to do.
    """
    body = error.body if isinstance(error.body, dict) else {}
    opened = []
    for raw in body.get("conflicts") or []:
        try:
            opened.append(Lease.model_validate(decrypt_record(ring, project_id, "Lease", raw)))
        except DecryptionError as exc:
            opened.append(Lease.model_validate({**raw, "path": f"[cannot decrypt: {exc}]", "reason": None}))
    return opened


def _items(
    keys: PathKeys, paths: Sequence[str | Path], reason: str | None, root: str | Path | None
) -> list[dict[str, Any]]:
    items = []
    for path in paths:
        normalised = normalise(path, root)
        key, ancestors = keys.of(normalised)
        item: dict[str, Any] = {"key": key, "ancestors": ancestors, "path": normalised}
        if reason is not None:
            item["reason"] = reason
        items.append(item)
    return items


class Leases(generated.Leases):
    """Leases on workspace paths; the server sees only keyed hashes of the paths."""

    def path_keys(self) -> PathKeys:
        """Return the maker of this project's lease keys (the project from ``GET /v1/me`` once, when not configured)."""
        ring = _ring(self._client._session)
        return PathKeys(ring, self._client.get_project_id())

    def claim_paths(
        self,
        paths: Sequence[str | Path],
        *,
        ttl_s: int,
        exclusive: bool = True,
        reason: str | None = None,
        root: str | Path | None = None,
    ) -> LeaseList:
        """Claim a lease on each path (a file, or a directory and all under it), all or none.

        Args:
            paths: Paths inside the workspace (``root``, by default the working directory).
            ttl_s: How long the leases live without renewal.
            exclusive: Shared leases sit together; an exclusive one sits with none.
            reason: Why (encrypted).
            root: The workspace's root.

        Raises:
            ConflictError: another agent holds a lease in the way (``LEASE_CONFLICT``; the error's
                body has the leases in ``conflicts``).
        """
        return self.claim(_items(self.path_keys(), paths, reason, root), ttl_s=ttl_s, exclusive=exclusive)

    def conflicts(self, error: ConflictError) -> list[Lease]:
        """Return the leases in the way that a refused claim (``LEASE_CONFLICT``) names, their paths opened."""
        ring = _ring(self._client._session)
        return _opened(ring, self._client.get_project_id(), error)


class AsyncLeases(generated.AsyncLeases):
    """Leases on workspace paths; the server sees only keyed hashes of the paths (async)."""

    async def path_keys(self) -> PathKeys:
        """Return the maker of this project's lease keys (the project from ``GET /v1/me`` once, when not configured)."""
        ring = _ring(self._client._session)
        return PathKeys(ring, await self._client.get_project_id())

    async def claim_paths(
        self,
        paths: Sequence[str | Path],
        *,
        ttl_s: int,
        exclusive: bool = True,
        reason: str | None = None,
        root: str | Path | None = None,
    ) -> LeaseList:
        """Claim a lease on each path, all or none (see :meth:`Leases.claim_paths`)."""
        keys = await self.path_keys()
        return await self.claim(_items(keys, paths, reason, root), ttl_s=ttl_s, exclusive=exclusive)

    async def conflicts(self, error: ConflictError) -> list[Lease]:
        """Return the leases a refused claim names, their paths opened (see :meth:`Leases.conflicts`)."""
        ring = _ring(self._client._session)
        return _opened(ring, await self._client.get_project_id(), error)
