"""``nexysync``: provision NexySync accounts, projects, agents, key files and editor configs.

Every command takes ``--json`` (results as JSON on stdout, errors as one JSON object on stderr)
and ``--api-url``. Failures print one line and exit with code 1; usage errors exit with 2.

Example:
    $ nexysync register --email me@example.com --name Me
    $ nexysync projects create demo
    $ nexysync init --project demo --agent backend --write-config claude
    $ nexysync send --to frontend --topic "API ready" --payload "GET /v1/items is live"
    $ nexysync tail
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from nexysync import NexySyncError
from nexysync.crypto import DecryptionError
from nexysync_cli.commands import (
    a2a,
    account,
    agents,
    coordination,
    devices,
    keys,
    messaging,
    pairing,
    projects,
    search,
)
from nexysync_cli.commands.init import run_init
from nexysync_cli.context import ENV_PASSWORD, Context
from nexysync_cli.errors import EXIT_ERROR, EXIT_INTERRUPTED, CliError, describe
from nexysync_cli.output import Output
from nexysync_cli.secret_input import RefusedOnCommandLine, StdinOnly

__all__ = ["build_parser", "main"]

Handler = Callable[[Context], int]


def _common() -> argparse.ArgumentParser:
    """Options accepted before or after any command (SUPPRESS keeps a later default from erasing an earlier value)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print results as JSON, for scripts"
    )
    common.add_argument(
        "--api-url",
        default=argparse.SUPPRESS,
        metavar="URL",
        help="the NexySync API (default: $NEXYSYNC_API_URL, else the last one signed in to, else http://127.0.0.1:8080)",
    )
    return common


def _command(
    parent: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    handler: Handler,
    help_text: str,
    common: argparse.ArgumentParser,
) -> argparse.ArgumentParser:
    parser = parent.add_parser(name, help=help_text, description=help_text, parents=[common])
    parser.set_defaults(handler=handler)
    return parser


def _add_account(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    def password_options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--password-file",
            metavar="FILE",
            help=f"read the password from FILE's first line ('-': stdin); default: ${ENV_PASSWORD}, else a prompt",
        )
        parser.add_argument(
            "--password",
            action=RefusedOnCommandLine,
            instead=f"leave it out to be asked, set {ENV_PASSWORD}, or pass --password-file FILE ('-' reads stdin)",
        )

    register = _command(commands, "register", account.run_register, "create an account and sign in", common)
    register.add_argument("--email", help="your email (asked when left out)")
    register.add_argument("--name", help="your display name (default: the email's local part)")
    password_options(register)
    login = _command(commands, "login", account.run_login, "sign in and keep the session on this machine", common)
    login.add_argument("--email", help="your email (asked when left out)")
    password_options(login)
    logout = _command(commands, "logout", account.run_logout, "revoke the session and forget it here", common)
    logout.add_argument("--all", action="store_true", help="sign out every session of the account, everywhere")
    password = _command(
        commands, "password", account.run_password, "change the password; every other session ends", common
    )
    password_options(password)
    password.add_argument(
        "--new-password-file",
        metavar="FILE",
        help=f"read the new password from FILE's first line; default: ${account.ENV_NEW_PASSWORD}, else a prompt",
    )
    delete = _command(
        commands,
        "delete-account",
        account.run_delete_account,
        "delete the account and every project it owns, with all their data",
        common,
    )
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    password_options(delete)
    _command(commands, "whoami", account.run_whoami, "show who is signed in", common)


def _add_projects(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    group = commands.add_parser("projects", help="manage projects", description="Manage your projects.")
    sub = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = _command(sub, "create", projects.run_projects_create, "create a project", common)
    create.add_argument("name", help="the project's name")
    create.add_argument("--ttl-hours", type=int, help="how long messages are kept (server default when left out)")
    _command(sub, "list", projects.run_projects_list, "list your projects", common)
    usage = _command(sub, "usage", projects.run_projects_usage, "show today's usage and limits", common)
    usage.add_argument("project", help="project id or name")
    delete = _command(sub, "delete", projects.run_projects_delete, "delete a project and everything in it", common)
    delete.add_argument("project", help="project id or name")
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")


def _add_agents(commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("agents", help="manage a project's agents", description="Manage a project's agents.")
    sub = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    def with_project(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser.add_argument("--project", "-p", required=True, help="project id or name")
        return parser

    create = with_project(
        _command(sub, "create", agents.run_agents_create, "create an agent (shows its key once)", common)
    )
    create.add_argument("slug", help="the agent's address: lowercase letters, digits, inner dashes")
    create.add_argument("--name", help="display name (default: the slug)")
    create.add_argument("--role", help="what the agent does, shown to the others")
    create.add_argument("--capability", action="append", help="a capability (repeat for several)")
    with_project(_command(sub, "list", agents.run_agents_list, "list a project's agents", common))
    rotate = with_project(
        _command(sub, "rotate-key", agents.run_agents_rotate_key, "give an agent a new API key", common)
    )
    rotate.add_argument("agent", help="agent slug or id")
    clone = with_project(
        _command(sub, "clone", agents.run_agents_clone, "copy an agent into another of your projects", common)
    )
    clone.add_argument("agent", help="agent slug or id")
    clone.add_argument("--to-project", required=True, help="the target project's id or name")
    delete = with_project(_command(sub, "delete", agents.run_agents_delete, "delete an agent", common))
    delete.add_argument("agent", help="agent slug or id")
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")


def _add_init(commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    init = _command(
        commands, "init", run_init, "set up an agent in a workspace: key file, .gitignore, editor config", common
    )
    init.add_argument("--project", "-p", required=True, help="an existing project's id or name")
    init.add_argument(
        "--agent", "-a", required=True, help="the agent's slug (created, or given a new key if it exists)"
    )
    init.add_argument("--name", help="display name for a new agent (default: the slug)")
    init.add_argument("--role", help="what the agent does, shown to the others")
    init.add_argument("--dir", default=".", help="the workspace (default: the current directory)")
    init.add_argument(
        "--write-config",
        action="append",
        choices=["claude", "cursor", "vscode", "codex", "all"],
        help="merge the MCP server into this editor's project config (repeatable); printed otherwise",
    )
    init.add_argument(
        "--hooks",
        action="store_true",
        help="also add the prompt and stop hooks (nexysync hook ...) for claude (.claude/settings.json) and codex",
    )
    init.add_argument(
        "--mcp-command", help="how editors start the MCP server (default: the installed nexysync-mcp, by absolute path)"
    )
    init.add_argument(
        "--enc-key-file",
        metavar="FILE",
        help="use your own project key (standard base64 of 32 bytes), read from FILE ('-': stdin, or a prompt)",
    )
    init.add_argument(
        "--enc-key", action=RefusedOnCommandLine, instead="pass --enc-key-file FILE ('-' reads stdin, or asks)"
    )
    init.add_argument("--new-key", action="store_true", help="make a new project key even though other agents exist")
    init.add_argument("--force", action="store_true", help="replace a key file of another project")


def _add_keys(commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    group = commands.add_parser(
        "keys", help="project encryption keys on this machine", description="Manage the project encryption keys."
    )
    sub = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    _command(sub, "list", keys.run_keys_list, "list the projects this machine holds keys for", common)
    export = _command(sub, "export", keys.run_keys_export, "print a line that carries the key ring elsewhere", common)
    export.description = (
        'Print one line, nsk1:<project id>:<base64url of {"keys": [...]}> (keys oldest first), to paste into '
        "`nexysync keys import` on another machine. It is a secret: it decrypts every message of the project."
    )
    export.add_argument("--project", "-p", required=True, help="project id or name")
    imported = _command(sub, "import", keys.run_keys_import, "store a key ring exported on another machine", common)
    imported.description = (
        "Store the key ring of a line printed by `nexysync keys export`: pasted at the prompt, piped in on "
        "stdin, or read from --file (never given as an argument, where `ps` and the shell history would keep it)."
    )
    imported.add_argument(
        "line",
        nargs="?",
        metavar="-",
        action=StdinOnly,
        what="the key export line",
        instead="run `nexysync keys import` and paste the line when asked, pipe it in "
        "(`nexysync keys import < line.txt`), or pass --file FILE",
        help="read the export line from stdin (the default when stdin is not a terminal; a prompt otherwise)",
    )
    imported.add_argument("--file", metavar="FILE", help="read the export line from FILE")
    rotate = _command(
        sub, "rotate", keys.run_keys_rotate, "make a new key that encrypts from now on; update key files", common
    )
    rotate.add_argument("--project", "-p", required=True, help="project id or name")
    sync = _command(
        sub, "sync", keys.run_keys_sync, "take the keys a rotation elsewhere sealed to this machine", common
    )
    sync.add_argument("--project", "-p", help="project id or name (default: every paired project)")


def _add_pairing(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    group = commands.add_parser(
        "pair",
        help="give a new machine the project key from a short code",
        description="Pair a new machine: `offer` on a machine that holds the project key (signed in), "
        "`accept CODE` on the new one (no sign-in). The server relays the exchange and cannot read it.",
    )
    sub = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    offer = _command(
        sub, "offer", pairing.run_pair_offer, "print a single-use code and wait for the new machine", common
    )
    offer.add_argument("--project", "-p", required=True, help="project id or name")
    offer.add_argument("--agent", "-a", help="also hand over this agent (created, or given a new API key if it exists)")
    offer.add_argument("--ttl", type=int, default=300, help="seconds the code stays valid (default: 300, at most 300)")
    accept = _command(sub, "accept", pairing.run_pair_accept, "complete a pairing and write the key file", common)
    accept.add_argument("code", help="the code `pair offer` printed, like 4821-apple-river-stone")
    accept.add_argument("--dir", default=".", help="the workspace for .nexysync/key (created if missing; default: .)")
    accept.add_argument("--name", help="this machine's name in the device list (default: the host name)")
    accept.add_argument("--force", action="store_true", help="replace a key file already in the workspace")
    accept.add_argument(
        "--write-config",
        action="append",
        choices=["claude", "cursor", "vscode", "codex", "all"],
        help="with an agent, merge the MCP server into this editor's project config (repeatable)",
    )
    accept.add_argument("--hooks", action="store_true", help="with an agent, also add the prompt and stop hooks")
    accept.add_argument("--mcp-command", help="how editors start the MCP server (default: the installed nexysync-mcp)")
    devices_group = commands.add_parser(
        "devices", help="the machines paired into a project", description="List and revoke paired machines."
    )
    dsub = devices_group.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = _command(dsub, "list", devices.run_devices_list, "list a project's paired devices", common)
    listing.add_argument("--project", "-p", required=True, help="project id or name")
    revoke = _command(
        dsub, "revoke", devices.run_devices_revoke, "revoke a device and rotate the key without it", common
    )
    revoke.add_argument("device_id", help="the device's id (`nexysync devices list`)")
    revoke.add_argument("--project", "-p", required=True, help="project id or name")


def _add_messaging(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    send = _agent_options(
        _command(commands, "send", messaging.run_send, "send an encrypted message as the agent", common)
    )
    send.add_argument("--to", help="the recipient's slug")
    send.add_argument("--broadcast", action="store_true", help="send to every agent of the project")
    send.add_argument("--topic", required=True, help="a short subject")
    send.add_argument("--payload", required=True, help="the content; '-' reads it from stdin")
    send.add_argument("--type", default="notification", choices=["request", "response", "notification"])
    send.add_argument("--priority", choices=["normal", "urgent", "blocking"])
    send.add_argument("--reply-to", help="the id of the message this answers")
    status = _agent_options(
        _command(commands, "status", messaging.run_status, "show where each recipient's copy of a message is", common)
    )
    status.add_argument("message_id", help="a message you sent or received")
    status.add_argument(
        "--wait", choices=["delivered", "read", "acked"], help="block until every copy got at least this far"
    )
    status.add_argument("--timeout", type=float, default=60.0, help="seconds --wait waits at most (default: 60)")
    tail = _agent_options(
        _command(commands, "tail", messaging.run_tail, "print the agent's messages live, decrypted", common)
    )
    tail.add_argument("--count", "-n", type=int, help="stop after this many messages")
    tail.add_argument("--timeout", type=float, help="stop after this many seconds (exit 1 if --count is not reached)")
    tail.add_argument("--events", action="store_true", help="show the other events too (presence, kv, acks)")
    tail.add_argument("--no-resume", action="store_true", help="start from now, not where the last tail stopped")
    finder = _agent_options(
        _command(
            commands,
            "search",
            search.run_search,
            "search the agent's messages, references and kv values on this machine (the server sees no word)",
            common,
        )
    )
    finder.add_argument("query", help='words (all must match), "a phrase", a OR b, prefix*')
    finder.add_argument("--from", dest="from_", metavar="SLUG", help="only what this agent wrote")
    finder.add_argument(
        "--since", metavar="WHEN", help="only since a date or time (2026-12-01), an age (7d, 12h), today or yesterday"
    )
    finder.add_argument("--kind", choices=["message", "ref", "kv"], help="only this kind of record")
    finder.add_argument("--limit", type=int, default=20, help="at most this many hits (default: 20)")
    finder.add_argument("--reindex", action="store_true", help="rebuild the local index from history first")


def _agent_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--dir", default=".", help="look for .nexysync/key from here upward (default: .)")
    parser.add_argument("--key-file", help="use this key file instead")
    return parser


def _add_coordination(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    lease = commands.add_parser(
        "lease",
        help="lease workspace paths so that other agents leave them alone",
        description="Lease paths of the workspace (a file, or a directory and all under it). The server sees only "
        "keyed hashes of the paths; the paths and reasons are encrypted.",
    )
    sub = lease.add_subparsers(dest="action", required=True, metavar="ACTION")
    claim = _agent_options(
        _command(sub, "claim", coordination.run_lease_claim, "lease paths, all or none (exit 1: held)", common)
    )
    claim.add_argument("paths", nargs="+", metavar="PATH", help="a file, or a directory (and all under it)")
    claim.add_argument("--ttl", type=int, default=1800, help="seconds the leases last without renewal (default: 1800)")
    claim.add_argument("--shared", action="store_true", help="a shared lease: sits with other shared ones")
    claim.add_argument("--reason", help="why (encrypted; the others see it)")
    release = _agent_options(_command(sub, "release", coordination.run_lease_release, "release leased paths", common))
    release.add_argument("paths", nargs="+", metavar="PATH", help="a path you leased")
    release.add_argument(
        "--force",
        action="store_true",
        help="release another agent's lease (once it is inactive long enough)",
    )
    listed = _agent_options(
        _command(sub, "list", coordination.run_lease_list, "list the project's live leases", common)
    )
    listed.add_argument("--agent", help="only this agent's leases")

    task = commands.add_parser(
        "task", help="the project's shared task board", description="The project's task board (titles encrypted)."
    )
    sub = task.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = _agent_options(_command(sub, "add", coordination.run_task_add, "add a task", common))
    add.add_argument("title", help="what is to be done")
    add.add_argument("--body", help="the details; '-' reads them from stdin")
    add.add_argument(
        "--blocked-by", action="append", metavar="TASK_ID", help="a task that must be done first (repeatable)"
    )
    listed = _agent_options(_command(sub, "list", coordination.run_task_list, "list the project's tasks", common))
    listed.add_argument("--state", choices=["open", "claimed", "done", "cancelled"], help="only tasks in this state")
    listed.add_argument("--mine", action="store_true", help="only the tasks you claimed or did")
    for name, handler, text in (
        ("claim", coordination.run_task_claim, "claim an open task (exit 1 names who holds it)"),
        ("release", coordination.run_task_release, "give a claimed task back"),
        ("done", coordination.run_task_done, "mark your claimed task done"),
        ("cancel", coordination.run_task_cancel, "cancel a task you added"),
    ):
        change = _agent_options(_command(sub, name, handler, text, common))
        change.add_argument("task_id", metavar="TASK_ID", help="the task's id")
        if name == "release":
            change.add_argument(
                "--force", action="store_true", help="release another agent's claim (only once it is inactive)"
            )
        if name == "done":
            change.add_argument("--result", help="what came of it (encrypted); '-' reads it from stdin")

    guard = commands.add_parser(
        "guard",
        help="a git hook that refuses commits touching paths other agents lease",
        description="Install a git pre-commit hook (and with --pre-push a pre-push hook) that refuses a commit "
        "touching a path another agent leases exclusively, naming the holder. NEXYSYNC_GUARD=warn only warns, "
        "=off skips it; when the API cannot be reached it says so and lets the commit through. A hook already "
        "there keeps running, after the guard.",
    )
    sub = guard.add_subparsers(dest="action", required=True, metavar="ACTION")
    install = _command(sub, "install", coordination.run_guard_install, "install the guard's git hooks", common)
    install.add_argument("--pre-push", action="store_true", help="also check what a push sends")
    install.add_argument("--dir", default=".", help="the workspace, inside the git repository (default: .)")


def _add_hook(commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    hook = _command(
        commands, "hook", _run_hook, "AI tool hooks: new messages for a prompt, no stop while urgent ones wait", common
    )
    hook.description = (
        "Run by Claude Code or Codex as a command hook, the hook's JSON on stdin (see `nexysync init --hooks`). "
        "user-prompt-submit adds the messages that are new since its last run to the prompt's context; stop keeps "
        "the turn going while an urgent or blocking message is unread. Both exit 0 and print nothing when there "
        "is nothing to say."
    )
    hook.add_argument("event", choices=["user-prompt-submit", "stop"], help="the hook event")


def _add_a2a(commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    group = commands.add_parser(
        "a2a",
        help="reach this project's agents from A2A clients, and A2A agents from here",
        description="The A2A (Agent2Agent) bridge. Needs the a2a extra: pip install 'nexysync-mcp[a2a]'.",
    )
    sub = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    def token_option(parser: argparse.ArgumentParser, whose: str) -> None:
        parser.add_argument(
            "--token-file",
            metavar="FILE",
            help=f"read {whose} bearer token from FILE's first line ('-': stdin); default: ${a2a.ENV_TOKEN}",
        )

    serve = _agent_options(
        _command(sub, "serve", a2a.run_a2a_serve, "serve the project's agents to A2A clients until Ctrl-C", common)
    )
    serve.description = (
        "Serve agents of this project as A2A agents, each at http://HOST:PORT/SLUG with its card at "
        "/SLUG/.well-known/agent-card.json. This workspace's agent is the bridge: A2A messages reach the exposed "
        "agents as requests from it, and their replies (type response: completed; request: input-required) end the "
        "A2A tasks. Tasks are kept in .nexysync/a2a.db. Any address but a loopback one requires a bearer token."
    )
    serve.add_argument("--expose", required=True, metavar="SLUG[,SLUG...]", help="the agents to serve")
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8790, help="the port to listen on (default: 8790)")
    serve.add_argument(
        "--public-url",
        metavar="URL",
        help="the URL clients reach the bridge at, for the cards (default: http://HOST:PORT)",
    )
    token_option(serve, "the")
    call = _command(sub, "call", a2a.run_a2a_call, "ask an A2A agent and print its answer", common)
    call.add_argument("url", help="the agent's base URL (its card is at URL/.well-known/agent-card.json)")
    call.add_argument("--text", required=True, help="what to ask")
    call.add_argument("--stream", action="store_true", help="print each update of the task as it happens")
    call.add_argument("--task", metavar="ID", help="answer this task (it asked back: input-required)")
    call.add_argument("--context", metavar="ID", help="stay in this conversation")
    call.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the answer (default: 300)")
    token_option(call, "the agent's")


def _run_hook(ctx: Context) -> int:
    from nexysync_cli.hooks import main as run_hook

    return run_hook([ctx.args.event])


def build_parser() -> argparse.ArgumentParser:
    """Build the ``nexysync`` argument parser."""
    common = _common()
    parser = argparse.ArgumentParser(
        prog="nexysync",
        description="Provision NexySync: accounts, projects, agents, key files and editor configs.",
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_account(commands, common)
    _add_projects(commands, common)
    _add_agents(commands, common)
    _add_init(commands, common)
    _add_keys(commands, common)
    _add_pairing(commands, common)
    _add_messaging(commands, common)
    _add_coordination(commands, common)
    _add_a2a(commands, common)
    _add_hook(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nexysync``.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        The exit code: 0 on success, 1 on failure, 2 on bad usage, 130 on Ctrl-C.
    """
    args = build_parser().parse_args(argv)
    output = Output(json_mode=bool(getattr(args, "json", False)))
    ctx = Context(args=args, output=output)
    name = " ".join(part for part in (args.command, getattr(args, "action", None)) if part)
    handler: Handler = args.handler
    try:
        return handler(ctx)
    except BrokenPipeError:
        # The reader went away (`| head`): nothing more to say, and nowhere to say it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except KeyboardInterrupt:
        output.progress("")
        return EXIT_INTERRUPTED
    except (CliError, NexySyncError, DecryptionError, OSError) as error:
        try:
            api_url: str | None = ctx.api_url
        except CliError:
            api_url = None
        output.failure(name, describe(error, api_url))
        return EXIT_ERROR
    finally:
        ctx.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
