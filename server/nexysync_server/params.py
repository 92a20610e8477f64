"""Strict readers of query and path parameters.

Strict on purpose: ``?pinned=1`` or ``?limit=5.0`` are refused with 400 rather than guessed at,
so a client's mistake surfaces at once instead of silently filtering the wrong way.
"""

from __future__ import annotations

import re
from datetime import datetime

import falcon.asgi

from .errors import Problem, not_found
from .ids import ULID_RE, parse_rfc3339

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
_INT_RE = re.compile(r"^-?[0-9]{1,9}$")
SEQ_RE = re.compile(r"^[0-9]{1,15}$")


def _invalid(name: str, expected: str) -> Problem:
    return Problem(400, "INVALID_PARAMETER", f"Query parameter '{name}' must be {expected}.")


def limit(req: falcon.asgi.Request, default: int = 50, maximum: int = 200) -> int:
    """Read ``limit``: an integer from 1 to ``maximum``."""
    raw = req.get_param("limit")
    if raw is None:
        return default
    if not _INT_RE.match(raw) or not 1 <= int(raw) <= maximum:
        raise _invalid("limit", f"an integer from 1 to {maximum}")
    return int(raw)


def integer(req: falcon.asgi.Request, name: str, default: int, *, minimum: int, maximum: int) -> int:
    """Read an integer parameter from ``minimum`` to ``maximum``."""
    raw = req.get_param(name)
    if raw is None:
        return default
    if not _INT_RE.match(raw) or not minimum <= int(raw) <= maximum:
        raise _invalid(name, f"an integer from {minimum} to {maximum}")
    return int(raw)


def matching(req: falcon.asgi.Request, name: str, pattern: re.Pattern[str], expected: str) -> str | None:
    """Read a string parameter that must match ``pattern`` (``expected`` says what it must be)."""
    raw = req.get_param(name)
    if raw is not None and not pattern.match(raw):
        raise _invalid(name, expected)
    return raw


def cursor(req: falcon.asgi.Request, pattern: re.Pattern[str] = ULID_RE) -> str | None:
    """Read ``cursor``: the ``next_cursor`` of a previous page (a ULID unless ``pattern`` says else)."""
    return matching(req, "cursor", pattern, "the next_cursor of a previous page")


def seq(req: falcon.asgi.Request, name: str) -> int | None:
    """Read an event ``seq``: up to 15 digits."""
    raw = req.get_param(name)
    if raw is not None and not SEQ_RE.match(raw):
        raise _invalid(name, "the seq of an event (up to 15 digits)")
    return int(raw) if raw is not None else None


def boolean(req: falcon.asgi.Request, name: str) -> bool | None:
    """Read a boolean that must be spelled ``true`` or ``false``."""
    raw = req.get_param(name)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise _invalid(name, "true or false")
    return raw == "true"


def choice(req: falcon.asgi.Request, name: str, allowed: tuple[str, ...]) -> str | None:
    """Read a parameter that must be one of ``allowed``."""
    raw = req.get_param(name)
    if raw is not None and raw not in allowed:
        raise _invalid(name, "one of " + ", ".join(allowed))
    return raw


def slug(req: falcon.asgi.Request, name: str) -> str | None:
    """Read an agent slug."""
    return matching(req, name, SLUG_RE, "an agent slug")


def timestamp(req: falcon.asgi.Request, name: str) -> datetime | None:
    """Read an RFC 3339 date-time."""
    raw = req.get_param(name)
    if raw is None:
        return None
    try:
        return parse_rfc3339(raw)
    except ValueError as exc:
        raise _invalid(name, "an RFC 3339 date-time such as 2026-01-02T03:04:05Z") from exc


def path_id(value: str, what: str) -> str:
    """Check a ULID path segment; a malformed one names nothing, so it is 404 like a missing one."""
    if not ULID_RE.match(value):
        raise not_found(what)
    return value
