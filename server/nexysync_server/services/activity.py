"""How long an agent that holds something (a lease, a task) has shown no activity.

Another agent may take a holder's lease or task only after this passes
``NEXYSYNC_LEASE_FORCE_AFTER_S``: a request (the agent's last-seen time) or a change of the held
thing (a renewal, a claim) counts as activity.
"""

from __future__ import annotations

from ..ids import parse_rfc3339
from ..store.agents import AgentStore


async def idle_s(agents: AgentStore, project_id: str, agent_id: str, active_ms: int, now_ms: int) -> float:
    """Return the seconds since the agent was last seen, or since ``active_ms`` when that is later."""
    holder = await agents.get(project_id, agent_id)
    if holder is not None and holder.get("last_seen_at"):
        seen_ms = int(parse_rfc3339(str(holder["last_seen_at"])).timestamp() * 1000)
        active_ms = max(active_ms, seen_ms)
    return max(0.0, (now_ms - active_ms) / 1000)
