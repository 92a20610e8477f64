"""Database failures the store detects itself, where the database does not report them."""

from __future__ import annotations

from pymongo.errors import OperationFailure


class DatabaseDidNotWrite(OperationFailure):
    """The database answered a write without doing it.

    The embedded nx-27017 turns any failure inside ``findAndModify`` (a full disk, for one) into
    "no document", which for an upsert that returns the new document cannot be a real answer.
    """

    def __init__(self, what: str) -> None:
        super().__init__(f"the database answered {what} without writing it (is its disk full?)")
