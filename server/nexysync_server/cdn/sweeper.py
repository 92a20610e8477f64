"""The retention sweep: files past their retention, abandoned uploads, and content without a record.

Several CDN workers may sweep at once: each record is removed with one ``find_one_and_delete``,
so only one of them deletes its content and gives its storage back.
"""

from __future__ import annotations

import logging

from ..background import Periodic
from ..store import Store
from ..store.blobs import Blobs

log = logging.getLogger(__name__)

# Blobs checked against their records per database query.
_IDS_PER_QUERY = 500


class Sweeper:
    """Delete what has expired, on a timer.

    Args:
        store: The shared database.
        blobs: The volume.
        interval_s: Time between sweeps.
        temp_ttl_s: Age after which an upload's temp file is abandoned.
    """

    def __init__(self, store: Store, blobs: Blobs, interval_s: float, temp_ttl_s: float) -> None:
        self._store = store
        self._blobs = blobs
        self._temp_ttl_s = temp_ttl_s
        self._periodic = Periodic("file-sweeper", self._sweep_and_log, interval_s, first_now=True)

    async def sweep(self) -> int:
        """Run one sweep; return how many files were removed."""
        removed = 0
        for doc in await self._store.files.due():
            deleted = await self._store.files.delete(doc["project_id"], doc["id"])
            if deleted is None:
                continue  # another sweeper or a client was first, and gave the storage back
            self._blobs.delete(deleted["project_id"], deleted["id"])
            await self._store.usage.release_storage(deleted["project_id"], deleted["size"])
            removed += 1
        # Content whose record is gone: deleted through an API process without this volume, or
        # its project deleted. A record is written before its upload starts, so none is in flight.
        for project_id in self._blobs.project_ids():
            if not await self._store.projects.exists(project_id):
                self._blobs.delete_project(project_id)
                continue
            on_disk = list(self._blobs.file_ids(project_id))
            for start in range(0, len(on_disk), _IDS_PER_QUERY):
                some = on_disk[start : start + _IDS_PER_QUERY]
                for file_id in set(some) - await self._store.files.with_records(project_id, some):
                    self._blobs.delete(project_id, file_id)
        self._blobs.remove_stale_temps(self._temp_ttl_s)
        return removed

    def start(self) -> None:
        """Sweep now and then every interval, in the background."""
        self._periodic.start()

    async def stop(self) -> None:
        """Stop sweeping."""
        await self._periodic.stop()

    async def _sweep_and_log(self) -> None:
        removed = await self.sweep()
        if removed:
            log.info("file sweep removed %d expired or abandoned files", removed)
