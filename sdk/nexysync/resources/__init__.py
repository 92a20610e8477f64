"""The SDK's resources: one group of named methods per area of the API.

The operation methods are generated into ``nexysync._generated`` from openapi.yaml; ``messages``
``files`` and ``leases`` add, by hand, what is more than one operation.
"""

from nexysync._generated.agents import Agents, AsyncAgents
from nexysync._generated.auth import AsyncAuth, Auth
from nexysync._generated.events import AsyncEvents, Events
from nexysync._generated.kv import AsyncKv, Kv
from nexysync._generated.me import AsyncMeResource, MeResource
from nexysync._generated.presence import AsyncPresenceResource, PresenceResource
from nexysync._generated.project_agents import AsyncProjectAgents, ProjectAgents
from nexysync._generated.projects import AsyncProjects, Projects
from nexysync._generated.quota import AsyncQuota, Quota
from nexysync._generated.refs import AsyncRefs, Refs
from nexysync.resources.files import AsyncFiles, Files
from nexysync.resources.leases import AsyncLeases, Leases
from nexysync.resources.messages import AsyncMessages, Messages

__all__ = [
    "Agents",
    "AsyncAgents",
    "AsyncAuth",
    "AsyncEvents",
    "AsyncFiles",
    "AsyncKv",
    "AsyncLeases",
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
    "Leases",
    "MeResource",
    "Messages",
    "PresenceResource",
    "ProjectAgents",
    "Projects",
    "Quota",
    "Refs",
]
