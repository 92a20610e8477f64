"""Files are encrypted in 64 KiB AES-GCM segments: round trips, sizes, and every way to break a stream."""

from __future__ import annotations

import base64
import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nexysync.crypto import (
    FILE_HEADER_BYTES,
    FILE_SEGMENT_BYTES,
    DecryptionError,
    FileDecryptor,
    FileEncryptor,
    KeyRing,
    decode_key,
    decrypt_file_stream,
    encrypt_file_stream,
    encrypted_file_size,
    new_key,
    plaintext_file_size,
)

PROJECT = "01JD0000000000000000000000"
FILE = "01JD0000000000000000000001"
SEGMENT = FILE_SEGMENT_BYTES + 16
RING = KeyRing([new_key()])


def seal(content: bytes, ring: KeyRing = RING, file_id: str = FILE) -> bytes:
    return b"".join(encrypt_file_stream(ring, io.BytesIO(content).read, project_id=PROJECT, file_id=file_id))


def open_(ciphertext: bytes, ring: KeyRing = RING, file_id: str = FILE, chunk: int = 10_000) -> bytes:
    pieces = (ciphertext[i : i + chunk] for i in range(0, len(ciphertext), chunk))
    return b"".join(decrypt_file_stream(ring, pieces, project_id=PROJECT, file_id=file_id))


@pytest.mark.parametrize(
    "size",
    [0, 1, FILE_SEGMENT_BYTES - 1, FILE_SEGMENT_BYTES, FILE_SEGMENT_BYTES + 1, 3 * FILE_SEGMENT_BYTES, 200_000],
)
def test_round_trip_and_the_size_is_known_up_front(size: int) -> None:
    content = os.urandom(size)
    sealed = seal(content)
    assert len(sealed) == encrypted_file_size(size)
    assert plaintext_file_size(len(sealed)) == size
    assert open_(sealed) == content


def test_an_empty_file_is_one_empty_final_segment() -> None:
    assert len(seal(b"")) == FILE_HEADER_BYTES + 16
    assert open_(seal(b"")) == b""


def test_exact_multiples_of_a_segment_need_no_extra_segment() -> None:
    assert encrypted_file_size(2 * FILE_SEGMENT_BYTES) == FILE_HEADER_BYTES + 2 * SEGMENT


def test_the_plaintext_is_not_in_the_ciphertext() -> None:
    content = b"MARKER-PLAINTEXT " * 10_000
    assert b"MARKER-PLAINTEXT" not in seal(content)


@pytest.mark.parametrize("cut", [0, 5, FILE_HEADER_BYTES, FILE_HEADER_BYTES + SEGMENT, FILE_HEADER_BYTES + 2 * SEGMENT])
def test_a_truncated_stream_is_detected(cut: int) -> None:
    sealed = seal(os.urandom(3 * FILE_SEGMENT_BYTES + 10))
    with pytest.raises(DecryptionError):
        open_(sealed[:cut])


def test_a_stream_cut_inside_the_last_segment_is_detected() -> None:
    sealed = seal(os.urandom(FILE_SEGMENT_BYTES + 100))
    with pytest.raises(DecryptionError):
        open_(sealed[:-1])


def test_reordered_segments_are_detected() -> None:
    sealed = seal(os.urandom(3 * FILE_SEGMENT_BYTES + 10))
    header, body = sealed[:FILE_HEADER_BYTES], sealed[FILE_HEADER_BYTES:]
    first, second, rest = body[:SEGMENT], body[SEGMENT : 2 * SEGMENT], body[2 * SEGMENT :]
    with pytest.raises(DecryptionError):
        open_(header + second + first + rest)


def test_appended_bytes_are_detected() -> None:
    sealed = seal(os.urandom(FILE_SEGMENT_BYTES))
    with pytest.raises(DecryptionError):
        open_(sealed + seal(b"x")[FILE_HEADER_BYTES:])


def test_a_flipped_bit_is_detected() -> None:
    sealed = bytearray(seal(os.urandom(1000)))
    sealed[FILE_HEADER_BYTES + 3] ^= 1
    with pytest.raises(DecryptionError):
        open_(bytes(sealed))


def test_a_wrong_key_or_another_file_fails() -> None:
    sealed = seal(b"secret")
    with pytest.raises(DecryptionError, match="not in the key ring"):
        open_(sealed, ring=KeyRing([new_key()]))
    with pytest.raises(DecryptionError, match="authentication failed"):
        open_(sealed, file_id="01JD0000000000000000000002")


def test_a_rotated_ring_still_opens_old_files() -> None:
    old = new_key()
    sealed = seal(b"before rotation", ring=KeyRing([old]))
    assert open_(sealed, ring=KeyRing([old, new_key()])) == b"before rotation"


def test_not_a_file_header_is_refused() -> None:
    with pytest.raises(DecryptionError, match="bad header"):
        open_(b"NOPE" + b"0" * 40)


def test_the_encryptor_refuses_a_short_middle_segment_and_anything_after_the_last() -> None:
    encryptor = FileEncryptor(RING, project_id=PROJECT, file_id=FILE)
    with pytest.raises(ValueError):
        encryptor.seal(b"short", last=False)
    encryptor.seal(b"end", last=True)
    with pytest.raises(ValueError):
        encryptor.seal(b"more", last=True)


def test_impossible_ciphertext_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        plaintext_file_size(FILE_HEADER_BYTES + 5)
    with pytest.raises(ValueError):
        plaintext_file_size(FILE_HEADER_BYTES + SEGMENT + 3)
    with pytest.raises(ValueError):
        encrypted_file_size(-1)


def test_the_decryptor_works_byte_by_byte() -> None:
    content = os.urandom(FILE_SEGMENT_BYTES + 7)
    sealed = seal(content)
    decryptor = FileDecryptor(RING, project_id=PROJECT, file_id=FILE)
    out = bytearray()
    for i in range(0, len(sealed), 4099):
        out += decryptor.feed(sealed[i : i + 4099])
    out += decryptor.finish()
    assert bytes(out) == content


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(min_value=0, max_value=3 * FILE_SEGMENT_BYTES + 3),
    chunk=st.integers(min_value=1, max_value=2 * SEGMENT),
    cut=st.integers(min_value=1, max_value=3 * SEGMENT),
)
def test_any_content_round_trips_and_any_truncation_fails(size: int, chunk: int, cut: int) -> None:
    content = os.urandom(size)
    sealed = seal(content)
    assert len(sealed) == encrypted_file_size(size)
    assert open_(sealed, chunk=chunk) == content
    with pytest.raises(DecryptionError):
        open_(sealed[: max(0, len(sealed) - cut)], chunk=chunk)


# -- decode_key: the one decoder of project keys written as text ------------------------------


@pytest.mark.parametrize("around", ["{}", " {}", "{}\n", "\t{} \r\n"])
def test_decode_key_reads_standard_base64_of_32_bytes_and_ignores_surrounding_whitespace(around: str) -> None:
    key = bytes(range(200, 232))  # 0xfb.. gives "+" and "/" in standard base64
    encoded = base64.b64encode(key).decode()
    assert "+" in encoded or "/" in encoded
    assert decode_key(around.format(encoded)) == key


@pytest.mark.parametrize(
    "text",
    [
        "not base64!",
        base64.urlsafe_b64encode(bytes(range(200, 232))).decode(),  # base64url is not standard base64
        base64.b64encode(bytes(32)).decode().rstrip("="),  # missing padding
        "AAAA AAAA" + base64.b64encode(bytes(32)).decode()[8:],  # whitespace inside
        "é" * 44,
    ],
)
def test_decode_key_refuses_what_is_not_standard_base64(text: str) -> None:
    with pytest.raises(ValueError, match="not valid standard base64 of 32 bytes"):
        decode_key(text)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_decode_key_refuses_a_key_of_the_wrong_length(size: int) -> None:
    with pytest.raises(ValueError, match=f"must decode to 32 bytes, got {size}$"):
        decode_key(base64.b64encode(bytes(size)).decode())


def test_a_ring_from_base64_names_the_bad_key() -> None:
    good = base64.b64encode(bytes(32)).decode()
    assert KeyRing.from_base64([good, f" {good}\n"]).current_id == KeyRing([bytes(32)]).current_id
    with pytest.raises(ValueError, match=r"key 1 of the ring: .*got 3"):
        KeyRing.from_base64([good, "AAAA"])
