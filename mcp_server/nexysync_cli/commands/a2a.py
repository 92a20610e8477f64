"""``nexysync a2a serve`` and ``nexysync a2a call``: the A2A bridge, both ways.

Both need the ``a2a`` extra (``pip install 'nexysync-mcp[a2a]'``): the A2A SDK is imported only
here, so the rest of the CLI works without it.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from nexysync import keyfile
from nexysync_cli import __version__
from nexysync_cli.context import Context
from nexysync_cli.errors import EXIT_ERROR, CliError
from nexysync_cli.keyfiles import agent_key_file
from nexysync_cli.secret_input import read_secret

__all__ = ["ENV_TOKEN", "run_a2a_call", "run_a2a_serve"]

#: The bearer token (the bridge's, or the called agent's) without a file or the process list.
ENV_TOKEN = "NEXYSYNC_A2A_TOKEN"

_FAILED = {"failed", "rejected", "canceled"}


def _need_sdk() -> None:
    try:
        import a2a  # noqa: F401
    except ImportError as exc:
        raise CliError(
            "the A2A bridge needs the a2a extra: pip install 'nexysync-mcp[a2a]'", code="A2A_NOT_INSTALLED"
        ) from exc


def _token(ctx: Context) -> str | None:
    source: str | None = ctx.args.token_file
    if source:
        return read_secret(source, "bearer token", prompt="Bearer token: ")
    return os.environ.get(ENV_TOKEN) or None


def run_a2a_serve(ctx: Context) -> int:
    """Run the bridge for the workspace's agent until Ctrl-C."""
    _need_sdk()
    from nexysync_a2a.serve import bridge_token, serve

    args = ctx.args
    key_file = agent_key_file(args.key_file, args.dir)
    slugs = [slug.strip() for slug in args.expose.split(",") if slug.strip()]
    if not slugs:
        raise CliError("name at least one agent to expose: --expose SLUG[,SLUG...]", code="NOTHING_EXPOSED")
    token, made = bridge_token(args.host, _token(ctx), key_file)
    if made is not None:
        ctx.output.progress(f"listening on {args.host}: A2A clients need the bearer token in {made}")
    try:
        asyncio.run(
            serve(
                key_file,
                slugs,
                host=args.host,
                port=args.port,
                public_url=args.public_url,
                token=token,
                version=__version__,
                say=ctx.output.progress,
            )
        )
    except ValueError as exc:
        raise CliError(str(exc), code="A2A_BRIDGE") from exc
    return 0


def run_a2a_call(ctx: Context) -> int:
    """Ask an A2A agent; print where its task ended and its answer."""
    _need_sdk()
    import httpx
    from a2a.client.errors import A2AClientTimeoutError
    from a2a.utils.errors import A2AError

    from nexysync_a2a.call import TOKENS_FILE, call, http_status, token_for

    args = ctx.args

    def update(state: str, text: str) -> None:
        if args.stream:
            ctx.output.progress(f"{state}: {text}" if text else state)

    token = _token(ctx)
    if token is None:
        key_file = keyfile.find_key_file(Path.cwd())
        if key_file is not None:
            try:
                token = token_for(args.url, key_file.parent)
            except ValueError as exc:
                raise CliError(str(exc), code="A2A_TOKENS") from exc
    try:
        result = asyncio.run(
            call(
                args.url,
                args.text,
                token=token,
                stream=args.stream,
                task_id=args.task,
                context_id=args.context,
                timeout=args.timeout,
                on_update=update,
            )
        )
    except A2AClientTimeoutError as exc:
        hint = "" if args.stream else "; --stream shows the task's id as soon as it exists"
        raise CliError(
            f"{args.url}: no answer within {args.timeout:g} s (the agent may still be at it{hint})", code="A2A_TIMEOUT"
        ) from exc
    except (A2AError, httpx.HTTPError) as exc:
        if http_status(exc) == 401:
            raise CliError(
                f"{args.url} wants a bearer token: --token-file FILE, ${ENV_TOKEN}, or .nexysync/{TOKENS_FILE}",
                code="A2A_TOKEN",
            ) from exc
        raise CliError(f"{args.url}: {exc or type(exc).__name__}", code="A2A_CALL") from exc
    ids: list[str] = []
    if result.task_id:
        ids.append(f"task {result.task_id}")
    if result.context_id:
        ids.append(f"context {result.context_id}")
    head = result.state + (f" ({', '.join(ids)})" if ids else "")
    if result.state == "input-required":
        head += f"; answer with --task {result.task_id}"
    value: dict[str, Any] = result.to_dict()
    ctx.output.result(value, f"{head}\n{result.text}" if result.text else head)
    return EXIT_ERROR if result.state in _FAILED else 0
