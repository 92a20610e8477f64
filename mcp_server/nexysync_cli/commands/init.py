"""``nexysync init``: set up one agent in one workspace (key file, .gitignore, editor config)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nexysync import Client
from nexysync_cli.context import Context
from nexysync_cli.credentials import OwnerSession
from nexysync_cli.editors import EDITORS, ConfigChange, Launch, claude_command, installed, merge_config, snippet
from nexysync_cli.errors import CliError
from nexysync_cli.files import read_json
from nexysync_cli.hooksetup import CLAUDE_SETTINGS, CODEX_HOOKS, hook_entries, merge_codex_config, merge_hooks
from nexysync_cli.keyfiles import (
    KEY_DIR,
    KEY_FILE,
    ProjectKeys,
    add_to_gitignore,
    decode_key,
    key_file_fields,
    write_key_file,
)
from nexysync_cli.lookup import find_agent, find_project, list_agents
from nexysync_cli.secret_input import read_secret
from nexysync_generated.models import Agent, AgentWithKey, Project

__all__ = ["CHANNEL_FLAG", "agent_with_key", "editor_configs", "mcp_launch", "run_init"]

#: What starts Claude Code with nexysync's channel (a research preview, so a development flag).
CHANNEL_FLAG = "--dangerously-load-development-channels server:nexysync"
CHANNEL_HELP = (
    "Claude Code: start it in the workspace with\n"
    f"    claude {CHANNEL_FLAG}\n"
    'and each new message arrives in the running session as it comes, as a <channel source="nexysync"> '
    "event (channels are a research preview: Claude Code 2.1.80 or later, signed in with claude.ai). "
    "Without the flag nexysync is an ordinary MCP server: its tools work and nothing looks wrong, but a new "
    "message reaches the model only when it calls ns_message check or wait, or, with the hooks "
    "(`--hooks`), on your next prompt."
)


def _project_keys(
    ctx: Context, owner: OwnerSession, project: Project, slug: str, agents: Sequence[Agent]
) -> tuple[ProjectKeys, str]:
    """Return the project's keys on this machine, making them on the project's first init.

    Args:
        ctx: The command's context.
        owner: The signed-in human's session.
        project: The project.
        slug: The agent being set up.
        agents: The project's agents.

    Returns:
        The keys and how they were obtained: ``existing``, ``new`` or ``given``.

    Raises:
        CliError: the project already has other agents but this machine has no key for it; a
            new key would cut this agent off from them, so the user must import the key first.
    """
    store = ctx.project_keys
    known = store.load(project.id)
    source: str | None = ctx.args.enc_key_file
    given = read_secret(source, "project key", prompt="Project key (base64): ") if source else None
    if known is not None:
        if given is not None and decode_key(given, "--enc-key-file") not in known.keys:
            raise CliError(
                "--enc-key-file differs from the key this machine holds for the project; use `nexysync keys import`",
                code="KEY_MISMATCH",
            )
        if known.name != project.name or known.api_url != owner.api_url:
            known.name, known.api_url = project.name, owner.api_url
            store.save(known)
        return known, "existing"
    if given is not None:
        created = ProjectKeys(
            project.id, [decode_key(given, "--enc-key-file")], name=project.name, api_url=owner.api_url
        )
        store.save(created)
        return created, "given"
    others = [agent.slug for agent in agents if agent.slug != slug]
    if others and not ctx.args.new_key:
        raise CliError(
            f"project {project.name!r} already has agents ({', '.join(sorted(others))}) but this machine holds no "
            f"key for it. On a machine that has it run `nexysync keys export --project {project.id}`, then here "
            "`nexysync keys import` (paste the line when asked); or pass --new-key to start a new key (the other "
            "agents will not read this agent's messages until they get it).",
            code="NO_PROJECT_KEY",
        )
    return store.create(project.id, name=project.name, api_url=owner.api_url), "new"


def agent_with_key(
    owner: OwnerSession,
    project: Project,
    slug: str,
    agents: Sequence[Agent],
    *,
    name: str | None = None,
    role: str | None = None,
) -> tuple[AgentWithKey, bool]:
    """Create the agent, or rotate the key of the existing one among ``agents``; return it and whether it existed."""
    existing: Agent | None = find_agent(owner, project, slug, required=False, agents=agents)
    if existing is None:

        def create(client: Client) -> AgentWithKey:
            return client.project_agents.create(project.id, slug=slug, name=name or slug, role=role)

        return owner.call(create), False
    if (name and name != existing.name) or (role is not None and role != existing.role):
        owner.call(lambda client: client.project_agents.update(project.id, existing.id, name=name, role=role))
    # The API shows a key only once, so the only way to a key for this file is a new one.
    return owner.call(lambda client: client.project_agents.rotate_key(project.id, existing.id)), True


def _check_existing_file(path: Path, project: Project, force: bool) -> None:
    """Refuse to replace another project's key file unless forced (its agent would lose its key)."""
    data = read_json(path) if path.is_file() else None
    if data is None or force:
        return
    other = data.get("project_id")
    if other == project.id:
        return  # Same project: re-running init refreshes the file; the agent named in it keeps existing.
    if other:
        raise CliError(
            f"{path} belongs to another project ({other}); pass --force to replace it or use another --dir",
            code="KEY_FILE_EXISTS",
        )


def editor_configs(ctx: Context, workspace: Path, launch: Launch) -> list[ConfigChange]:
    """Write the chosen editors' configs (and hooks), or print how to set each one up."""
    chosen: list[str] = ctx.args.write_config or []
    names = [*EDITORS, "codex"] if "all" in chosen else list(dict.fromkeys(chosen))
    hooks: bool = ctx.args.hooks
    nexysync = installed("nexysync", "nexysync_cli.entry")
    changes = []
    for name in names:
        if name == "codex":
            changes.append(merge_codex_config(workspace, launch, hooks=hooks))
            if hooks:
                changes.append(merge_hooks(workspace, CODEX_HOOKS, nexysync, "codex"))
            continue
        changes.append(merge_config(workspace, EDITORS[name], launch))
        if name == "claude" and hooks:
            changes.append(merge_hooks(workspace, CLAUDE_SETTINGS, nexysync, "claude"))
    for change in changes:
        ctx.output.progress(f"{change.editor}: {change.action} {change.path}")
    if not names:
        lines = [
            "Connect your editor (or rerun with --write-config claude|cursor|vscode|codex|all):",
            f"  Claude Code, from the workspace:  {claude_command(launch)}",
        ]
        for editor in EDITORS.values():
            lines.append(f"  {editor.title} ({editor.relative_path}):")
            lines.extend(f"    {line}" for line in snippet(editor, launch).splitlines())
        if hooks:
            lines.append(f"  Hooks (in {CLAUDE_SETTINGS} or {CODEX_HOOKS}, under hooks.<event>):")
            lines.extend(f"    {event}: {command}" for event, command in hook_entries(nexysync).items())
        ctx.output.progress("\n".join(lines))
    if not names or "claude" in names:
        ctx.output.progress(CHANNEL_HELP)
    return changes


def mcp_launch(ctx: Context) -> Launch:
    """Return how editors start the MCP server: ``--mcp-command``, else the installed one by absolute path."""
    return (ctx.args.mcp_command,) if ctx.args.mcp_command else installed("nexysync-mcp", "nexysync_mcp")


def run_init(ctx: Context) -> int:
    """Set up an agent of an existing project in a workspace.

    Creates the workspace folder if it is missing, and the agent (or gives the existing one a new
    API key), writes ``.nexysync/key`` with the
    project's key ring (made here on the project's first init, never sent to the server), adds
    ``.nexysync/`` to ``.gitignore``, and writes or prints the editors' MCP configs.
    """
    workspace = Path(ctx.args.dir).expanduser().resolve()
    if workspace.exists() and not workspace.is_dir():
        raise CliError(f"{workspace} is a file, not a workspace folder: pick another --dir", code="NO_WORKSPACE")
    if not workspace.exists():
        # A new workspace is the usual case on a new machine: make it rather than send the user back.
        workspace.mkdir(parents=True)
        ctx.output.progress(f"Created {workspace}")
    key_path = workspace / KEY_DIR / KEY_FILE
    owner = ctx.owner()
    project = find_project(owner, ctx.args.project)
    _check_existing_file(key_path, project, ctx.args.force)
    # Listed once for both steps: nothing between them changes the project's agents.
    agents = list_agents(owner, project.id)
    keys, key_origin = _project_keys(ctx, owner, project, ctx.args.agent, agents)
    made, existed = agent_with_key(owner, project, ctx.args.agent, agents, name=ctx.args.name, role=ctx.args.role)
    agent = made.agent
    if existed:
        ctx.output.warn(f"agent {agent.slug!r} already existed: it got a new API key and its old key stopped working")
    fields = key_file_fields(
        api_key=made.api_key,
        api_url=owner.api_url,
        project=keys,
        agent_name=agent.name,
        custom_enc_key=key_origin == "given",
    )
    written = write_key_file(workspace, fields)
    if str(written) not in keys.key_files:
        keys.key_files.append(str(written))
    ctx.project_keys.save(keys)
    ignored = add_to_gitignore(workspace)
    ctx.output.progress(
        f"Agent {agent.slug!r} of project {project.name!r}: key file {written} "
        f"({'new project key' if key_origin == 'new' else 'project key from this machine'})"
    )
    if ignored:
        ctx.output.progress(f"Added .nexysync/ to {workspace / '.gitignore'}")
    # By absolute path: an editor started outside this virtualenv finds it all the same.
    launch = mcp_launch(ctx)
    changes = editor_configs(ctx, workspace, launch)
    ctx.output.result(
        {
            "project_id": project.id,
            "project_name": project.name,
            "agent": agent.model_dump(mode="json"),
            "agent_existed": existed,
            "key_file": str(written),
            "workspace": str(workspace),
            "project_key": key_origin,
            "key_id": keys.key_ids()[-1],
            "gitignore_updated": ignored,
            "editor_configs": [
                {"editor": change.editor, "path": str(change.path), "action": change.action} for change in changes
            ],
            "mcp_command": list(launch),
            "claude_channel_flag": CHANNEL_FLAG,
        },
        f"Ready: {agent.slug} can now talk to the other agents of {project.name!r}.",
    )
    return 0
