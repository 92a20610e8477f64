"""``RawResponse``: the unparsed answer to one operation call (``call_raw``, ``with_raw_response``)."""

from __future__ import annotations

from typing import Any

import httpx

from nexysync._operations import Cipher, PreparedCall, parse_response

__all__ = ["RawResponse"]

_UNPARSED = object()


class RawResponse:
    """The unparsed answer to one operation call.

    Attributes:
        http_response: The ``httpx.Response`` (its body already read).
        call: The prepared call it answers (operation, path, encrypted body).
    """

    __slots__ = ("_cipher", "_parsed", "call", "http_response")

    def __init__(self, http_response: httpx.Response, call: PreparedCall, cipher: Cipher | None) -> None:
        self.http_response = http_response
        self.call = call
        self._cipher = cipher
        self._parsed: Any = _UNPARSED

    @property
    def status_code(self) -> int:
        """The HTTP status."""
        return self.http_response.status_code

    @property
    def headers(self) -> httpx.Headers:
        """The response headers (``ETag``, ``Location``, ``RateLimit``, ...)."""
        return self.http_response.headers

    @property
    def request_id(self) -> str | None:
        """The server's ``X-Request-Id``."""
        request_id: str | None = self.http_response.headers.get("X-Request-Id")
        return request_id

    def parse(self) -> Any:
        """Return the body parsed into its model and decrypted, as ``call`` would (parsed once, then kept).

        Raises:
            APIStatusError: (a subclass of it) when the status is not a success of the operation.
            DecryptionError: an envelope failed to decrypt.
        """
        if self._parsed is _UNPARSED:
            self._parsed = parse_response(self.call, self.http_response, self._cipher)
        return self._parsed
