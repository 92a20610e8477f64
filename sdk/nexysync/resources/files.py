"""``client.files``: files shared through the CDN, encrypted client-side in 64 KiB segments.

``upload`` announces the file to the API (its name encrypted like any field), then streams the
encrypted content to the signed CDN URL the API answers; ``download`` streams it back from a
signed URL and decrypts it as it arrives. Neither holds more than a few segments in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import IO, BinaryIO

import httpx

from nexysync._errors import APIConnectionError, APIError, FileNotReadyError, NexySyncError, error_from_response
from nexysync._generated import files as generated
from nexysync._transport import should_retry_response
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
from nexysync.types import File

__all__ = ["AsyncFiles", "FileNotReadyError", "Files", "ProgressCallback", "Source", "Target"]

#: ``progress(done, total)`` in plaintext bytes, called as the content goes out or comes in.
ProgressCallback = Callable[[int, int], None]
#: A path to read, or a binary stream (read from its current position).
Source = str | os.PathLike[str] | BinaryIO
#: A path to write (replaced only once the whole file decrypted), or a binary stream to write to.
Target = str | os.PathLike[str] | BinaryIO
#: Timeout of the CDN transfers: generous for reads and writes of large files on slow links.
CDN_TIMEOUT = httpx.Timeout(120.0, connect=10.0)
#: Retries of an upload whose connection failed or got a retryable answer (the same signed URL, from the start).
CDN_RETRIES = 2
_UPLOAD_WRITE_BYTES = 16 * FILE_SEGMENT_BYTES


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


class Files(generated.Files):
    """Files shared through the CDN; names and content are encrypted."""

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
        project_id = self._client.get_project_id()
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
                    if not should_retry_response(response) or attempt == CDN_RETRIES:
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
        project_id = self._client.get_project_id()
        meta = self.get(file_id)
        if meta.download_url is None:
            raise FileNotReadyError(f"file {file_id} is still being uploaded")
        # The content is bound to the file and project asked for, never to the ids the server answers.
        decryptor = FileDecryptor(ring, project_id=project_id, file_id=file_id)
        target = _Download(to)
        try:
            try:
                self._fetch(self._client._transport.http, str(meta.download_url), decryptor, meta, target, progress)
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
        decryptor: FileDecryptor,
        meta: File,
        target: _Download,
        progress: ProgressCallback | None,
    ) -> None:
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


class AsyncFiles(generated.AsyncFiles):
    """Files shared through the CDN (async), as :class:`Files`."""

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
        # Opening (or spooling) the source, reading it and encrypting it all run on worker threads,
        # never on the event loop; progress is reported on the loop.
        opened = _open_source(source)
        handle, plain_size = await asyncio.to_thread(opened.__enter__)
        try:
            start = handle.tell()
            size = encrypted_file_size(plain_size)
            announced = await self.create(name=name, size=size, content_type=content_type, id=file_id)
            headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
            http = self._client._transport.http
            try:
                for attempt in range(CDN_RETRIES + 1):
                    relay = None if progress is None else _ProgressRelay(progress)
                    pieces = _ciphertext(
                        ring, handle, start, plain_size, project_id, file_id, None if relay is None else relay.record
                    )
                    content = _off_loop(pieces, None if relay is None else relay.report)
                    try:
                        response = await http.put(
                            str(announced.upload_url), content=content, headers=headers, timeout=CDN_TIMEOUT
                        )
                    except httpx.TransportError as exc:
                        if attempt == CDN_RETRIES:
                            raise APIConnectionError(f"uploading to the CDN failed: {exc}") from exc
                        continue
                    if not should_retry_response(response) or attempt == CDN_RETRIES:
                        break
                _check_upload(response, retried=attempt > 0)
            except BaseException:
                with contextlib.suppress(APIError):
                    await self.delete(file_id)
                raise
        finally:
            await asyncio.to_thread(opened.__exit__, None, None, None)
        return await self.get(file_id)

    async def download(self, file_id: str, *, to: Target, progress: ProgressCallback | None = None) -> File:
        """Download and decrypt a file into ``to``; return its metadata (see :meth:`Files.download`)."""
        ring = _ring(self._client.key_ring)
        project_id = await self._client.get_project_id()
        meta = await self.get(file_id)
        if meta.download_url is None:
            raise FileNotReadyError(f"file {file_id} is still being uploaded")
        # Creating the temp file, decrypting and writing run on worker threads, never on the event loop.
        target = await asyncio.to_thread(_Download, to)
        try:
            http = self._client._transport.http
            decryptor = FileDecryptor(ring, project_id=project_id, file_id=file_id)
            total = _plain_total(meta.size)
            done = 0
            try:
                async with http.stream("GET", str(meta.download_url), timeout=CDN_TIMEOUT) as response:
                    if response.is_error:
                        await response.aread()
                        _check(response)
                    batch: list[bytes] = []
                    batched = 0
                    async for chunk in response.aiter_raw():
                        batch.append(chunk)
                        batched += len(chunk)
                        if batched >= _UPLOAD_WRITE_BYTES:
                            done += await asyncio.to_thread(_feed, decryptor, b"".join(batch), target.handle)
                            batch.clear()
                            batched = 0
                            if progress is not None:
                                progress(done, total)
                    done += await asyncio.to_thread(_feed, decryptor, b"".join(batch), target.handle)
            except httpx.TransportError as exc:
                raise APIConnectionError(f"downloading from the CDN failed: {exc}") from exc
            done += await asyncio.to_thread(_finish, decryptor, target)
            if progress is not None:
                progress(done, total)
        except BaseException:
            await asyncio.to_thread(target.abandon)
            raise
        return meta


def _feed(decryptor: FileDecryptor, data: bytes, handle: IO[bytes]) -> int:
    """Decrypt what ``data`` completes and write it; return the plaintext bytes written."""
    plaintext = decryptor.feed(data)
    if plaintext:
        handle.write(plaintext)
    return len(plaintext)


def _finish(decryptor: FileDecryptor, target: _Download) -> int:
    """Open the last segment, write it and put the file in place; return its plaintext bytes."""
    last = decryptor.finish()
    target.handle.write(last)
    target.done()
    return len(last)


class _ProgressRelay:
    """Record progress where the work runs (a worker thread); report the latest where the caller runs."""

    def __init__(self, progress: ProgressCallback) -> None:
        self._progress = progress
        self._latest: tuple[int, int] | None = None

    def record(self, done: int, total: int) -> None:
        """Note the progress (called on the worker thread)."""
        self._latest = (done, total)

    def report(self) -> None:
        """Tell the caller's callback the latest progress noted (called on the event loop)."""
        if self._latest is not None:
            self._progress(*self._latest)


async def _off_loop(pieces: Iterator[bytes], after: Callable[[], None] | None) -> AsyncIterator[bytes]:
    """Yield the pieces of a blocking iterator, each one computed on a worker thread."""
    while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
        yield piece
        if after is not None:
            after()
    if after is not None:
        after()
