"""Pages of decrypted records: the records that failed to decrypt are set aside, not fatal."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, PrivateAttr

from nexysync._errors import DecryptionError

__all__ = ["DecryptedPage", "UndecryptableRecord"]


class UndecryptableRecord(DecryptionError):
    """A record of a list page that failed to decrypt: the page left it out and kept the others.

    A :class:`~nexysync.DecryptionError` (same message, ``record`` and ``field``), with the record
    as the server sent it.

    Attributes:
        record: ``<record kind>/<record id>`` of the envelope (``message/01J...``, ``kv/<key>``).
        field: The field whose envelope failed.
        raw: The record as received: routing fields (``id``, ``from``, ``to``, ``key``, ...) in
            plaintext, every encrypted field still an envelope.
    """

    def __init__(self, error: DecryptionError, raw: dict[str, Any]) -> None:
        message = str(error).removesuffix(f" (record {error.record}, field {error.field!r})")
        super().__init__(message, record=error.record, field=error.field)
        self.raw = raw
        self.__cause__ = error


class DecryptedPage(BaseModel):
    """The base of the plaintext twin of every list of encrypted records (``MessageList``, ``Thread``, ...).

    One record that fails to decrypt (made with a key not in the ring, or tampered with) does not
    fail the page: it is left out of ``data`` and listed in :attr:`undecryptable`, and a warning
    is logged on the ``nexysync`` logger. The server could always leave a record out, so this
    hides nothing it could not; a tampered record is still never returned as data.
    """

    _undecryptable: list[UndecryptableRecord] = PrivateAttr(default_factory=list)

    @property
    def undecryptable(self) -> list[UndecryptableRecord]:
        """The records of this page left out of ``data`` because they failed to decrypt."""
        return self._undecryptable
