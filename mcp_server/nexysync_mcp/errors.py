"""Turn every failure of a tool call into one clear line the AI can act on."""

from __future__ import annotations

from nexysync import (
    APIConnectionError,
    APIError,
    APIStatusError,
    AuthenticationError,
    ConflictError,
    DecryptionError,
    KeyFileError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)

__all__ = ["KEY_MISMATCH", "NO_KEY", "ToolFailure", "describe"]

#: Told whenever no client is configured: the two ways to configure one.
NO_KEY = "No NexySync key configured: call ns_auth with api_key and enc_key, or run `nexysync init`."
#: Told whenever content fails to decrypt: in practice the agents hold different project keys.
KEY_MISMATCH = (
    "Cannot decrypt {what}: it was encrypted with a key this agent does not hold; "
    "ask the user to check the project key (enc_key) of both agents."
)


class ToolFailure(Exception):
    """A tool call that cannot be served; its message is exactly what the AI is told."""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _detail(error: APIError) -> str:
    return error.detail or error.message


def describe(error: BaseException, *, api_url: str | None = None, recipient: str | None = None) -> str:
    """Return the one-line message an AI sees for a failure (never a stack trace).

    Args:
        error: What the call raised.
        api_url: The API root in use, named when it cannot be reached.
        recipient: The agent a message was sent to, named when it does not exist.
    """
    if isinstance(error, ToolFailure):
        message = str(error)
    elif isinstance(error, KeyFileError):
        message = f"The NexySync key is not usable ({error}); fix it, call ns_auth or run `nexysync init`."
    elif isinstance(error, DecryptionError):
        message = KEY_MISMATCH.format(what=f"record {error.record}")
    elif isinstance(error, AuthenticationError):
        message = (
            "The NexySync API refused this agent's API key (401); call ns_auth with a valid key or run `nexysync init`."
        )
    elif isinstance(error, NotFoundError):
        message = _not_found(error, recipient)
    elif isinstance(error, PermissionDeniedError) and error.code == "QUOTA_EXCEEDED":
        message = f"Quota reached (403 QUOTA_EXCEEDED): {_detail(error)}"
        if "storage" in message:
            message += " Deleting files or references no longer needed (ns_file, ns_ref action=delete) frees storage."
    elif isinstance(error, PermissionDeniedError):
        message = f"Not allowed (403): {_detail(error)}"
    elif isinstance(error, RateLimitError):
        message = f"Rate limit or quota reached (429): {_detail(error)}; try again later."
    elif isinstance(error, UnprocessableEntityError):
        message = f"Invalid request (422): {_detail(error)}"
    elif isinstance(error, ConflictError):
        message = f"Conflict (409): {_detail(error)}"
    elif isinstance(error, APIConnectionError):
        where = f" at {api_url}" if api_url else ""
        message = f"Cannot reach the NexySync API{where}: {error.message}; is the server running?"
    elif isinstance(error, APIStatusError) and error.status == 413:
        message = f"Too large (413 {error.code or ''}): {_detail(error)}"
    elif isinstance(error, APIStatusError):
        message = f"The NexySync API failed ({error.status} {error.code or ''}): {_detail(error)}"
    elif isinstance(error, APIError):
        message = f"The NexySync request failed: {error.message}"
    else:
        message = f"Internal error in nexysync-mcp ({type(error).__name__}): {error}"
    return _one_line(message)


def _not_found(error: NotFoundError, recipient: str | None) -> str:
    if error.code == "RECIPIENT_NOT_FOUND":
        who = f"'{recipient}'" if recipient else "the recipient"
        return f"Unknown agent {who}: no such agent in this project (ns_meta action=agents lists them)."
    if error.code == "REPLY_TO_NOT_FOUND":
        return "reply_to names no message this agent can see."
    if error.code == "MESSAGE_NOT_FOUND":
        return "No such message (wrong id, expired, or not addressed to this agent)."
    return f"Not found (404): {_detail(error)}"
