"""Who sent a request: the typed view of what :class:`.middleware.Authentication` resolved.

Falcon's ``req.context`` is an untyped bag; resources read the caller through these functions
so that the agent is an :class:`~.store.documents.AgentDoc` rather than ``Any``.
"""

from __future__ import annotations

import falcon.asgi

from .security import AccessToken
from .store.documents import AgentDoc, DeviceDoc


def set_agent(req: falcon.asgi.Request, agent: AgentDoc) -> None:
    """Record the agent an API key belongs to (the authentication middleware calls it)."""
    req.context.agent = agent


def set_user(req: falcon.asgi.Request, token: AccessToken) -> None:
    """Record the access token a user signed the request with (the authentication middleware calls it)."""
    req.context.access = token
    req.context.user_id = token.user_id


def set_device(req: falcon.asgi.Request, device: DeviceDoc) -> None:
    """Record the device a device token belongs to (the authentication middleware calls it)."""
    req.context.device = device


def device(req: falcon.asgi.Request) -> DeviceDoc:
    """Return the calling device of a resource with ``auth = "device"``."""
    found: DeviceDoc = req.context.device
    return found


def agent(req: falcon.asgi.Request) -> AgentDoc:
    """Return the calling agent of a resource with ``auth = "agent"``."""
    found: AgentDoc = req.context.agent
    return found


def user_id(req: falcon.asgi.Request) -> str:
    """Return the calling user of a resource with ``auth = "human"``."""
    found: str = req.context.user_id
    return found


def access(req: falcon.asgi.Request) -> AccessToken:
    """Return the access token of a resource with ``auth = "human"`` (its session, when it ends)."""
    found: AccessToken = req.context.access
    return found


def agent_or_none(req: falcon.asgi.Request) -> AgentDoc | None:
    """Return the calling agent, or ``None`` when the request was not made with an API key."""
    found: AgentDoc | None = getattr(req.context, "agent", None)
    return found


def user_id_or_none(req: falcon.asgi.Request) -> str | None:
    """Return the calling user, or ``None`` when the request was not made with an access token."""
    found: str | None = getattr(req.context, "user_id", None)
    return found
