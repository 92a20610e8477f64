"""One announcement path for the records agents share: kv entries, code references and files.

A write stores its record first and announces it after (the event log's ``announce``: at most
once per record, and again by a retry whose first try died before telling). The event is handed
to this process's hub at once when there is one (the API), so its own streams need not wait for
the watcher; the CDN has none, and the watchers of the API processes bring its events.
"""

from __future__ import annotations

from typing import Any

from ..realtime.hub import Hub
from ..store.documents import EventDoc, FileDoc, KvDoc, RefDoc
from ..store.events import EVERYONE, EventStore
from ..store.files import routing as file_routing
from ..store.refs import audience as ref_audience
from ..store.refs import routing as ref_routing


def kv_update(entry: KvDoc, *, deleted: bool) -> dict[str, Any]:
    """Return what a ``kv_update`` event tells: the key, its version, who wrote it; never the value."""
    return {"key": entry["key"], "version": entry["version"], "updated_by": entry["updated_by"], "deleted": deleted}


class Announcements:
    """Tell a project's agents of new records.

    Args:
        events: The event log.
        hub: This process's fan-out, if it serves streams.
    """

    def __init__(self, events: EventStore, hub: Hub | None = None) -> None:
        self._events = events
        self._hub = hub

    async def kv_written(self, entry: KvDoc) -> None:
        """Announce a kv entry as written, unless its write was announced already (a retry's)."""
        event = await self._events.announce(
            "kv", entry, "kv_update", [EVERYONE], kv_update(entry, deleted=False), unchanged=("version",)
        )
        self._publish(event)

    async def kv_deleted(self, entry: KvDoc) -> None:
        """Announce a deleted kv entry (the entry as it was, ``updated_by`` the deleter)."""
        event = await self._events.append(entry["project_id"], "kv_update", [EVERYONE], kv_update(entry, deleted=True))
        self._publish(event)

    async def ref_shared(self, ref: RefDoc) -> None:
        """Announce a code reference to its audience, unless that was done already."""
        event = await self._events.announce("ref", ref, "new_ref", ref_audience(ref), ref_routing(ref))
        self._publish(event)

    async def file_ready(self, file: FileDoc) -> None:
        """Announce a file whose content is uploaded, unless that was done already."""
        event = await self._events.announce("file", file, "new_file", [EVERYONE], file_routing(file))
        self._publish(event)

    def _publish(self, event: EventDoc | None) -> None:
        if event is not None and self._hub is not None:
            self._hub.publish(event)
