"""Upload leases the database could not release when their upload ended, released once it can.

An upload's lease keeps a second upload of the same file out while the first one runs. When
the database goes away during an upload, the upload fails, and so does the release of its lease:
the lease would then hold for the rest of its time (minutes), and the client's retry, once the
database is back, would meet 409 ``UPLOAD_IN_PROGRESS`` for an upload that ended long ago. So a
release that meets a passing database failure is kept and tried again every ``interval_s`` until
it is done, or moot because the lease ran out. A CDN process that dies holds nothing in memory:
its leases run out on their own.
"""

from __future__ import annotations

import logging
import time

from ..background import Periodic
from ..store.failures import database_trouble
from ..store.files import FileStore

log = logging.getLogger(__name__)


class LeaseReleases:
    """Release upload leases, later when the database cannot now.

    Args:
        files: The files store, where leases live.
        interval_s: Time between attempts at the releases kept.
    """

    def __init__(self, files: FileStore, interval_s: float = 0.5) -> None:
        self._files = files
        # (project_id, file_id, token) -> when the lease runs out anyway (time.monotonic()).
        self._kept: dict[tuple[str, str, str], float] = {}
        self._periodic = Periodic("upload-lease-releases", self.retry, interval_s)

    @property
    def kept(self) -> int:
        """The number of releases waiting for the database."""
        return len(self._kept)

    def start(self) -> None:
        """Start trying the kept releases in the background."""
        self._periodic.start()

    async def stop(self) -> None:
        """Stop trying (what is kept runs out with its lease)."""
        await self._periodic.stop()

    async def release(self, project_id: str, file_id: str, token: str, lease_s: float) -> None:
        """Release an upload's lease now, or keep it for later if the database cannot take it.

        Raises:
            Exception: a failure that is not the database's passing trouble.
        """
        try:
            await self._files.release_upload(project_id, file_id, token)
        except Exception as exc:
            if database_trouble(exc) is None:
                raise
            self._kept[(project_id, file_id, token)] = time.monotonic() + lease_s
            log.warning("the lease of the upload of file %s is released once the database answers (%s)", file_id, exc)

    async def retry(self) -> None:
        """Try every kept release once; keep those the database still cannot take."""
        now = time.monotonic()
        for key, runs_out in list(self._kept.items()):
            if runs_out <= now:
                del self._kept[key]
                continue
            try:
                await self._files.release_upload(*key)
            except Exception as exc:
                if database_trouble(exc) is None:
                    raise
                return  # still away: the next round tries again
            del self._kept[key]
