"""The CDN application factory: signed uploads streamed to the volume, signed downloads with Range."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import falcon
import falcon.asgi

from ..errors import Problem, database_error_handler, database_unavailable, handle_unexpected, serialize_problem
from ..ids import ULID_RE
from ..logs import access_log
from ..metrics import CDN_BYTES, HttpMetrics
from ..metrics import add_endpoint as add_metrics_endpoint
from ..middleware import RequestId
from ..services.announcements import Announcements
from ..settings import Settings
from ..store import Store, files
from ..store.blobs import Blobs, volume_full
from ..store.documents import FileDoc
from ..store.failures import DatabaseDidNotWrite, DatabaseError
from ..store.indexing import Indexes
from .leases import LeaseReleases
from .ranges import Unsatisfiable, parse_range
from .signing import ExpiredUrl, InvalidUrl, Signed, UrlSigner
from .sweeper import Sweeper

log = logging.getLogger(__name__)

#: Bytes read from the volume per chunk of a download.
READ_CHUNK = 256 * 1024
#: An upload's lease on its file is this many body timeouts long, renewed as chunks arrive.
_LEASE_TIMEOUTS = 4


class Cdn(falcon.asgi.App[falcon.asgi.Request, falcon.asgi.Response]):
    """The NexySync CDN: a Falcon ASGI app with nothing to drain (its responses end by themselves)."""


def signer_for(settings: Settings) -> UrlSigner:
    """Return the URL signer the API and the CDN share."""
    return UrlSigner(settings.cdn_secret, settings.cdn_url, settings.url_ttl_s)


def _not_found() -> Problem:
    """Return the 404 for content that is not (or no longer, or not yet) there."""
    return Problem(404, "FILE_NOT_FOUND", "No such file content here.")


class _Lifespan:
    """Open the database and start the sweep; stop it and close the database at shutdown.

    Like the API, the CDN starts while its database is unavailable and answers 503 until it has
    made its indexes (see :mod:`nexysync_server.store.indexing`).
    """

    def __init__(self, store: Store, sweeper: Sweeper, releases: LeaseReleases, retry_after_s: int) -> None:
        self._store = store
        self._sweeper = sweeper
        self._releases = releases
        self._retry_after_s = retry_after_s
        self._indexes = Indexes(self._ensure_indexes)

    async def _ensure_indexes(self) -> None:
        await self._store.files.ensure_indexes()
        await self._store.events.ensure_indexes()

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Refuse every request until the indexes are made (but the metrics, which show that)."""
        if not self._indexes.ready and req.path != "/metrics":
            raise database_unavailable("This CDN has not reached its database since it started", self._retry_after_s)

    async def process_startup(self, scope: dict[str, Any], event: dict[str, Any]) -> None:
        """Create the indexes the CDN reads by, then start sweeping."""
        await self._indexes.start()
        self._sweeper.start()
        self._releases.start()

    async def process_shutdown(self, scope: dict[str, Any], event: dict[str, Any]) -> None:
        """Stop sweeping and close the database."""
        await self._indexes.stop()
        await self._sweeper.stop()
        await self._releases.stop()
        await self._store.close()


@dataclasses.dataclass(frozen=True, slots=True)
class UploadTimes:
    """How long an upload may take.

    Attributes:
        body_timeout_s: The longest wait for the next byte.
        min_bytes_per_s: The slowest average rate accepted: the whole upload must end within
            ``body_timeout_s + size / min_bytes_per_s``.
        grace_s: How long past its URL's expiry an upload that started in time may still run.
    """

    body_timeout_s: float
    min_bytes_per_s: int
    grace_s: float

    def allowed_s(self, size: int, expires: int, now: float) -> float:
        """Return how long an upload of ``size`` bytes, on a URL expiring at ``expires``, may take from ``now``."""
        return min(self.body_timeout_s + size / max(1, self.min_bytes_per_s), expires + self.grace_s - now)


class Blob:
    """``/blobs/{project_id}/{file_id}``: PUT the content once, GET it (with Range) while it is kept."""

    def __init__(
        self, store: Store, blobs: Blobs, signer: UrlSigner, times: UploadTimes, releases: LeaseReleases
    ) -> None:
        self._store = store
        self._announcements = Announcements(store.events)
        self._blobs = blobs
        self._signer = signer
        self._times = times
        self._releases = releases

    def _verify(self, req: falcon.asgi.Request, method: str, project_id: str, file_id: str) -> Signed:
        query = {key: value for key, value in req.params.items() if isinstance(value, str)}
        try:
            signed = self._signer.verify(method, req.path, query)
        except ExpiredUrl as exc:
            raise Problem(403, "URL_EXPIRED", "This signed URL has expired; ask the API for a new one.") from exc
        except InvalidUrl as exc:
            raise Problem(403, "URL_INVALID", f"This is not a valid signed URL: {exc}.") from exc
        if not (ULID_RE.match(project_id) and ULID_RE.match(file_id)):
            raise _not_found()
        return signed

    async def on_put(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str, file_id: str) -> None:
        """Stream the upload to a temp file; keep it only if it is exactly the declared size."""
        size, expires = self._verify(req, "PUT", project_id, file_id)
        allowed_s = self._times.allowed_s(size, expires, time.time())
        deadline = time.monotonic() + allowed_s
        doc = await self._store.files.get(project_id, file_id)
        if doc is None:
            raise _not_found()
        if doc["status"] != files.PENDING:
            await self._announce(doc)  # unless the upload that made it ready did
            raise _already_uploaded()
        if req.content_length is not None and req.content_length > size:
            raise _too_large(size)
        files_store = self._store.files
        lease_s = self._times.body_timeout_s * _LEASE_TIMEOUTS
        token = await files_store.claim_upload(project_id, file_id, lease_s)
        if token is None:
            raise Problem(
                409, "UPLOAD_IN_PROGRESS", "Another upload of this file is in progress; retry once it has ended."
            )

        async def renew() -> None:
            await files_store.renew_upload(project_id, file_id, token, lease_s)

        try:
            # The temp file lives exactly as long as this connection's upload: removed on every
            # way out (done, refused, stalled, cut, cancelled).
            temp: Path | None = None
            try:
                handle, temp = self._blobs.open_temp(project_id, file_id)
                received = await _receive(req, handle, size, self._times.body_timeout_s, deadline, renew)
                if received < size:
                    raise Problem(
                        400, "UPLOAD_INCOMPLETE", f"The upload ended after {received} of the declared {size} bytes."
                    )
                # On disk (data and name) before the database calls it ready: a crash after the
                # 201 must not leave a "ready" file whose content was only in the page cache.
                # Content already in place from an upload whose server died before marking it ready
                # is kept, and the file is made ready now (see Blobs.commit).
                await asyncio.to_thread(self._blobs.commit, temp, project_id, file_id)
            except OSError as exc:
                if not volume_full(exc):
                    raise
                raise await self._volume_full(project_id, file_id) from exc
            finally:
                if temp is not None:
                    temp.unlink(missing_ok=True)
        finally:
            await self._releases.release(project_id, file_id, token, lease_s)
        ready = await self._store.files.mark_ready(project_id, file_id)
        if ready is None:
            current = await self._store.files.get(project_id, file_id)
            if current is not None and current["status"] == files.READY:
                await self._announce(current)  # a concurrent retry made it ready
                raise _already_uploaded()
            if current is not None:
                # Still pending, yet not made ready: the database answered without writing (the
                # embedded one does so on a full disk). The content stays for the retry.
                raise DatabaseDidNotWrite("marking the file ready")
            # Deleted (or expired) while it was uploading: its content must not outlive it.
            self._blobs.delete(project_id, file_id)
            raise _not_found()
        await self._announce(ready)
        resp.status = falcon.HTTP_201
        resp.media = {"id": file_id, "size": size, "status": files.READY}

    async def _volume_full(self, project_id: str, file_id: str) -> Problem:
        """Withdraw the pending file whose upload found no room, give its storage back; return the 507.

        Its partial content is already gone (the temp file is removed). Withdrawn rather than left
        pending, so the project's quota does not count a file that is not there; the client
        announces it again once there is room.
        """
        withdrawn = await self._store.files.withdraw(project_id, file_id)
        if withdrawn is not None:
            await self._store.usage.release_storage(project_id, withdrawn["size"])
        log.error("the file volume %s is full: the upload of file %s was refused", self._blobs.root, file_id)
        return Problem(
            507,
            "FILES_VOLUME_FULL",
            "The file volume is full: nothing of this upload was kept and the file was withdrawn (its storage "
            "is given back). Announce the file again later.",
        )

    async def _announce(self, ready: FileDoc) -> None:
        await self._announcements.file_ready(ready)

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, project_id: str, file_id: str) -> None:
        """Stream the content, or the one byte range asked for."""
        # The URL's signature is the credential (no cookies), so any origin may read it: the
        # console downloads and decrypts files in the browser, from the API's origin.
        resp.set_header("Access-Control-Allow-Origin", "*")
        self._verify(req, "GET", project_id, file_id)
        doc = await self._store.files.get(project_id, file_id)
        path = self._blobs.path(project_id, file_id)
        if doc is None or doc["status"] != files.READY or not path.is_file():
            raise _not_found()
        size = path.stat().st_size
        resp.set_header("Accept-Ranges", "bytes")
        resp.set_header("Cache-Control", "private, no-store")
        resp.content_type = "application/octet-stream"
        try:
            wanted = parse_range(req.get_header("Range"), size)
        except Unsatisfiable as exc:
            unsatisfiable = {"Content-Range": f"bytes */{size}"}
            raise Problem(416, "RANGE_NOT_SATISFIABLE", f"The content is {size} bytes.", headers=unsatisfiable) from exc
        if wanted is None:
            first, last = 0, size - 1
        else:
            first, last = wanted
            resp.status = falcon.HTTP_206
            resp.set_header("Content-Range", f"bytes {first}-{last}/{size}")
        resp.content_length = last - first + 1
        resp.stream = _read(path, first, last - first + 1)


def _already_uploaded() -> Problem:
    return Problem(409, "FILE_ALREADY_UPLOADED", "This file's content was already uploaded.")


def _too_large(size: int) -> Problem:
    return Problem(413, "UPLOAD_TOO_LARGE", f"The upload is larger than the declared {size} bytes.")


async def _receive(
    req: falcon.asgi.Request,
    handle: Any,
    size: int,
    timeout_s: float,
    deadline: float,
    renew: Callable[[], Awaitable[None]],
) -> int:
    """Write the request body to ``handle`` chunk by chunk; stop past ``size``. Return the byte count.

    Raises:
        Problem: 413 past ``size``; 408 when no byte came for ``timeout_s``, or the body is not
            whole by ``deadline`` (``time.monotonic()``): a stalled or trickling upload would
            otherwise hold its connection, temp file and lease for as long as the client likes.
    """
    received = 0
    chunks = aiter(req.stream)
    renewed = time.monotonic()
    with handle:
        while True:
            left_s = deadline - time.monotonic()
            try:
                chunk = await asyncio.wait_for(anext(chunks), max(0.0, min(timeout_s, left_s)))
            except StopAsyncIteration:
                break
            except TimeoutError:
                if left_s <= timeout_s:
                    detail = (
                        f"The upload was not whole in time ({received} of {size} bytes arrived); it was cut. "
                        "Upload again, faster, or with a new URL."
                    )
                else:
                    detail = f"No byte of the upload arrived for {timeout_s:g} s; it was cut. Upload again."
                raise Problem(408, "UPLOAD_TIMEOUT", detail, headers={"Connection": "close"}) from None
            received += len(chunk)
            CDN_BYTES.labels("upload").inc(len(chunk))
            if received > size:
                raise _too_large(size)
            # Plain writes of the (at most 64 KiB) chunks the server hands over: they land in the
            # page cache at once, which costs less than a thread hop per chunk.
            handle.write(chunk)
            if time.monotonic() - renewed > timeout_s:
                renewed = time.monotonic()
                await renew()
    return received


async def _read(path: Path, first: int, length: int) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        handle.seek(first)
        left = length
        while left > 0:
            chunk = handle.read(min(READ_CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk
            CDN_BYTES.labels("download").inc(len(chunk))


class Health:
    """``/health``: the CDN runs (and can reach the database)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Answer 200 when the database answers, else 503."""
        if not await self._store.ping():
            raise Problem(503, "UNAVAILABLE", "The database does not answer.")
        resp.media = {"status": "ok"}


def _upload_times(settings: Settings) -> UploadTimes:
    return UploadTimes(settings.cdn_body_timeout_s, settings.cdn_min_upload_bytes_per_s, settings.cdn_upload_grace_s)


def create_cdn_app(settings: Settings | None = None) -> Cdn:
    """Build the CDN's ASGI app; the database is opened at ASGI start-up.

    Args:
        settings: Server settings (``NEXYSYNC_FILES_DIR``, ``NEXYSYNC_CDN_SECRET``, ...); read
            from the environment if omitted.

    Raises:
        ValueError: ``NEXYSYNC_FILES_DIR`` is not set.
    """
    settings = settings or Settings.from_env()
    if not settings.files_dir:
        raise ValueError("NEXYSYNC_FILES_DIR must name the directory the CDN stores files in")
    if not settings.cdn_secret:
        log.warning("NEXYSYNC_CDN_SECRET is not set; no URL signed by the API will be accepted")
        settings = dataclasses.replace(settings, cdn_secret=secrets.token_urlsafe(32))
    store = Store(settings)
    blobs = Blobs(settings.files_dir)
    sweeper = Sweeper(store, blobs, settings.file_sweep_interval_s, settings.file_pending_ttl_s)
    releases = LeaseReleases(store.files)
    app = Cdn(
        middleware=[
            RequestId(),
            *access_log(settings),
            HttpMetrics(),
            _Lifespan(store, sweeper, releases, settings.database_retry_after_s),
        ]
    )
    app.req_options.strip_url_path_trailing_slash = True
    app.set_error_serializer(serialize_problem)
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(DatabaseError, database_error_handler(settings.database_retry_after_s))
    add_metrics_endpoint(app, settings.metrics_token)
    app.add_route("/health", Health(store))
    app.add_route(
        "/blobs/{project_id}/{file_id}", Blob(store, blobs, signer_for(settings), _upload_times(settings), releases)
    )
    return app
