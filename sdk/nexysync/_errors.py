"""Typed errors of the SDK, built from the server's ``application/problem+json`` answers."""

from __future__ import annotations

# ``typing`` is imported only by type checkers (they treat TYPE_CHECKING as true): at run time it
# would cost every hook run 3 ms, and its names are used in annotations alone.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    import httpx

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "DecryptionError",
    "FileNotReadyError",
    "InternalServerError",
    "KeyFileError",
    "NexySyncError",
    "NotFoundError",
    "PermissionDeniedError",
    "PreconditionFailedError",
    "RateLimitError",
    "UnprocessableEntityError",
]


class NexySyncError(Exception):
    """Base class of every error the SDK raises on purpose."""


class KeyFileError(NexySyncError):
    """The key file or the environment does not configure a usable client."""


class DecryptionError(NexySyncError):
    """An envelope could not be decrypted: tampered with, moved, relabelled, or made with a key not in the ring.

    Also raised for a value that is not an envelope where the encryption plan says encrypted: it
    is never passed through as if it were authenticated.

    Attributes:
        record: ``<record kind>/<record id>`` of the envelope.
        field: The field the envelope was read from.
    """

    def __init__(self, message: str, *, record: str, field: str) -> None:
        super().__init__(f"{message} (record {record}, field {field!r})")
        self.record = record
        self.field = field


class FileNotReadyError(NexySyncError):
    """The file's content has not been uploaded (yet): it is still ``pending``."""


class APIError(NexySyncError):
    """A request to the API failed.

    Attributes:
        status: The HTTP status, or None when no response arrived.
        code: The problem's stable ``UPPER_SNAKE`` code, when the server sent one.
        detail: The problem's human-readable detail.
        request_id: The server's ``X-Request-Id`` for the request, when known.
        body: The parsed response body (a dict for problem+json), or None.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        detail: str | None = None,
        request_id: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.detail = detail
        self.request_id = request_id
        self.body = body


class APIConnectionError(APIError):
    """No response arrived: the connection failed or was cut."""


class APITimeoutError(APIConnectionError):
    """The request timed out."""


class APIStatusError(APIError):
    """The server answered with a status that is not a success for the operation."""

    def __init__(self, message: str, *, response: httpx.Response, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.response = response


class BadRequestError(APIStatusError):
    """400: the request is malformed (bad JSON, a bad parameter)."""


class AuthenticationError(APIStatusError):
    """401: the API key or token is missing, wrong or expired."""


class PermissionDeniedError(APIStatusError):
    """403: the caller may not do this."""


class NotFoundError(APIStatusError):
    """404: no such resource (or not visible to the caller)."""


class ConflictError(APIStatusError):
    """409: the request conflicts with the resource's current state."""


class PreconditionFailedError(APIStatusError):
    """412: a conditional write (``If-Match``, ``If-None-Match``) found the resource changed or present."""


class UnprocessableEntityError(APIStatusError):
    """422: the request is well-formed but invalid (plaintext in an encrypted field, a bad value)."""


class RateLimitError(APIStatusError):
    """429: a rate limit or quota was hit."""


class InternalServerError(APIStatusError):
    """5xx: the server failed."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    412: PreconditionFailedError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def error_from_response(response: httpx.Response) -> APIStatusError:
    """Build the typed error for a failed response from its problem+json body."""
    body: Any
    try:
        body = response.json()
    except ValueError:
        body = response.text or None
    problem = body if isinstance(body, dict) else {}
    code = problem.get("code") if isinstance(problem.get("code"), str) else None
    detail = problem.get("detail") if isinstance(problem.get("detail"), str) else None
    title = problem.get("title") if isinstance(problem.get("title"), str) else None
    request_id = response.headers.get("X-Request-Id") or problem.get("request_id")
    status = response.status_code
    cls = _BY_STATUS.get(status, InternalServerError if status >= 500 else APIStatusError)
    summary = detail or title or response.reason_phrase or "request failed"
    message = f"{status} {code or ''}: {summary}".replace("  ", " ")
    if request_id:
        message += f" (request id {request_id})"
    return cls(
        message,
        response=response,
        status=status,
        code=code,
        detail=detail,
        request_id=request_id if isinstance(request_id, str) else None,
        body=body,
    )
