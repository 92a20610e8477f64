"""Turn every failure the CLI can meet into one line for the user and an exit code."""

from __future__ import annotations

from dataclasses import dataclass

from nexysync import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    ConflictError,
    DecryptionError,
    KeyFileError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "CliError", "Failure", "describe"]

#: Exit code of a command that failed (bad password, unknown project, server unreachable, ...).
EXIT_ERROR = 1
#: Exit code after Ctrl-C, as shells report a SIGINT death.
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A problem the user can fix, reported as one line with exit code 1.

    Args:
        message: What went wrong and, where possible, what to do about it.
        code: A stable UPPER_SNAKE code for ``--json`` output.
    """

    def __init__(self, message: str, *, code: str = "CLI_ERROR") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Failure:
    """How a failure is shown.

    Attributes:
        message: The one-line message.
        code: A stable code for scripts (the server's problem code when there is one).
        status: The HTTP status, when the server answered.
        request_id: The server's request id, to quote in a bug report.
    """

    message: str
    code: str
    status: int | None = None
    request_id: str | None = None


def _detail(error: APIError) -> str:
    return error.detail or error.message


def _status_message(error: APIStatusError) -> str:
    detail = _detail(error)
    if isinstance(error, AuthenticationError):
        return f"authentication failed: {detail}"
    if isinstance(error, PermissionDeniedError):
        return f"not allowed: {detail}"
    if isinstance(error, NotFoundError):
        return f"not found: {detail}"
    if isinstance(error, ConflictError):
        return f"conflict: {detail}"
    if isinstance(error, UnprocessableEntityError):
        return f"invalid request: {detail}"
    if isinstance(error, RateLimitError):
        retry_after = error.response.headers.get("Retry-After")
        wait = f"; retry in {retry_after} s" if retry_after else ""
        return f"rate limit or quota reached: {detail}{wait}"
    if error.status is not None and error.status >= 500:
        return f"the server failed ({error.status}): {detail}"
    return f"request failed ({error.status}): {detail}"


def describe(error: BaseException, api_url: str | None = None) -> Failure:
    """Return the one-line message and code for an error the CLI caught.

    Args:
        error: The exception (a :class:`CliError`, an SDK error, or an ``OSError``).
        api_url: The API the command talked to, named in connection errors.
    """
    if isinstance(error, CliError):
        return Failure(error.message, error.code)
    if isinstance(error, APITimeoutError):
        where = f" at {api_url}" if api_url else ""
        return Failure(f"the NexySync API{where} did not answer in time", "TIMEOUT")
    if isinstance(error, APIConnectionError):
        where = f" at {api_url}" if api_url else ""
        return Failure(
            f"cannot reach the NexySync API{where}: is the server running (`nexysync-server dev`)?",
            "CONNECTION_ERROR",
        )
    if isinstance(error, APIStatusError):
        code = error.code or f"HTTP_{error.status}"
        return Failure(_status_message(error), code, error.status, error.request_id)
    if isinstance(error, APIError):
        return Failure(f"request failed: {_detail(error)}", error.code or "API_ERROR", error.status, error.request_id)
    if isinstance(error, KeyFileError):
        return Failure(f"key file: {error}", "KEY_FILE_ERROR")
    if isinstance(error, DecryptionError):
        return Failure(
            f"cannot decrypt: {error}; this machine may lack the project key (see `nexysync keys import`)",
            "DECRYPTION_ERROR",
        )
    if isinstance(error, OSError):
        name = f" {error.filename}" if error.filename else ""
        return Failure(f"file error{name}: {error.strerror or error}", "OS_ERROR")
    return Failure(str(error) or type(error).__name__, "ERROR")
