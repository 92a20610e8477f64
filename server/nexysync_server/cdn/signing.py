"""Signed CDN URLs: HMAC-SHA256 over method, path, expiry and size limit.

A URL is ``<cdn base><path>?expires=<unix seconds>&size=<bytes>&sig=<hex>``. The signature binds
the method, so an upload URL cannot download and a download URL cannot upload; the path, so it
names one file of one project; the expiry; and the size the upload must have.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urlencode

_SIG_RE = re.compile(r"^[0-9a-f]{64}$")
_INT_RE = re.compile(r"^[0-9]{1,15}$")
_SIG_PARAM_RE = re.compile(r"(?i)\b(sig=)[^&\s\"]*")


def redact(text: str) -> str:
    """Return ``text`` with the value of every ``sig=`` parameter replaced by ``REDACTED``."""
    return _SIG_PARAM_RE.sub(r"\1REDACTED", text)


class RedactSignatures(logging.Filter):
    """Blank the signatures of signed URLs in log records (uvicorn's access lines carry the query).

    A signed URL is a bearer credential until it expires: whoever reads the access log could
    otherwise download (or upload) the file.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's arguments (or message) in place; never drop it."""
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def redact_access_logs(loggers: tuple[str, ...] = ("uvicorn.access", "gunicorn.access")) -> None:
    """Install :class:`RedactSignatures` on the access loggers and on their handlers."""
    for name in loggers:
        logger = logging.getLogger(name)
        logger.addFilter(RedactSignatures())
        for handler in logger.handlers:
            handler.addFilter(RedactSignatures())


class InvalidUrl(Exception):
    """The URL was not signed by us for this request (tampered with, or for another method or path)."""


class ExpiredUrl(InvalidUrl):
    """The URL's signature is good but its time is up."""


def blob_path(project_id: str, file_id: str) -> str:
    """Return the CDN path of a file's content."""
    return f"/blobs/{project_id}/{file_id}"


def signature(secret: str, method: str, path: str, expires: int, size: int) -> str:
    """Return the hex HMAC-SHA256 of a URL's parts."""
    message = f"nexysync-cdn/v1\n{method.upper()}\n{path}\n{expires}\n{size}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class Signed(NamedTuple):
    """What a verified URL grants: its size limit and its expiry (unix seconds)."""

    size: int
    expires: int


@dataclass(frozen=True, slots=True)
class UrlSigner:
    """Make and check signed CDN URLs.

    Args:
        secret: The HMAC key, shared by the API and the CDN.
        base_url: The CDN's public base URL, e.g. ``https://cdn.example.com``.
        ttl_s: How long a URL stays valid.
    """

    secret: str
    base_url: str
    ttl_s: int

    def url(self, method: str, path: str, size: int, now: float | None = None) -> str:
        """Return a signed URL for ``method`` on ``path`` with size limit ``size``."""
        expires = int(now if now is not None else time.time()) + self.ttl_s
        sig = signature(self.secret, method, path, expires, size)
        query = urlencode({"expires": expires, "size": size, "sig": sig})
        return f"{self.base_url.rstrip('/')}{path}?{query}"

    def verify(self, method: str, path: str, query: Mapping[str, str], now: float | None = None) -> Signed:
        """Check a request's signature and expiry; return the signed size limit and expiry.

        Raises:
            InvalidUrl: a missing, malformed or wrong signature.
            ExpiredUrl: a good signature past its expiry.
        """
        expires, size, sig = query.get("expires", ""), query.get("size", ""), query.get("sig", "")
        if not (_INT_RE.match(expires) and _INT_RE.match(size) and _SIG_RE.match(sig)):
            raise InvalidUrl("the URL is not a signed CDN URL")
        expected = signature(self.secret, method, path, int(expires), int(size))
        if not hmac.compare_digest(expected, sig):
            raise InvalidUrl("the URL's signature does not match")
        if int(expires) <= (now if now is not None else time.time()):
            raise ExpiredUrl("the URL has expired")
        return Signed(int(size), int(expires))
