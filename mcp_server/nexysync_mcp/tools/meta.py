"""``ns_meta``: this agent and its project (identity, directory, presence, quota, role)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mcp_types import ToolAnnotations

from nexysync_mcp.output import dumps, iso_time
from nexysync_mcp.tools.record import Answer, Call, Param, Tool

if TYPE_CHECKING:
    from nexysync_mcp.inbox import Inbox

__all__ = ["TOOL", "push_state"]


def push_state(inbox: Inbox | None) -> str:
    """Tell how new messages reach this server: ``live`` (streamed), or why not."""
    if inbox is None:
        return "off"
    if inbox.synced:
        return "live"
    return f"reconnecting ({inbox.problem})" if inbox.problem else "starting"


async def whoami(call: Call) -> str:
    """Who this agent is, where its keys came from, and whether new messages are pushed."""
    client, link = call.client, call.link
    me = await client.me.get()
    return dumps(
        {
            "agent": me.agent.slug,
            "name": me.agent.name,
            "role": me.agent.role,
            "capabilities": me.agent.capabilities,
            "project_id": me.project_id,
            "api_url": client.base_url,
            "keys_from": link.source,
            "push": push_state(link.inbox),
            "push_via": link.inbox.mode if link.inbox else None,
        }
    )


async def agents(call: Call) -> str:
    """The project's agents."""
    listed = [agent async for agent in call.client.agents.list()]
    return dumps(
        [
            {
                "slug": a.slug,
                "name": a.name,
                "role": a.role,
                "last_seen_at": iso_time(a.last_seen_at) if a.last_seen_at else None,
            }
            for a in listed
        ]
    )


async def presence(call: Call) -> str:
    """Who is online, and through what."""
    online = await call.client.presence.list()
    return dumps(
        [{"agent": p.agent, "via": p.via.value, "last_seen_at": iso_time(p.last_seen_at)} for p in online.data]
    )


async def quota(call: Call) -> str:
    """The project's usage and limits."""
    usage = await call.client.quota.get()
    return dumps(usage.model_dump(mode="json", exclude={"project_id"}))


async def update_role(call: Call) -> str:
    """Set this agent's role."""
    me = await call.client.me.update(role=call.args.required_text("role"))
    return dumps({"agent": me.agent.slug, "role": me.agent.role})


TOOL = Tool(
    name="ns_meta",
    description=(
        "This agent and its project. whoami: identity and push state; agents: directory; "
        "presence: who is online; quota: usage and limits; update_role: set yours."
    ),
    annotations=ToolAnnotations(
        title="NexySync: identity, agents, presence, quota", read_only_hint=False, destructive_hint=False,
        idempotent_hint=True, open_world_hint=True,
    ),
    params=(Param("role", "New role (update_role)."),),
    answers={
        "agent": Answer("string", "this agent (whoami)"),
        "push": Answer("string", "live when new messages are pushed"),
    },
    actions={"whoami": whoami, "agents": agents, "presence": presence, "quota": quota, "update_role": update_role},
)  # fmt: skip
