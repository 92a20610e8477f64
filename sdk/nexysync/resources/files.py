"""``client.files``: files shared through the CDN, encrypted client-side in 64 KiB segments.

``upload`` announces the file to the API (its name encrypted like any field), then streams the
encrypted content to the signed CDN URL the API answers; ``download`` streams it back from a
signed URL and decrypts it as it arrives. Neither holds more than a few segments in memory.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import IO, BinaryIO

import httpx

from nexysync._errors import APIConnectionError, APIError, NexySyncError, error_from_response
from nexysync._pagination import AsyncPager, SyncPager
from nexysync._ulid import new_ulid
from nexysync.crypto import (
    FILE_HEADER_BYTES,
    FILE_SEGMENT_BYTES,
    TAG_BYTES,
    FileDecryptor,
    KeyRing,
    encrypt_file_stream,
    encrypted_file_size,
    plaintext_file_size,
)
from nexysync.resources._base import AsyncResource, SyncResource, compact, operation
from nexysync_generated.models import File, FileUpload

__all__ = ["AsyncFiles", "FileNotReadyError", "Files", "ProgressCallback", "Source", "Target"]

#: ``progress(done, total)`` in plaintext bytes, called as the content goes out or comes in.
ProgressCallback = Callable[[int, int], None]
#: A path to read, or a binary stream (read from its current position).
Source = str | os.PathLike[str] | BinaryIO
#: A path to write (replaced only once the whole file decrypted), or a binary stream to write to.
Target = str | os.PathLike[str] | BinaryIO
#: Timeout of the CDN transfers: generous for reads and writes of large files on slow links.
CDN_TIMEOUT = httpx.Timeout(120.0, connect=10.0)
#: Retries of an upload whose connection failed or got a 5xx (the same signed URL, from the start).
CDN_RETRIES = 2
_UPLOAD_WRITE_BYTES = 16 * FILE_SEGMENT_BYTES


class FileNotReadyError(NexySyncError):
    """The file's content has not been uploaded (yet): it is still ``pending``."""


def _ring(key_ring: KeyRing | None) -> KeyRing:
    if key_ring is None:
        raise NexySyncError("files are encrypted: give the client an encryption key")
    return key_ring


@contextlib.contextmanager
def _open_source(source: Source) -> Iterator[tuple[IO[bytes], int]]:
    """Open a source; yield a seekable stream positioned at the content and the content's size.

    A stream that cannot seek is first copied to a temp file (on disk past a few MiB), because
    the upload must declare its size before it starts.
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as handle:
            yield handle, os.fstat(handle.fileno()).st_size
        return
    if source.seekable():
        start = source.tell()
        size = source.seek(0, os.SEEK_END) - start
        source.seek(start)
        yield source, size
        return
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
        while chunk := source.read(FILE_SEGMENT_BYTES):
            spool.write(chunk)
        size = spool.tell()
        spool.seek(0)
        yield spool, size


def _ciphertext(
    ring: KeyRing,
    handle: IO[bytes],
    start: int,
    total: int,
    project_id: str,
    file_id: str,
    progress: ProgressCallback | None,
) -> Iterator[bytes]:
    """Yield the encrypted content from ``start`` of ``handle`` in writes of about 1 MiB, reporting progress.

    Larger writes than one segment: each one the CDN receives costs it a wake-up and an ASGI
    message, and at 64 KiB that, not the network, bounded the upload rate.
    """
    handle.seek(start)
    done = 0
    batch: list[bytes] = []
    batched = 0
    for piece in encrypt_file_stream(ring, handle.read, project_id=project_id, file_id=file_id):
        batch.append(piece)
        batched += len(piece)
        if len(piece) != FILE_HEADER_BYTES:
            done += len(piece) - TAG_BYTES
        if batched >= _UPLOAD_WRITE_BYTES:
            yield b"".join(batch)
            batch.clear()
            batched = 0
            if progress is not None:
                progress(done, total)
    if batch:
        yield b"".join(batch)
    if progress is not None:
        progress(done, total)


class _Download:
    """Where decrypted content goes: a stream, or a temp file renamed onto the path at the end."""

    def __init__(self, target: Target) -> None:
        self._path: Path | None = None
        self._temp: Path | None = None
        if isinstance(target, (str, os.PathLike)):
            self._path = Path(target)
            fd, temp = tempfile.mkstemp(prefix=f".{self._path.name}.", suffix=".part", dir=self._path.parent or ".")
            self._temp = Path(temp)
            self.handle: IO[bytes] = os.fdopen(fd, "wb")
        else:
            self.handle = target

    def done(self) -> None:
        """Put the complete file in place."""
        if self._path is not None and self._temp is not None:
            self.handle.close()
            os.replace(self._temp, self._path)
            self._temp = None

    def abandon(self) -> None:
        """Remove the partial file (a path target only)."""
        if self._temp is not None:
            self.handle.close()
            self._temp.unlink(missing_ok=True)


def _check(response: httpx.Response) -> None:
    if response.is_error:
        raise error_from_response(response)


def _retryable(response: httpx.Response) -> bool:
    # 507: the volume is full and the file was withdrawn; a retry of the same URL cannot succeed.
    return response.status_code >= 500 and response.status_code != 507


def _check_upload(response: httpx.Response, *, retried: bool) -> None:
    """Raise for a refused upload; a retry told the content is already there has succeeded.

    Only this client holds the signed URL of its fresh file id, so "already uploaded" on a retry
    means an earlier attempt was stored and only its answer was lost.
    """
    if not response.is_error:
        return
    error = error_from_response(response)
    if retried and response.status_code == 409 and error.code == "FILE_ALREADY_UPLOADED":
        return
    raise error


class Files(SyncResource):
    """Files shared through the CDN; names and content are encrypted."""

    @operation("files_create")
    def create(self, *, name: str, size: int, content_type: str | None = None, id: str | None = None) -> FileUpload:
        """Announce a file of ``size`` encrypted bytes; return it (pending) and its signed upload URL.

        Most callers want :meth:`upload`, which does this and the upload.
        """
        body = compact(id=id, name=name, size=size, content_type=content_type)
        result: FileUpload = self._client.call("files_create", body=body)
        return result

    @operation("files_list")
    def list(self, *, limit: int | None = None) -> SyncPager[File]:
        """List the project's ready files, names decrypted, each with a fresh download URL.

        A file name that fails to decrypt (another project key, tampered with) is skipped, not raised:
        it is listed in ``pager.undecryptable`` (and each page's ``undecryptable``) and logged.
        """
        return self._pager("files_list", limit=limit)

    @operation("files_get")
    def get(self, file_id: str) -> File:
        """Return a file's metadata (name decrypted) with a fresh download URL once it is ready."""
        result: File = self._client.call("files_get", path_params={"file_id": file_id})
        return result

    @operation("files_delete")
    def delete(self, file_id: str) -> None:
        """Delete a file the caller uploaded, with its content."""
        self._client.call("files_delete", path_params={"file_id": file_id})

    def upload(
        self,
        source: Source,
        *,
        name: str,
        content_type: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> File:
        """Encrypt and upload a file; return it, ready.

        Args:
            source: A path, or a binary stream read from its current position.
            name: The file's name (encrypted).
            content_type: Its media type (not encrypted), e.g. ``text/plain``.
            progress: Called with (plaintext bytes sent, plaintext size) as the upload goes.

        Raises:
            APIStatusError: (a subclass of it) the API or the CDN refused, e.g. 403 QUOTA_EXCEEDED.
            APIConnectionError: the CDN could not be reached, even after retries.
        """
        ring = _ring(self._client.key_ring)
        project_id = self._client.project_id
        file_id = new_ulid()
        with _open_source(source) as (handle, plain_size):
            start = handle.tell()
            size = encrypted_file_size(plain_size)
            announced = self.create(name=name, size=size, content_type=content_type, id=file_id)
            headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
            # The API's connection pool (never its credentials: the CDN trusts the URL's signature).
            http = self._client._transport.http
            try:
                for attempt in range(CDN_RETRIES + 1):
                    content = _ciphertext(ring, handle, start, plain_size, project_id, file_id, progress)
                    try:
                        response = http.put(
                            str(announced.upload_url), content=content, headers=headers, timeout=CDN_TIMEOUT
                        )
                    except httpx.TransportError as exc:
                        if attempt == CDN_RETRIES:
                            raise APIConnectionError(f"uploading to the CDN failed: {exc}") from exc
                        continue
                    if not _retryable(response) or attempt == CDN_RETRIES:
                        break
                _check_upload(response, retried=attempt > 0)
            except BaseException:
                # Give the announcement and its reserved storage back now rather than at the pending sweep;
                # the upload's own error is what the caller needs to see.
                with contextlib.suppress(APIError):
                    self.delete(file_id)
                raise
        return self.get(file_id)

    def download(self, file_id: str, *, to: Target, progress: ProgressCallback | None = None) -> File:
        """Download and decrypt a file into ``to``; return its metadata.

        A path is written only once the whole content decrypted (nothing is left on failure); a
        stream receives each 64 KiB segment as it is authenticated, and then :class:`DecryptionError`
        at the end means the content was cut short or tampered with.

        Raises:
            FileNotReadyError: its upload has not completed.
            DecryptionError: the content was tampered with, truncated or is for another file.
            APIStatusError: (a subclass of it) the API or the CDN refused.
        """
        ring = _ring(self._client.key_ring)
        meta = self.get(file_id)
        if meta.download_url is None:
            raise FileNotReadyError(f"file {file_id} is still being uploaded")
        target = _Download(to)
        try:
            try:
                self._fetch(self._client._transport.http, str(meta.download_url), ring, meta, target, progress)
            except httpx.TransportError as exc:
                raise APIConnectionError(f"downloading from the CDN failed: {exc}") from exc
            target.done()
        except BaseException:
            target.abandon()
            raise
        return meta

    def _fetch(
        self,
        http: httpx.Client,
        url: str,
        ring: KeyRing,
        meta: File,
        target: _Download,
        progress: ProgressCallback | None,
    ) -> None:
        decryptor = FileDecryptor(ring, project_id=meta.project_id, file_id=meta.id)
        total = _plain_total(meta.size)
        done = 0
        with http.stream("GET", url, timeout=CDN_TIMEOUT) as response:
            if response.is_error:
                response.read()
                _check(response)
            for chunk in response.iter_raw():
                plaintext = decryptor.feed(chunk)
                if plaintext:
                    target.handle.write(plaintext)
                    done += len(plaintext)
                    if progress is not None:
                        progress(done, total)
        last = decryptor.finish()
        target.handle.write(last)
        if progress is not None:
            progress(done + len(last), total)


def _plain_total(size: int) -> int:
    try:
        return plaintext_file_size(size)
    except ValueError:
        return size


class AsyncFiles(AsyncResource):
    """Files shared through the CDN (async), as :class:`Files`."""

    @operation("files_create")
    async def create(
        self, *, name: str, size: int, content_type: str | None = None, id: str | None = None
    ) -> FileUpload:
        """Announce a file, as :meth:`Files.create`."""
        body = compact(id=id, name=name, size=size, content_type=content_type)
        result: FileUpload = await self._client.call("files_create", body=body)
        return result

    @operation("files_list")
    def list(self, *, limit: int | None = None) -> AsyncPager[File]:
        """List the project's ready files (``async for``), names decrypted; those that fail are in ``undecryptable``."""
        return self._pager("files_list", limit=limit)

    @operation("files_get")
    async def get(self, file_id: str) -> File:
        """Return a file's metadata with a fresh download URL once it is ready."""
        result: File = await self._client.call("files_get", path_params={"file_id": file_id})
        return result

    @operation("files_delete")
    async def delete(self, file_id: str) -> None:
        """Delete a file the caller uploaded, with its content."""
        await self._client.call("files_delete", path_params={"file_id": file_id})

    async def upload(
        self,
        source: Source,
        *,
        name: str,
        content_type: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> File:
        """Encrypt and upload a file; return it, ready (see :meth:`Files.upload`)."""
        ring = _ring(self._client.key_ring)
        project_id = await self._client.get_project_id()
        file_id = new_ulid()
        with _open_source(source) as (handle, plain_size):
            start = handle.tell()
            size = encrypted_file_size(plain_size)
            announced = await self.create(name=name, size=size, content_type=content_type, id=file_id)
            headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
            http = self._client._transport.http
            try:
                for attempt in range(CDN_RETRIES + 1):
                    content = _aiter(_ciphertext(ring, handle, start, plain_size, project_id, file_id, progress))
                    try:
                        response = await http.put(
                            str(announced.upload_url), content=content, headers=headers, timeout=CDN_TIMEOUT
                        )
                    except httpx.TransportError as exc:
                        if attempt == CDN_RETRIES:
                            raise APIConnectionError(f"uploading to the CDN failed: {exc}") from exc
                        continue
                    if not _retryable(response) or attempt == CDN_RETRIES:
                        break
                _check_upload(response, retried=attempt > 0)
            except BaseException:
                with contextlib.suppress(APIError):
                    await self.delete(file_id)
                raise
        return await self.get(file_id)

    async def download(self, file_id: str, *, to: Target, progress: ProgressCallback | None = None) -> File:
        """Download and decrypt a file into ``to``; return its metadata (see :meth:`Files.download`)."""
        ring = _ring(self._client.key_ring)
        meta = await self.get(file_id)
        if meta.download_url is None:
            raise FileNotReadyError(f"file {file_id} is still being uploaded")
        target = _Download(to)
        try:
            http = self._client._transport.http
            decryptor = FileDecryptor(ring, project_id=meta.project_id, file_id=meta.id)
            total = _plain_total(meta.size)
            done = 0
            try:
                async with http.stream("GET", str(meta.download_url), timeout=CDN_TIMEOUT) as response:
                    if response.is_error:
                        await response.aread()
                        _check(response)
                    async for chunk in response.aiter_raw():
                        plaintext = decryptor.feed(chunk)
                        if plaintext:
                            target.handle.write(plaintext)
                            done += len(plaintext)
                            if progress is not None:
                                progress(done, total)
            except httpx.TransportError as exc:
                raise APIConnectionError(f"downloading from the CDN failed: {exc}") from exc
            last = decryptor.finish()
            target.handle.write(last)
            if progress is not None:
                progress(done + len(last), total)
            target.done()
        except BaseException:
            target.abandon()
            raise
        return meta


async def _aiter(pieces: Iterator[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece
