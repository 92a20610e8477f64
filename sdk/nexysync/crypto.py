"""End-to-end encryption of content fields: AES-256-GCM envelopes bound to their place and author.

An envelope is ``v2.<kid>.<base64url(nonce12 || ciphertext || tag16)>`` without ``=`` padding,
where ``kid`` is the first 8 lowercase hex characters of SHA-256 of the key. Its associated data

    nexysync/v2|<project_id>|<record kind>|<record id>|<field>|from=<slug>|to=<slug or *>|reply_to=<id or ->

binds it to one field of one record, to the agent that wrote it and, for a message, to its
routing (the names after the field are the record's, as its encryption plan lists them: refs bind
``from`` and ``to``, kv entries ``updated_by``, file names ``from``). Ciphertext moved to another
record or field, or a record whose sender or recipient was relabelled, fails to decrypt.

``v1`` envelopes (associated data ``nexysync/v1|<project_id>|<record kind>|<record id>|<field>``)
are still read; they leave the author and the routing unbound. Writers write v2.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence

import pybase64
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from nexysync._errors import DecryptionError

__all__ = [
    "DecryptionError",
    "FileDecryptor",
    "FileEncryptor",
    "KeyRing",
    "associated_data",
    "decode_key",
    "decrypt_file_stream",
    "encrypt_file_stream",
    "encrypted_file_size",
    "key_id",
    "new_key",
    "plaintext_file_size",
]

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
_KID_RE = re.compile(r"[0-9a-f]{8}")
_URLSAFE = b"-_"


def key_id(key: bytes) -> str:
    """Return the key id: the first 8 hex characters of SHA-256 of the key."""
    return hashlib.sha256(key).hexdigest()[:8]


def decode_key(text: str) -> bytes:
    """Decode a project key written as standard base64, as key files and ``NEXYSYNC_ENC_KEY`` hold it.

    Surrounding whitespace (a trailing newline, a pasted space) is ignored; anything else that
    is not the standard base64 alphabet is refused.

    Raises:
        ValueError: not valid standard base64, or not :data:`KEY_BYTES` bytes once decoded.
    """
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError as exc:  # binascii.Error, and non-ASCII text
        raise ValueError(f"a project key is not valid standard base64 of {KEY_BYTES} bytes") from exc
    if len(key) != KEY_BYTES:
        raise ValueError(f"a project key must decode to {KEY_BYTES} bytes, got {len(key)}")
    return key


#: What a v2 envelope binds after its field: ``(name, value)`` pairs, e.g. ``(("from", "alice"), ("to", "*"))``.
Binding = Sequence[tuple[str, str]]


def associated_data(project_id: str, kind: str, record_id: str, field: str, bound: Binding | None = None) -> bytes:
    """Return the associated data that binds an envelope to one field of one record (and, for v2, its author).

    Args:
        project_id: The record's project.
        kind: The record kind.
        record_id: The record's id.
        field: The field's name.
        bound: For a v2 envelope, the author and routing pairs; None for v1.
    """
    if bound is None:
        return f"nexysync/v1|{project_id}|{kind}|{record_id}|{field}".encode()
    tail = "".join(f"|{name}={value}" for name, value in bound)
    return f"nexysync/v2|{project_id}|{kind}|{record_id}|{field}{tail}".encode()


# pybase64 (SIMD) rather than the standard library: at 64 KiB the stdlib's base64url took five
# times as long as AES-GCM itself to encode and twelve times as long to decode.
def _b64url(data: bytes) -> str:
    return pybase64.b64encode_as_string(data, altchars=_URLSAFE).rstrip("=")


def _unb64url(text: str) -> bytes:
    """Decode unpadded base64url; raise ``binascii.Error`` on anything else (padding included)."""
    # pybase64 still takes the standard alphabet's + and / beside the URL-safe one (with a
    # DeprecationWarning), so those are refused here, as is padding.
    if "=" in text or "+" in text or "/" in text:
        raise binascii.Error("not unpadded base64url")
    return pybase64.b64decode(text + "=" * (-len(text) % 4), altchars=_URLSAFE, validate=True)


class KeyRing:
    """The project keys an agent holds: the newest encrypts, any of them decrypts.

    Args:
        keys: 32-byte keys, oldest first; the last one encrypts.

    Raises:
        ValueError: no key, or a key that is not 32 bytes.
    """

    def __init__(self, keys: Iterable[bytes]) -> None:
        ring = list(keys)
        if not ring:
            raise ValueError("a key ring needs at least one key")
        for key in ring:
            if len(key) != KEY_BYTES:
                raise ValueError(f"a project key is {KEY_BYTES} bytes, got {len(key)}")
        self._by_id = {key_id(key): AESGCM(key) for key in ring}
        self._current_id = key_id(ring[-1])
        self._first = ring[0]

    def derive(self, purpose: bytes) -> bytes:
        """Return a 32-byte secret for ``purpose``, derived (HKDF-SHA256) from the ring's first key.

        The first key, not the current one: every agent holding the project's ring gets the same
        secret whatever key it encrypts with now. It changes when the first key is retired.
        """
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"nexysync/" + purpose).derive(self._first)

    @classmethod
    def from_base64(cls, encoded: Iterable[str]) -> KeyRing:
        """Build a ring from standard-base64 keys (as in the key file), oldest first.

        Raises:
            ValueError: a key is not valid base64 of 32 bytes.
        """
        keys = []
        for index, text in enumerate(encoded):
            try:
                keys.append(decode_key(text))
            except ValueError as exc:
                raise ValueError(f"key {index} of the ring: {exc}") from exc
        return cls(keys)

    @property
    def current_id(self) -> str:
        """Id of the key that encrypts."""
        return self._current_id

    def encrypt(
        self,
        plaintext: bytes,
        *,
        project_id: str,
        kind: str,
        record_id: str,
        field: str,
        bound: Binding | None = None,
        nonce: bytes | None = None,
    ) -> str:
        """Encrypt one field value into an envelope: v2 bound to ``bound``, or v1 when it is None.

        Args:
            plaintext: The field's bytes.
            project_id: Project the record belongs to.
            kind: Record kind (``message``, ``kv``, ...).
            record_id: The record's id.
            field: The field's name.
            bound: The author and routing pairs a v2 envelope binds (the SDK always gives them);
                None writes a v1 envelope, which readers still accept.
            nonce: Only for known-answer tests; a fresh random nonce otherwise.
        """
        nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
        sealed = self._by_id[self._current_id].encrypt(
            nonce, plaintext, associated_data(project_id, kind, record_id, field, bound)
        )
        version = "v1" if bound is None else "v2"
        return f"{version}.{self._current_id}.{_b64url(nonce + sealed)}"

    def decrypt(
        self, envelope: str, *, project_id: str, kind: str, record_id: str, field: str, bound: Binding = ()
    ) -> bytes:
        """Decrypt an envelope made for exactly this project, record and field (and, if v2, author and routing).

        Args:
            envelope: A v1 or v2 envelope.
            project_id: The project the record belongs to.
            kind: The record kind.
            record_id: The record's id.
            field: The field's name.
            bound: The author and routing pairs the record shows; a v2 envelope must have been made
                for exactly these, a v1 envelope ignores them.

        Raises:
            DecryptionError: malformed, unknown key, tampered with, or made for another place or author.
        """
        record = f"{kind}/{record_id}"
        # Split, not one regular expression over the whole envelope: that took 200 µs at 64 KiB.
        version, _, rest = envelope.partition(".")
        kid, _, body = rest.partition(".")
        if version not in ("v1", "v2") or not _KID_RE.fullmatch(kid) or not body:
            raise DecryptionError("not a v1 or v2 envelope", record=record, field=field)
        aead = self._by_id.get(kid)
        if aead is None:
            raise DecryptionError(f"made with key {kid}, which is not in the key ring", record=record, field=field)
        try:
            raw = _unb64url(body)
        except (binascii.Error, ValueError) as exc:
            raise DecryptionError("not an envelope: the body is not base64url", record=record, field=field) from exc
        if len(raw) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionError("envelope too short", record=record, field=field)
        try:
            return aead.decrypt(
                raw[:NONCE_BYTES],
                raw[NONCE_BYTES:],
                associated_data(project_id, kind, record_id, field, None if version == "v1" else bound),
            )
        except InvalidTag as exc:
            raise DecryptionError(
                "authentication failed: tampered with, moved from another record or field, or relabelled",
                record=record,
                field=field,
            ) from exc


def new_key() -> bytes:
    """Make a new random 32-byte project key."""
    return os.urandom(KEY_BYTES)


# --- Files: a stream of AES-GCM segments ------------------------------------------------------
#
# A file's ciphertext is a header, then one AES-GCM segment per 64 KiB of plaintext (the last
# segment holds the rest, possibly nothing: an empty file is one empty final segment):
#
#   header   = b"NXF1" || kid (8 ASCII hex) || nonce prefix (7 random bytes)       19 bytes
#   segment  = AES-GCM(key, nonce, chunk, AD)                                      len(chunk) + 16
#   nonce    = prefix (7) || segment counter (4, big-endian) || last flag (1: 0x01 last, 0x00 not)
#   AD       = nexysync/v1|<project_id>|file|<file id>|content
#
# The counter in the nonce makes a reordered or repeated segment fail to authenticate; the last
# flag makes a stream cut at a segment boundary fail (its final segment was sealed as "not last"),
# and anything after the flagged segment fails too. The AD binds the stream to one file of one
# project. The ciphertext size follows from the plaintext size alone (:func:`encrypted_file_size`),
# so an upload can declare its length before it starts.

FILE_MAGIC = b"NXF1"
FILE_SEGMENT_BYTES = 64 * 1024
FILE_NONCE_PREFIX_BYTES = 7
FILE_HEADER_BYTES = len(FILE_MAGIC) + 8 + FILE_NONCE_PREFIX_BYTES
_FILE_SEGMENT_CIPHER_BYTES = FILE_SEGMENT_BYTES + TAG_BYTES
_MAX_FILE_SEGMENTS = 2**32


def _file_segments(plaintext_size: int) -> int:
    return max(1, -(-plaintext_size // FILE_SEGMENT_BYTES))


def encrypted_file_size(plaintext_size: int) -> int:
    """Return the size of a file's ciphertext stream for ``plaintext_size`` bytes of content.

    Raises:
        ValueError: a negative size.
    """
    if plaintext_size < 0:
        raise ValueError("a file size cannot be negative")
    return FILE_HEADER_BYTES + plaintext_size + TAG_BYTES * _file_segments(plaintext_size)


def plaintext_file_size(encrypted_size: int) -> int:
    """Return the content size of a ciphertext stream of ``encrypted_size`` bytes (undoes :func:`encrypted_file_size`).

    Raises:
        ValueError: no plaintext size gives this ciphertext size.
    """
    body = encrypted_size - FILE_HEADER_BYTES
    if body < TAG_BYTES:
        raise ValueError(f"{encrypted_size} bytes is too short for an encrypted file")
    full, rest = divmod(body, _FILE_SEGMENT_CIPHER_BYTES)
    if rest == 0:
        return full * FILE_SEGMENT_BYTES
    if rest < TAG_BYTES:
        raise ValueError(f"{encrypted_size} bytes is not the size of an encrypted file")
    return full * FILE_SEGMENT_BYTES + rest - TAG_BYTES


def _file_nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    if counter >= _MAX_FILE_SEGMENTS:
        raise ValueError("a file may have at most 2**32 segments")
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def _file_ad(project_id: str, file_id: str) -> bytes:
    return associated_data(project_id, "file", file_id, "content")


class FileEncryptor:
    """Seal a file's content segment by segment (see the format above).

    Args:
        ring: The key ring; its current key encrypts.
        project_id: The file's project.
        file_id: The file's id (bound into every segment).
        nonce_prefix: Only for known-answer tests; random otherwise.
    """

    def __init__(self, ring: KeyRing, *, project_id: str, file_id: str, nonce_prefix: bytes | None = None) -> None:
        prefix = os.urandom(FILE_NONCE_PREFIX_BYTES) if nonce_prefix is None else nonce_prefix
        if len(prefix) != FILE_NONCE_PREFIX_BYTES:
            raise ValueError(f"the nonce prefix is {FILE_NONCE_PREFIX_BYTES} bytes")
        self._aead = ring._by_id[ring.current_id]
        self._prefix = prefix
        self._ad = _file_ad(project_id, file_id)
        self._counter = 0
        self._finished = False
        self.header = FILE_MAGIC + ring.current_id.encode() + prefix

    def seal(self, chunk: bytes, *, last: bool) -> bytes:
        """Seal the next chunk: exactly 64 KiB unless ``last``; nothing may follow the last.

        Raises:
            ValueError: a chunk of the wrong size, or a chunk after the last.
        """
        if self._finished:
            raise ValueError("the last segment was already sealed")
        if len(chunk) > FILE_SEGMENT_BYTES or (not last and len(chunk) != FILE_SEGMENT_BYTES):
            raise ValueError(f"a segment holds {FILE_SEGMENT_BYTES} bytes (the last one at most that)")
        sealed = self._aead.encrypt(_file_nonce(self._prefix, self._counter, last), chunk, self._ad)
        self._counter += 1
        self._finished = last
        return sealed


def _read_full(read: Callable[[int], bytes], size: int) -> bytes:
    """Read ``size`` bytes, or fewer only at the end of the stream."""
    chunk = read(size)
    if len(chunk) == size or not chunk:
        return chunk
    parts = [chunk]
    got = len(chunk)
    while got < size:
        more = read(size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def encrypt_file_stream(
    ring: KeyRing, read: Callable[[int], bytes], *, project_id: str, file_id: str
) -> Iterator[bytes]:
    """Yield the ciphertext stream of the content that ``read`` gives: the header, then each segment.

    Holds two 64 KiB chunks at most, whatever the file's size.

    Args:
        ring: The key ring.
        read: A binary stream's ``read``.
        project_id: The file's project.
        file_id: The file's id.
    """
    encryptor = FileEncryptor(ring, project_id=project_id, file_id=file_id)
    yield encryptor.header
    chunk = _read_full(read, FILE_SEGMENT_BYTES)
    while True:
        following = _read_full(read, FILE_SEGMENT_BYTES) if len(chunk) == FILE_SEGMENT_BYTES else b""
        last = not following
        yield encryptor.seal(chunk, last=last)
        if last:
            return
        chunk = following


class FileDecryptor:
    """Open a file's ciphertext stream incrementally: :meth:`feed` the bytes as they come, then :meth:`finish`.

    Args:
        ring: The key ring; the header names the key.
        project_id: The file's project.
        file_id: The file's id.
    """

    def __init__(self, ring: KeyRing, *, project_id: str, file_id: str) -> None:
        self._ring = ring
        self._ad = _file_ad(project_id, file_id)
        self._record = f"file/{file_id}"
        self._buffer = bytearray()
        self._aead: AESGCM | None = None
        self._prefix = b""
        self._counter = 0
        self._finished = False

    def _error(self, message: str) -> DecryptionError:
        return DecryptionError(message, record=self._record, field="content")

    def _read_header(self) -> None:
        header = bytes(self._buffer[:FILE_HEADER_BYTES])
        del self._buffer[:FILE_HEADER_BYTES]
        kid = header[len(FILE_MAGIC) : len(FILE_MAGIC) + 8].decode("ascii", "replace")
        if header[: len(FILE_MAGIC)] != FILE_MAGIC or not _KID_RE.fullmatch(kid):
            raise self._error("not an encrypted NexySync file (bad header)")
        aead = self._ring._by_id.get(kid)
        if aead is None:
            raise self._error(f"made with key {kid}, which is not in the key ring")
        self._aead = aead
        self._prefix = header[len(FILE_MAGIC) + 8 :]

    def _open(self, segment: bytes | memoryview, last: bool) -> bytes:
        assert self._aead is not None
        try:
            plaintext = self._aead.decrypt(_file_nonce(self._prefix, self._counter, last), segment, self._ad)
        except InvalidTag as exc:
            raise self._error(
                "authentication failed: a segment was tampered with, reordered, cut off, or moved from another file"
            ) from exc
        self._counter += 1
        return plaintext

    def feed(self, data: bytes) -> bytes:
        """Take the next ciphertext bytes; return the plaintext they complete (possibly nothing).

        Raises:
            DecryptionError: a bad header, an unknown key, or a segment that fails to authenticate.
        """
        if self._finished:
            raise ValueError("the stream was already finished")
        self._buffer += data
        if self._aead is None:
            if len(self._buffer) < FILE_HEADER_BYTES:
                return b""
            self._read_header()
        out = []
        # A full segment is known not to be the last only once more bytes follow it. Segments
        # are opened in place and the buffer cut once per feed: cutting it per segment moved
        # the rest of a 1 MiB piece sixteen times and made decryption four times slower.
        start, end = 0, len(self._buffer)
        with memoryview(self._buffer) as view:
            while end - start > _FILE_SEGMENT_CIPHER_BYTES:
                out.append(self._open(view[start : start + _FILE_SEGMENT_CIPHER_BYTES], last=False))
                start += _FILE_SEGMENT_CIPHER_BYTES
        del self._buffer[:start]
        return b"".join(out)

    def finish(self) -> bytes:
        """Open the final segment; return its plaintext.

        Raises:
            DecryptionError: the stream was cut short (or its end is not the flagged last segment).
        """
        if self._finished:
            raise ValueError("the stream was already finished")
        self._finished = True
        if self._aead is None or len(self._buffer) < TAG_BYTES:
            raise self._error("the encrypted file is truncated")
        segment = bytes(self._buffer)
        self._buffer.clear()
        return self._open(segment, last=True)


def decrypt_file_stream(ring: KeyRing, chunks: Iterable[bytes], *, project_id: str, file_id: str) -> Iterator[bytes]:
    """Yield the plaintext of a ciphertext stream given in chunks of any size.

    Raises:
        DecryptionError: tampered with, truncated, reordered, for another file, or an unknown key.
    """
    decryptor = FileDecryptor(ring, project_id=project_id, file_id=file_id)
    for chunk in chunks:
        plaintext = decryptor.feed(chunk)
        if plaintext:
            yield plaintext
    yield decryptor.finish()
