"""``nexysync agents create|list|rotate-key|clone|delete``: the agents of a project."""

from __future__ import annotations

from typing import Any

from nexysync_cli.context import Context
from nexysync_cli.errors import CliError
from nexysync_cli.lookup import find_agent, find_project, list_agents
from nexysync_generated.models import Agent, AgentWithKey

__all__ = [
    "run_agents_clone",
    "run_agents_create",
    "run_agents_delete",
    "run_agents_list",
    "run_agents_rotate_key",
]

_KEY_NOTE = (
    "The API key is shown once. To set up a workspace with it, prefer `nexysync init`, which writes "
    "the key file (and the project's encryption key) for you."
)


def _with_key(made: AgentWithKey) -> dict[str, Any]:
    return {"agent": made.agent.model_dump(mode="json"), "api_key": made.api_key}


def run_agents_create(ctx: Context) -> int:
    """Create an agent in a project and show its API key once."""
    owner = ctx.owner()
    project = find_project(owner, ctx.args.project)
    slug: str = ctx.args.slug
    made: AgentWithKey = owner.call(
        lambda client: client.project_agents.create(
            project.id,
            slug=slug,
            name=ctx.args.name or slug,
            role=ctx.args.role,
            capabilities=ctx.args.capability or None,
        )
    )
    ctx.output.result(
        _with_key(made),
        f"Created agent {made.agent.slug!r} ({made.agent.id}) in {project.name!r}.\n"
        f"API key: {made.api_key}\n{_KEY_NOTE}",
    )
    return 0


def run_agents_list(ctx: Context) -> int:
    """List the agents of a project."""
    owner = ctx.owner()
    project = find_project(owner, ctx.args.project)
    agents: list[Agent] = list_agents(owner, project.id)
    rows = [
        [
            agent.slug,
            agent.name,
            agent.role or "-",
            agent.key_prefix,
            agent.last_seen_at.isoformat(timespec="seconds") if agent.last_seen_at else "never",
        ]
        for agent in agents
    ]
    text = (
        ctx.output.table(rows, ["SLUG", "NAME", "ROLE", "KEY", "LAST_SEEN"])
        if rows
        else f"Project {project.name!r} has no agents yet."
    )
    ctx.output.result(agents, text)
    return 0


def run_agents_rotate_key(ctx: Context) -> int:
    """Give an agent a new API key; the old one stops working at once."""
    owner = ctx.owner()
    project = find_project(owner, ctx.args.project)
    agent = find_agent(owner, project, ctx.args.agent)
    assert agent is not None
    made: AgentWithKey = owner.call(lambda client: client.project_agents.rotate_key(project.id, agent.id))
    ctx.output.result(
        _with_key(made),
        f"New API key for {agent.slug!r}: {made.api_key}\nThe old key no longer works. "
        f"Update the agent's key file, e.g. with `nexysync init --project {project.id} --agent {agent.slug}`.",
    )
    return 0


def run_agents_clone(ctx: Context) -> int:
    """Copy an agent into another project of the same owner, with a new API key."""
    owner = ctx.owner()
    project = find_project(owner, ctx.args.project)
    target = find_project(owner, ctx.args.to_project)
    agent = find_agent(owner, project, ctx.args.agent)
    assert agent is not None
    made: AgentWithKey = owner.call(
        lambda client: client.project_agents.clone(project.id, agent.id, target_project_id=target.id)
    )
    ctx.output.result(
        _with_key(made),
        f"Cloned {agent.slug!r} into {target.name!r} as {made.agent.slug!r} ({made.agent.id}).\n"
        f"API key: {made.api_key}\n{_KEY_NOTE}",
    )
    return 0


def run_agents_delete(ctx: Context) -> int:
    """Delete an agent after confirmation; its key stops working at once."""
    owner = ctx.owner()
    project = find_project(owner, ctx.args.project)
    agent = find_agent(owner, project, ctx.args.agent)
    assert agent is not None
    if not ctx.args.yes and not ctx.confirm(f"Delete agent {agent.slug!r} of project {project.name!r}?"):
        raise CliError("not deleted: confirm on the terminal or pass --yes", code="NOT_CONFIRMED")
    owner.call(lambda client: client.project_agents.delete(project.id, agent.id))
    ctx.output.result(
        {"deleted": True, "agent_id": agent.id, "slug": agent.slug, "project_id": project.id},
        f"Deleted agent {agent.slug!r} of {project.name!r}.",
    )
    return 0
