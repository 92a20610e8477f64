"""Problem details (RFC 9457): the one error format of the API.

Every error leaves as ``application/problem+json`` with a stable ``code``, whatever raised it:
our own :class:`Problem`, a service's domain error (:mod:`.services.errors`, mapped here and
nowhere else), one of Falcon's ``HTTPError`` subclasses (unknown route, wrong method) or an
unexpected exception.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import falcon
import falcon.asgi

from .metrics import DATABASE_ERRORS, LIMIT_REFUSALS
from .services.errors import (
    Busy,
    Conflict,
    Forbidden,
    LimitReached,
    NotFound,
    PreconditionFailed,
    QuotaExceeded,
    ServiceError,
    TooLarge,
    Unauthenticated,
)
from .store.failures import DatabaseError, database_trouble

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

_DEFAULT_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    411: "LENGTH_REQUIRED",
    412: "PRECONDITION_FAILED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_FAILED",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "UNAVAILABLE",
    507: "INSUFFICIENT_STORAGE",
}

#: The code of every 503 caused by the database: unreachable, or unable to write (disk full).
DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"


class Problem(falcon.HTTPError):
    """An API error with a stable machine-readable ``code``.

    Args:
        status: HTTP status code.
        code: Stable UPPER_SNAKE error code clients may branch on.
        detail: Human-readable explanation of this occurrence.
        errors: Field-level errors, each ``{"field": ..., "message": ...}``.
        headers: Extra response headers.
        members: More members of the body, named in the contract.
    """

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        members: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(status, description=detail, headers=headers)
        # Falcon's HTTPError has an int ``code`` of its own that it never reads; ours is the problem's.
        self.code = code  # type: ignore[assignment]
        self.errors = errors
        self.members = members or {}


#: How a 401 tells the client to authenticate.
_CHALLENGE = 'Bearer realm="nexysync"'


def unauthorized(detail: str, code: str = "UNAUTHORIZED") -> Problem:
    """Return a 401 problem that tells the client to authenticate with a bearer token."""
    return Problem(401, code, detail, headers={"WWW-Authenticate": _CHALLENGE})


def not_found(what: str, code: str = "NOT_FOUND") -> Problem:
    """Return a 404 problem for a resource the caller cannot see (or that does not exist)."""
    return Problem(404, code, f"{what} was not found.")


#: The status of each kind of domain error; the first class an error is an instance of decides.
_SERVICE_STATUS: tuple[tuple[type[ServiceError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (Forbidden, 403),
    (PreconditionFailed, 412),
    (LimitReached, 429),
    (Unauthenticated, 401),
    (TooLarge, 413),
    (Busy, 503),
)


def problem_from(error: ServiceError) -> Problem:
    """Return the problem a domain error answers (a refusal of a limit says when to retry)."""
    status = next((status for kind, status in _SERVICE_STATUS if isinstance(error, kind)), 400)
    headers = None
    if isinstance(error, Unauthenticated):
        headers = {"WWW-Authenticate": _CHALLENGE}
    elif isinstance(error, Busy):
        headers = {"Retry-After": "1"}
    elif isinstance(error, LimitReached):
        headers = {
            "Retry-After": str(error.reset_s),
            "RateLimit-Limit": str(error.limit),
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(error.reset_s),
        }
    return Problem(status, error.code, error.detail, headers=headers, members=error.members)


async def handle_service_error(
    req: falcon.asgi.Request, resp: falcon.asgi.Response, ex: ServiceError, params: dict[str, Any]
) -> None:
    """Answer a domain error raised anywhere in a request (middleware included) as its problem."""
    if isinstance(ex, LimitReached | QuotaExceeded):
        LIMIT_REFUSALS.labels(ex.limit_name).inc()
    respond(req, resp, problem_from(ex))


def respond(req: falcon.asgi.Request, resp: falcon.asgi.Response, error: Problem) -> None:
    """Write ``error`` as the response: its status, its headers and its problem+json body."""
    resp.status = error.status_code
    if error.headers:
        resp.set_headers(error.headers)
    serialize_problem(req, resp, error)


def database_unavailable(reason: str, retry_after_s: int) -> Problem:
    """Return the 503 for a database that cannot serve now; the client should retry after ``retry_after_s``."""
    return Problem(
        503,
        DATABASE_UNAVAILABLE,
        f"{reason}; retry after {retry_after_s} s.",
        headers={"Retry-After": str(retry_after_s)},
    )


def database_error_handler(retry_after_s: int) -> Callable[..., Awaitable[None]]:
    """Return an error handler that answers 503 for a database outage and 500 for other database errors."""

    async def handle(
        req: falcon.asgi.Request, resp: falcon.asgi.Response, ex: DatabaseError, params: dict[str, Any]
    ) -> None:
        DATABASE_ERRORS.labels("request").inc()
        reason = database_trouble(ex)
        if reason is None:
            await handle_unexpected(req, resp, ex, params)
            return
        log.warning("%s %s: database unavailable (%s)", req.method, req.path, ex)
        respond(req, resp, database_unavailable(reason, retry_after_s))

    return handle


def problem_body(req: falcon.asgi.Request, error: falcon.HTTPError) -> dict[str, Any]:
    """Build the problem+json document for ``error``."""
    status = error.status_code
    code = getattr(error, "code", None) or _DEFAULT_CODES.get(status, "ERROR" if status < 500 else "INTERNAL_ERROR")
    title = falcon.code_to_http_status(status)[4:]
    body: dict[str, Any] = {
        "type": f"https://nexysync.dev/problems/{code.lower().replace('_', '-')}",
        "title": error.title if error.title and not error.title[:3].isdigit() else title,
        "status": status,
        "detail": error.description or title,
        "code": code,
        "request_id": getattr(req.context, "request_id", ""),
    }
    extra = getattr(error, "errors", None)
    if extra:
        body["errors"] = extra
    body.update(getattr(error, "members", None) or {})
    return body


def serialize_problem(req: falcon.asgi.Request, resp: falcon.asgi.Response, error: falcon.HTTPError) -> None:
    """Write ``error`` as problem+json, whatever the client's Accept header says.

    Falcon's default serializer answers ``application/json`` unless the client asks for
    problem+json; the contract promises problem+json always.
    """
    body = problem_body(req, error)
    req.context.problem_code = body["code"]  # for the metrics (see metrics.HttpMetrics)
    resp.content_type = PROBLEM_JSON
    resp.text = json.dumps(body)


async def handle_unexpected(
    req: falcon.asgi.Request, resp: falcon.asgi.Response, ex: Exception, params: dict[str, Any]
) -> None:
    """Log an unexpected exception and answer 500 problem+json without leaking internals."""
    log.exception(
        "unhandled error on %s %s (request %s)", req.method, req.path, getattr(req.context, "request_id", "-")
    )
    respond(req, resp, Problem(500, "INTERNAL_ERROR", "The server failed to handle this request; it has been logged."))
