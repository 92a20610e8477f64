"""``nexysync projects create|list|usage|delete``: the signed-in human's projects."""

from __future__ import annotations

import shlex

from nexysync import Client
from nexysync_cli.context import Context
from nexysync_cli.errors import CliError
from nexysync_cli.lookup import find_project
from nexysync_generated.models import Project, Usage

__all__ = ["run_projects_create", "run_projects_delete", "run_projects_list", "run_projects_usage"]


def run_projects_create(ctx: Context) -> int:
    """Create a project."""
    owner = ctx.owner()
    name: str = ctx.args.name
    ttl: int | None = ctx.args.ttl_hours

    def create(client: Client) -> Project:
        return client.projects.create(name=name, default_ttl_hours=ttl)

    existing: list[Project] = owner.call(lambda client: list(client.projects.list()))
    if any(project.name == name for project in existing):
        ctx.output.warn(f"you already have a project named {name!r}; refer to this one by its id")
    project = owner.call(create)
    ctx.output.result(
        project,
        f"Created project {project.name!r} ({project.id}); messages kept {project.default_ttl_hours} h.\n"
        f"Next: nexysync init --project {shlex.quote(project.name)} --agent <slug>",
    )
    return 0


def run_projects_list(ctx: Context) -> int:
    """List the projects, and whether this machine holds each one's key."""
    owner = ctx.owner()
    projects: list[Project] = owner.call(lambda client: list(client.projects.list()))
    store = ctx.project_keys
    has_key = {project.id: store.load(project.id) is not None for project in projects}
    rows = [
        [project.id, project.name, str(project.default_ttl_hours), "yes" if has_key[project.id] else "no"]
        for project in projects
    ]
    text = ctx.output.table(rows, ["ID", "NAME", "TTL_H", "KEY_HERE"]) if rows else "No projects yet."
    data = [{**project.model_dump(mode="json"), "key_on_this_machine": has_key[project.id]} for project in projects]
    ctx.output.result(data, text)
    return 0


def run_projects_usage(ctx: Context) -> int:
    """Show today's usage of a project against its limits."""
    owner = ctx.owner()
    project = find_project(owner, ctx.args.project)
    usage: Usage = owner.call(lambda client: client.projects.usage(project.id))
    text = "\n".join(
        [
            f"Project {project.name!r} ({project.id}), {usage.day}:",
            f"  messages today  {usage.messages_today} / {usage.messages_per_day_limit}",
            f"  storage         {usage.storage_bytes} / {usage.storage_limit_bytes} bytes",
            f"  agents          {usage.agents} / {usage.agents_limit}",
        ]
    )
    ctx.output.result(usage, text)
    return 0


def run_projects_delete(ctx: Context) -> int:
    """Delete a project with its agents and messages, after confirmation."""
    owner = ctx.owner()
    project = find_project(owner, ctx.args.project)
    if not ctx.args.yes and not ctx.confirm(
        f"Delete project {project.name!r} ({project.id}) with all its agents and messages?"
    ):
        raise CliError("not deleted: confirm on the terminal or pass --yes", code="NOT_CONFIRMED")
    owner.call(lambda client: client.projects.delete(project.id))
    ctx.output.result(
        {"deleted": True, "project_id": project.id, "name": project.name},
        f"Deleted project {project.name!r} ({project.id}).",
    )
    return 0
