"""Signed CDN URLs (HMAC-SHA256 over method, path, expiry and size) and the Range header reader."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from nexysync_server.cdn.app import UploadTimes
from nexysync_server.cdn.ranges import Unsatisfiable, parse_range
from nexysync_server.cdn.signing import ExpiredUrl, InvalidUrl, UrlSigner, blob_path, signature

SIGNER = UrlSigner(secret="s3cret", base_url="https://cdn.example.test/", ttl_s=900)
PATH = blob_path("01JD0000000000000000000000", "01JD0000000000000000000001")
NOW = 1_800_000_000.0


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def test_a_url_verifies_for_its_method_and_path_and_gives_its_size() -> None:
    url = SIGNER.url("PUT", PATH, 1234, now=NOW)
    assert url.startswith(f"https://cdn.example.test{PATH}?")
    query = query_of(url)
    assert query["expires"] == str(int(NOW) + 900)
    assert SIGNER.verify("PUT", PATH, query, now=NOW + 899) == (1234, int(NOW) + 900)


def test_it_expires() -> None:
    query = query_of(SIGNER.url("GET", PATH, 10, now=NOW))
    with pytest.raises(ExpiredUrl):
        SIGNER.verify("GET", PATH, query, now=NOW + 900)


@pytest.mark.parametrize(
    "change",
    [
        {"size": "1235"},
        {"expires": str(int(NOW) + 10_000)},
        {"sig": "0" * 64},
        {"sig": "not hex"},
        {"size": "-1"},
        {"expires": ""},
    ],
)
def test_any_tampering_is_refused(change: dict[str, str]) -> None:
    query = {**query_of(SIGNER.url("PUT", PATH, 1234, now=NOW)), **change}
    with pytest.raises(InvalidUrl) as caught:
        SIGNER.verify("PUT", PATH, query, now=NOW)
    assert not isinstance(caught.value, ExpiredUrl)


def test_the_signature_binds_method_path_and_secret() -> None:
    query = query_of(SIGNER.url("PUT", PATH, 1234, now=NOW))
    with pytest.raises(InvalidUrl):
        SIGNER.verify("GET", PATH, query, now=NOW)
    with pytest.raises(InvalidUrl):
        SIGNER.verify("PUT", PATH[:-1] + "2", query, now=NOW)
    with pytest.raises(InvalidUrl):
        UrlSigner("other", SIGNER.base_url, 900).verify("PUT", PATH, query, now=NOW)
    with pytest.raises(InvalidUrl):
        SIGNER.verify("PUT", PATH, {}, now=NOW)


def test_the_signature_is_hmac_sha256_hex() -> None:
    sig = signature("k", "get", "/p", 1, 2)
    assert len(sig) == 64 and sig == signature("k", "GET", "/p", 1, 2)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-99", (0, 99)),
        ("bytes=10-", (10, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=990-5000", (990, 999)),
        ("bytes=5-2", None),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=-", None),
    ],
)
def test_ranges(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=1000-", 1000), ("bytes=1000-2000", 1000), ("bytes=-0", 1000)])
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, size)


def test_access_log_records_lose_the_signature_of_signed_urls() -> None:
    import logging

    from nexysync_server.cdn.signing import RedactSignatures

    sig = "ab" * 32
    # uvicorn's access record: client, method, path with query, HTTP version, status.
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', None, None)
    record.args = ("127.0.0.1:5", "PUT", f"/blobs/P/F?expires=1&size=2&sig={sig}", "1.1", 201)
    assert RedactSignatures().filter(record)
    line = record.getMessage()
    assert sig not in line and "sig=REDACTED" in line and "expires=1&size=2" in line


def test_an_upload_may_take_its_size_at_the_slowest_rate_but_not_past_the_urls_expiry_plus_grace() -> None:
    times = UploadTimes(body_timeout_s=30, min_bytes_per_s=1000, grace_s=60)
    # 30 s for the first byte plus 10,000 bytes at 1,000 bytes/s.
    assert times.allowed_s(10_000, expires=int(NOW) + 900, now=NOW) == 40
    # A 25 MB file at 1,000 bytes/s would take hours: the URL's expiry plus the grace ends it.
    assert times.allowed_s(25_000_000, expires=int(NOW) + 900, now=NOW) == 960
    assert times.allowed_s(25_000_000, expires=int(NOW) + 900, now=NOW + 800) == 160
