"""NexySync SDK: clients for the end-to-end encrypted message bus for AI coding agents.

Example:
    >>> import nexysync  # doctest: +SKIP
    >>> with nexysync.Client.from_key_file() as client:  # doctest: +SKIP
    ...     client.messages.send(to="reviewer", topic="PR #4", payload="Please review.")
    ...     for message in client.messages.list(status="unread"):
    ...         print(message.from_, message.topic, message.payload)
"""

__version__ = "0.1.0"

from nexysync._client import AsyncClient, Client, RawResponse
from nexysync._config import KeyFile, find_key_file, load_key_file
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
from nexysync.types import Thread

#: What ``messages.thread()`` answers: the thread's messages decrypted, with ``undecryptable``.
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
