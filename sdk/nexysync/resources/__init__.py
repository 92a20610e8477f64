"""The SDK's resources: one group of named methods per area of the API."""

from nexysync.resources.agent_plane import (
    Agents,
    AsyncAgents,
    AsyncEvents,
    AsyncMeResource,
    AsyncPresenceResource,
    AsyncQuota,
    Events,
    MeResource,
    PresenceResource,
    Quota,
)
from nexysync.resources.auth import AsyncAuth, Auth
from nexysync.resources.files import AsyncFiles, Files
from nexysync.resources.kv import AsyncKv, Kv
from nexysync.resources.messages import AsyncMessages, Messages
from nexysync.resources.projects import AsyncProjectAgents, AsyncProjects, ProjectAgents, Projects
from nexysync.resources.refs import AsyncRefs, Refs

__all__ = [
    "Agents",
    "AsyncAgents",
    "AsyncAuth",
    "AsyncEvents",
    "AsyncFiles",
    "AsyncKv",
    "AsyncMeResource",
    "AsyncMessages",
    "AsyncPresenceResource",
    "AsyncProjectAgents",
    "AsyncProjects",
    "AsyncQuota",
    "AsyncRefs",
    "Auth",
    "Events",
    "Files",
    "Kv",
    "MeResource",
    "Messages",
    "PresenceResource",
    "ProjectAgents",
    "Projects",
    "Quota",
    "Refs",
]
