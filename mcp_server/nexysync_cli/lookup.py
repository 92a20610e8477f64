"""Find a project or an agent by id or by name, with errors that list what there is."""

from __future__ import annotations

import re
from collections.abc import Sequence

from nexysync import Client, NotFoundError
from nexysync_cli.credentials import OwnerSession
from nexysync_cli.errors import CliError
from nexysync_generated.models import Agent, Project

__all__ = ["find_agent", "find_project", "list_agents", "looks_like_id"]

_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


def looks_like_id(reference: str) -> bool:
    """Tell whether ``reference`` has the shape of a ULID (a project or agent id)."""
    return bool(_ULID.match(reference))


def find_project(owner: OwnerSession, reference: str) -> Project:
    """Return the owner's project whose id or name is ``reference``.

    Raises:
        CliError: no such project, or several projects of that name.
    """
    if looks_like_id(reference):
        try:
            return owner.call(lambda client: client.projects.get(reference))
        except NotFoundError:
            pass  # A project may be named like an id; look among the names too.
    projects: list[Project] = owner.call(lambda client: list(client.projects.list()))
    named = [project for project in projects if project.name == reference]
    if len(named) == 1:
        return named[0]
    if named:
        ids = ", ".join(project.id for project in named)
        raise CliError(f"several projects are named {reference!r} ({ids}): give its id", code="AMBIGUOUS_PROJECT")
    known = ", ".join(sorted(project.name for project in projects)) or "none yet"
    raise CliError(
        f"no project {reference!r} (your projects: {known}); create it with `nexysync projects create`",
        code="PROJECT_NOT_FOUND",
    )


def list_agents(owner: OwnerSession, project_id: str) -> list[Agent]:
    """Return every agent of a project."""

    def fetch(client: Client) -> list[Agent]:
        return list(client.project_agents.list(project_id))

    return owner.call(fetch)


def find_agent(
    owner: OwnerSession,
    project: Project,
    reference: str,
    *,
    required: bool = True,
    agents: Sequence[Agent] | None = None,
) -> Agent | None:
    """Return the agent of ``project`` whose slug or id is ``reference``.

    Args:
        owner: The signed-in human's session.
        project: The project to look in.
        reference: The agent's slug or id.
        required: Raise when there is no such agent, rather than return None.
        agents: The project's agents when the caller already listed them; listed here otherwise.

    Raises:
        CliError: none, when ``required``.
    """
    if agents is None:
        agents = list_agents(owner, project.id)
    for agent in agents:
        if reference in (agent.slug, agent.id):
            return agent
    if not required:
        return None
    known = ", ".join(sorted(agent.slug for agent in agents)) or "none yet"
    raise CliError(f"project {project.name!r} has no agent {reference!r} (agents: {known})", code="AGENT_NOT_FOUND")
