"""Documents that end at a time: TTL indexes on MongoDB, a periodic sweep on the embedded database.

MongoDB drops a document some time (up to a minute) after the date in a TTL-indexed field. The
embedded database (nx-27017, on neosqlite) does the same, but before every read of a collection
with a TTL index: it deletes the ended documents with a statement that reads the whole
collection, so every read of it (``_id`` look-ups included) slows as the collection grows, 0.5 ms
at 1,000 documents and 30 ms at 20,000 measured. There, the field gets a plain index and
:meth:`Expiry.sweep`, run once a minute (as often as MongoDB's TTL monitor), deletes what ended.
Nothing reads these fields expecting an exact end, on either database.
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from ..background import Periodic
from ..ids import utcnow

log = logging.getLogger(__name__)

#: How often the embedded database's ended documents are deleted.
SWEEP_INTERVAL_S = 60.0
# What nx-27017 answers in ``buildInfo.process``.
_EMBEDDED = "nx_27017"


class Expiry:
    """Make the indexes of fields that hold an end time, and sweep them where the database does not.

    The server's :class:`~nexysync_server.store.Store` holds one, and the API's processes run its
    sweep. A store made on its own (a test, a script) makes its own, which nobody sweeps.
    """

    def __init__(self, interval_s: float = SWEEP_INTERVAL_S) -> None:
        self._embedded: bool | None = None
        self._swept: list[tuple[AsyncCollection[Any], str]] = []
        self._sweeper = Periodic("expiry-sweeper", self.sweep, interval_s)

    def start(self) -> None:
        """Sweep every interval (nothing to do on MongoDB, whose TTL monitor deletes)."""
        self._sweeper.start()

    async def stop(self) -> None:
        """Stop sweeping."""
        await self._sweeper.stop()

    async def _is_embedded(self, col: AsyncCollection[Any]) -> bool:
        if self._embedded is None:
            info = await col.database.client.admin.command("buildInfo")
            self._embedded = info.get("process") == _EMBEDDED
        return self._embedded

    async def index(self, col: AsyncCollection[Any], field: str) -> None:
        """Index ``field`` (a date) so that a document is deleted once that date has passed."""
        if not await self._is_embedded(col):
            await col.create_index(field, expireAfterSeconds=0)
            return
        # A TTL index an earlier version made here would go on costing every read.
        async for index in await col.list_indexes():
            if "expireAfterSeconds" in index and list(index["key"]) == [field]:
                await col.drop_index(index["name"])
                log.info("replaced the TTL index %s of %s by a sweep", index["name"], col.name)
        await col.create_index(field)
        if (col, field) not in self._swept:
            self._swept.append((col, field))

    async def sweep(self) -> int:
        """Delete the documents whose end has passed, in every swept collection; return how many."""
        now = utcnow()
        deleted = 0
        for col, field in self._swept:
            deleted += (await col.delete_many({field: {"$lt": now}})).deleted_count
        return deleted
