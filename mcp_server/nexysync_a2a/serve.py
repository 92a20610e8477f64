"""``nexysync a2a serve``: run the bridge for the workspace's agent until interrupted.

The workspace's key is the bridge's own NexySync identity: the A2A requests reach the exposed
agents as messages from it, and their replies come back to it. The bridge listens on
``127.0.0.1`` by default; on any other address it requires a bearer token (given, or made once
and kept in ``.nexysync/a2a-token``, ``0600``), and the cards declare the scheme.
"""

from __future__ import annotations

import ipaddress
import secrets
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import uvicorn

from nexysync import AsyncClient
from nexysync.keyfile import write_private
from nexysync_a2a.app import Exposed, build_app
from nexysync_a2a.executor import Bridge
from nexysync_a2a.store import BRIDGE_FILE, BridgeFile

__all__ = ["TOKEN_FILE", "bridge_token", "is_loopback", "serve"]

TOKEN_FILE = "a2a-token"


def is_loopback(host: str) -> bool:
    """Tell whether ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bridge_token(host: str, given: str | None, key_file: Path) -> tuple[str | None, Path | None]:
    """Return the token the bridge requires (None on a loopback address without one), and the file it was made in.

    A token is required on any address but a loopback one: the given one, else the one kept
    beside the key file, else a new one written there (``0600``).
    """
    if given:
        return given.strip(), None
    if is_loopback(host):
        return None, None
    path = key_file.with_name(TOKEN_FILE)
    if path.exists():
        return path.read_text().strip(), path
    token = secrets.token_urlsafe(32)
    write_private(path, token + "\n")
    return token, path


async def _exposed(client: AsyncClient, slugs: Sequence[str], me: str) -> list[Exposed]:
    agents = {agent.slug: agent async for agent in client.agents.list()}
    missing = [slug for slug in slugs if slug not in agents]
    if missing:
        known = ", ".join(sorted(slug for slug in agents if slug != me)) or "none"
        raise ValueError(f"no agent {', '.join(missing)} in this project (its agents: {known})")
    if me in slugs:
        raise ValueError(f"{me} is the bridge's own agent (this workspace's key): expose the agents it should reach")
    chosen = [agents[slug] for slug in slugs]
    return [Exposed(slug=a.slug, name=a.name, role=a.role, capabilities=tuple(a.capabilities)) for a in chosen]


async def serve(
    key_file: Path,
    slugs: Sequence[str],
    *,
    host: str,
    port: int,
    public_url: str | None,
    token: str | None,
    version: str,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> None:
    """Run the bridge until interrupted.

    Raises:
        ValueError: an exposed slug is not an agent of the project, or is the bridge's own, or the
            bridge's file belongs to another agent.
    """
    async with AsyncClient.from_key_file(key_file) as client:
        me = await client.me.get()
        agents = await _exposed(client, slugs, me.agent.slug)
        file = BridgeFile(key_file.with_name(BRIDGE_FILE), f"{me.project_id}/{me.agent.slug}")
        try:
            bridge = Bridge(client, file, me.agent.slug)
            url = (public_url or f"http://{host}:{port}").rstrip("/")
            app = build_app(bridge, agents, url, version=version, token=token)
            for agent in agents:
                say(f"{agent.slug}: {url}/{agent.slug} (card: {url}/{agent.slug}/.well-known/agent-card.json)")
            say(f"A2A messages reach them from {me.agent.slug}; tasks are kept in {file.path}")
            config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
            await uvicorn.Server(config).serve()
        finally:
            file.close()
