"""``nexysync keys list|export|import|rotate``: the project encryption keys held on this machine."""

from __future__ import annotations

from nexysync_cli.commands.devices import rotate, sync_from_device, update_key_files
from nexysync_cli.context import Context
from nexysync_cli.errors import CliError
from nexysync_cli.keyfiles import (
    ProjectKeys,
    export_line,
    merge_rings,
    parse_export_line,
)
from nexysync_cli.lookup import find_project
from nexysync_cli.secret_input import STDIN, read_secret

__all__ = ["run_keys_export", "run_keys_import", "run_keys_list", "run_keys_rotate", "run_keys_sync"]


def _local_project(ctx: Context, reference: str) -> ProjectKeys:
    """Return this machine's keys of a project given by id or name.

    The local record is tried first, so keys can be exported or rotated offline; the server is
    asked only to turn an unknown name into an id.

    Raises:
        CliError: this machine holds no key for the project.
    """
    store = ctx.project_keys
    found = store.find(reference)
    if found is None:
        project = find_project(ctx.owner(), reference)
        found = store.load(project.id)
        if found is None:
            raise CliError(
                f"this machine holds no key for project {project.name!r} ({project.id}): "
                "run `nexysync init` for it, or `nexysync keys import` a line exported elsewhere",
                code="NO_PROJECT_KEY",
            )
    return found


def run_keys_list(ctx: Context) -> int:
    """List the projects this machine holds keys for, with key ids (never the keys)."""
    projects = ctx.project_keys.all()
    data = [
        {
            "project_id": project.project_id,
            "name": project.name,
            "api_url": project.api_url,
            "key_ids": project.key_ids(),
            "key_files": project.key_files,
        }
        for project in projects
    ]
    rows = [
        [
            project.project_id,
            project.name or "-",
            project.key_ids()[-1],
            str(len(project.keys)),
            str(len(project.key_files)),
        ]
        for project in projects
    ]
    text = (
        ctx.output.table(rows, ["PROJECT", "NAME", "CURRENT_KEY", "KEYS", "KEY_FILES"])
        if rows
        else "No project keys on this machine."
    )
    ctx.output.result(data, text)
    return 0


def run_keys_export(ctx: Context) -> int:
    """Print the line that carries a project's key ring to another machine."""
    project = _local_project(ctx, ctx.args.project)
    line = export_line(project)
    ctx.output.progress(
        "Secret: whoever has this line reads the project's messages. Paste it into "
        "`nexysync keys import` on the other machine, over a channel you trust."
    )
    ctx.output.result({"project_id": project.project_id, "line": line, "key_ids": project.key_ids()}, line)
    return 0


def _read_line(ctx: Context) -> str:
    """Return the export line: from ``--file``, else stdin (asked for, unechoed, on a terminal)."""
    source: str = ctx.args.file or STDIN
    return read_secret(source, "key export line", prompt="Key export line: ")


def run_keys_import(ctx: Context) -> int:
    """Store a key ring exported on another machine and update this project's key files."""
    project_id, imported = parse_export_line(_read_line(ctx))
    store = ctx.project_keys
    known = store.load(project_id)
    if known is None:
        project = ProjectKeys(project_id, list(imported), api_url=getattr(ctx.args, "api_url", None))
        added = len(imported)
        updated: list[str] = []
    else:
        before = set(known.keys)
        known.keys = merge_rings(known.keys, imported)
        project = known
        added = len(set(known.keys) - before)
        updated, _ = update_key_files(project)
    store.save(project)
    ctx.output.result(
        {
            "project_id": project_id,
            "keys_added": added,
            "key_ids": project.key_ids(),
            "key_files_updated": updated,
        },
        f"Imported {added} new key(s) for project {project_id}; the current key is {project.key_ids()[-1]}."
        + (f" Updated {len(updated)} key file(s)." if updated else "")
        + f"\nNext: nexysync init --project {project_id} --agent <slug>",
    )
    return 0


def run_keys_rotate(ctx: Context) -> int:
    """Make a new project key, the one that encrypts from now on, and seal it to the project's devices.

    Older keys keep decrypting. Every paired machine gets the new key through its device.
    """
    project = _local_project(ctx, ctx.args.project)
    try:
        owner = ctx.owner()
    except CliError:
        owner = None
    outcome = rotate(ctx, project, owner)
    reached = len(outcome["devices_sealed"])
    ctx.output.result(
        outcome,
        f"New key {outcome['key_id']} for project {project.name or project.project_id}; "
        f"updated {len(outcome['key_files_updated'])} key file(s) here and sealed it to {reached} paired device(s).\n"
        "Paired machines take it at their next start (or at once, when their MCP server is running); "
        "restart agents on this machine so they encrypt with it.",
    )
    return 0


def run_keys_sync(ctx: Context) -> int:
    """Take the key rings sealed to this machine's devices (a rotation made elsewhere)."""
    reference: str | None = ctx.args.project
    projects = [_local_project(ctx, reference)] if reference else ctx.project_keys.all()
    paired = [project for project in projects if project.device is not None or reference]
    data = []
    for project in paired:
        added = sync_from_device(ctx, project)
        data.append({"project_id": project.project_id, "keys_added": added, "key_id": project.key_ids()[-1]})
    text = "\n".join(
        f"{item['project_id']}: {item['keys_added']} new key(s); the current key is {item['key_id']}" for item in data
    )
    ctx.output.result(data, text or "No paired projects on this machine.")
    return 0
