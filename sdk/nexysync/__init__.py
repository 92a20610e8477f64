"""NexySync SDK: clients for the end-to-end encrypted message bus for AI coding agents.

Example:
    >>> import nexysync  # doctest: +SKIP
    >>> with nexysync.Client.from_key_file() as client:  # doctest: +SKIP
    ...     client.messages.send(to="reviewer", topic="PR #4", payload="Please review.")
    ...     for message in client.messages.list(status="unread"):
    ...         print(message.from_, message.topic, message.payload)
"""

__version__ = "0.1.0"

import importlib

# ``typing`` is imported only by type checkers (they treat TYPE_CHECKING as true): at run time it
# would cost every hook run 3 ms (hooks import nexysync.keyfile), and only annotations use it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from nexysync._client import AsyncClient, Client, RawResponse
    from nexysync._errors import (
        APIConnectionError,
        APIError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        ConflictError,
        DecryptionError,
        FileNotReadyError,
        InternalServerError,
        KeyFileError,
        NexySyncError,
        NotFoundError,
        PermissionDeniedError,
        PreconditionFailedError,
        RateLimitError,
        UnprocessableEntityError,
    )
    from nexysync._generated._clients import AsyncClientWithRawResponse, ClientWithRawResponse
    from nexysync._operations import decrypt_record
    from nexysync._pages import DecryptedPage, UndecryptableRecord
    from nexysync._pagination import AsyncPager, SyncPager
    from nexysync._stream import AsyncStream, AsyncStreamEvent, Stream, StreamEvent
    from nexysync._ulid import new_ulid
    from nexysync.crypto import KeyRing
    from nexysync.keyfile import KeyFile, find_key_file, load_key_file
    from nexysync.types import Thread

# Each public name, and the module that defines it: imported on first use (PEP 562), so that
# ``import nexysync.keyfile`` (what a hook needs) does not load the clients, httpx and pydantic.
_LAZY: dict[str, str] = {
    "AsyncClient": "nexysync._client",
    "Client": "nexysync._client",
    "RawResponse": "nexysync._client",
    "KeyFile": "nexysync.keyfile",
    "find_key_file": "nexysync.keyfile",
    "load_key_file": "nexysync.keyfile",
    "APIConnectionError": "nexysync._errors",
    "APIError": "nexysync._errors",
    "APIStatusError": "nexysync._errors",
    "APITimeoutError": "nexysync._errors",
    "AuthenticationError": "nexysync._errors",
    "BadRequestError": "nexysync._errors",
    "ConflictError": "nexysync._errors",
    "DecryptionError": "nexysync._errors",
    "FileNotReadyError": "nexysync._errors",
    "InternalServerError": "nexysync._errors",
    "KeyFileError": "nexysync._errors",
    "NexySyncError": "nexysync._errors",
    "NotFoundError": "nexysync._errors",
    "PermissionDeniedError": "nexysync._errors",
    "PreconditionFailedError": "nexysync._errors",
    "RateLimitError": "nexysync._errors",
    "UnprocessableEntityError": "nexysync._errors",
    "AsyncClientWithRawResponse": "nexysync._generated._clients",
    "ClientWithRawResponse": "nexysync._generated._clients",
    "decrypt_record": "nexysync._operations",
    "DecryptedPage": "nexysync._pages",
    "UndecryptableRecord": "nexysync._pages",
    "AsyncPager": "nexysync._pagination",
    "SyncPager": "nexysync._pagination",
    "AsyncStream": "nexysync._stream",
    "AsyncStreamEvent": "nexysync._stream",
    "Stream": "nexysync._stream",
    "StreamEvent": "nexysync._stream",
    "new_ulid": "nexysync._ulid",
    "KeyRing": "nexysync.crypto",
    "DecryptedThread": "nexysync.types",
}


def __getattr__(name: str) -> "Any":
    """Import a public name's module the first time the name is used."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nexysync' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), "Thread" if name == "DecryptedThread" else name)
    globals()[name] = value  # later uses are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


#: ``DecryptedThread``: what ``messages.thread()`` answers (the thread's messages decrypted, with
#: ``undecryptable``) is ``nexysync.types.Thread``.
if TYPE_CHECKING:
    DecryptedThread = Thread

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncClient",
    "AsyncClientWithRawResponse",
    "AsyncPager",
    "AsyncStream",
    "AsyncStreamEvent",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ClientWithRawResponse",
    "ConflictError",
    "DecryptedPage",
    "DecryptedThread",
    "DecryptionError",
    "FileNotReadyError",
    "InternalServerError",
    "KeyFile",
    "KeyFileError",
    "KeyRing",
    "NexySyncError",
    "NotFoundError",
    "PermissionDeniedError",
    "PreconditionFailedError",
    "RateLimitError",
    "RawResponse",
    "Stream",
    "StreamEvent",
    "SyncPager",
    "UndecryptableRecord",
    "UnprocessableEntityError",
    "__version__",
    "decrypt_record",
    "find_key_file",
    "load_key_file",
    "new_ulid",
]
