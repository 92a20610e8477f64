"""Domain errors: the refusals a caller can act on, each with a stable code and a sentence.

They say nothing of HTTP; :func:`nexysync_server.errors.problem_from` gives each its status.
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """A refusal with a stable UPPER_SNAKE ``code`` and a human ``detail``.

    Args:
        code: What clients branch on.
        detail: What happened, in a sentence.
        members: More members of the problem, named in the contract (``conflicts``, say).
    """

    def __init__(self, code: str, detail: str, members: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.members = members or {}


class NotFound(ServiceError):
    """The thing does not exist, or the caller may not see it (the two are never told apart).

    Args:
        what: The thing, as the sentence names it (``"Message"``, ``"Agent 'x'"``).
        code: The code.
    """

    def __init__(self, what: str, code: str = "NOT_FOUND") -> None:
        super().__init__(code, f"{what} was not found.")


class Unauthenticated(ServiceError):
    """The credentials are wrong, spent or gone: the caller must sign in (again)."""


class Conflict(ServiceError):
    """The request contradicts what is stored (an id reused with another body, say)."""


class Busy(ServiceError):
    """The server cannot do this now; the same request may succeed in a moment (answered 503)."""


class Forbidden(ServiceError):
    """The caller may see the thing but not do this to it."""


class QuotaExceeded(Forbidden):
    """A quota is spent.

    Args:
        detail: Which quota, and what to do.
        limit_name: The quota's name for the metrics (``messages_per_day``, ``agents``, ...).
    """

    def __init__(self, detail: str, limit_name: str) -> None:
        super().__init__("QUOTA_EXCEEDED", detail)
        self.limit_name = limit_name


class TooLarge(ServiceError):
    """What the caller sends is larger than allowed (a file, say): sending it again will not help."""


class PreconditionFailed(ServiceError):
    """A condition the caller set (a version to match) does not hold."""


class LimitReached(ServiceError):
    """A rate limit is spent until its window ends.

    Args:
        code: The code.
        detail: Which limit, in a sentence that already says when to retry.
        limit: The number the window allows.
        reset_s: Seconds until the window ends.
        limit_name: The limit's name for the metrics (``agent_requests``, ``auth_ip``, ...).
    """

    def __init__(self, code: str, detail: str, limit: int, reset_s: int, limit_name: str) -> None:
        super().__init__(code, detail)
        self.limit = limit
        self.reset_s = reset_s
        self.limit_name = limit_name
