"""The bridge's HTTP side: one A2A agent per exposed NexySync agent, on one Starlette app.

Each exposed agent ``SLUG`` has the base URL ``<public URL>/SLUG``: JSON-RPC 2.0 at the base URL
itself, HTTP+JSON under it (``/SLUG/message:send``, ``/SLUG/tasks/{id}``, ...), and its card at
``/SLUG/.well-known/agent-card.json``; with one exposed agent, its card is at the root too. The
A2A SDK's routes serve both bindings (and check the ``A2A-Version`` header; a request without
one is served as A2A 0.3, for older clients); the bridge adds the cards, the bearer token and
what runs the tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes, create_rest_routes
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentProvider,
    AgentSkill,
    HTTPAuthSecurityScheme,
    SecurityRequirement,
    SecurityScheme,
    StringList,
)
from a2a.utils.constants import (
    AGENT_CARD_WELL_KNOWN_PATH,
    PROTOCOL_VERSION_0_3,
    PROTOCOL_VERSION_1_0,
    TransportProtocol,
)
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount

from nexysync_a2a.executor import Bridge, BridgeExecutor

__all__ = ["Exposed", "agent_card", "build_app"]

_MODES = ["text/plain", "application/json"]
#: Seconds a stop gives the A2A SDK to close its handlers (a task waiting on an agent never ends by itself).
_DRAIN_S = 2.0
_SCHEME = "bearer"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class Exposed:
    """A NexySync agent the bridge makes reachable over A2A.

    Attributes:
        slug: Its slug (and the path of its base URL).
        name: Its display name.
        role: Its role (the card's skill).
        capabilities: Its capabilities (the skill's tags).
    """

    slug: str
    name: str
    role: str
    capabilities: tuple[str, ...]


def _skill(agent: Exposed) -> AgentSkill:
    """Return the agent's one skill: its role (``agent`` when it has none), tagged with its capabilities."""
    role = agent.role.strip() or "agent"
    tags = [tag for tag in agent.capabilities if tag.strip()] or [role]
    return AgentSkill(
        id=re.sub(r"[^a-z0-9]+", "-", role.lower()).strip("-") or "agent",
        name=role,
        description=f"{agent.name}'s work as the project's {role}; ask in plain words.",
        tags=tags,
        input_modes=_MODES,
        output_modes=_MODES,
    )


def agent_card(agent: Exposed, base_url: str, *, version: str, token_required: bool) -> AgentCard:
    """Return the A2A card of an exposed agent, served at ``base_url``."""
    who = f"{agent.name} ({agent.role})" if agent.role.strip() else agent.name
    card = AgentCard(
        name=agent.name,
        description=(
            f"{who}, a NexySync agent reached through an A2A bridge on its project's side; between "
            "the bridge and the agent, messages travel end-to-end encrypted."
        ),
        supported_interfaces=[
            AgentInterface(
                url=base_url, protocol_binding=TransportProtocol.JSONRPC.value, protocol_version=PROTOCOL_VERSION_1_0
            ),
            AgentInterface(
                url=base_url, protocol_binding=TransportProtocol.HTTP_JSON.value, protocol_version=PROTOCOL_VERSION_1_0
            ),
            # For 0.3 clients: the SDK adds the card's 0.3 fields (url, preferredTransport) from it.
            AgentInterface(
                url=base_url, protocol_binding=TransportProtocol.JSONRPC.value, protocol_version=PROTOCOL_VERSION_0_3
            ),
        ],
        provider=AgentProvider(organization="NexySync", url=base_url),
        version=version,
        capabilities=AgentCapabilities(streaming=True, push_notifications=False),
        default_input_modes=_MODES,
        default_output_modes=_MODES,
        skills=[_skill(agent)],
    )
    if token_required:
        card.security_schemes[_SCHEME].CopyFrom(
            SecurityScheme(
                http_auth_security_scheme=HTTPAuthSecurityScheme(
                    scheme="Bearer", description="the token the bridge's operator gave you"
                )
            )
        )
        card.security_requirements.append(SecurityRequirement(schemes={_SCHEME: StringList()}))
    return card


class BearerToken:
    """Refuse every request but a card's without ``Authorization: Bearer TOKEN`` (401, and the scheme).

    Args:
        app: The app behind it.
        token: The one token it accepts.
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        self._app = app
        self._token = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope["path"]).endswith(AGENT_CARD_WELL_KNOWN_PATH):
            await self._app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"")
        if hmac.compare_digest(given, self._token):
            await self._app(scope, receive, send)
            return
        body = b'{"error": "this A2A bridge needs Authorization: Bearer <token>"}'
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b'Bearer realm="nexysync-a2a"'),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def build_app(
    bridge: Bridge,
    agents: Sequence[Exposed],
    public_url: str,
    *,
    version: str,
    token: str | None,
) -> Starlette:
    """Return the bridge's app: cards, JSON-RPC and HTTP+JSON for each exposed agent.

    Its lifespan follows the bridge agent's stream and resumes the tasks that were in flight.
    """
    routes: list[BaseRoute] = []
    # The SDK's HTTP+JSON routes end with a Mount("/{tenant}") that takes any /X/... path: after
    # every agent's own routes, or the first agent's would hide the others'.
    tenants: list[BaseRoute] = []
    handlers: list[DefaultRequestHandler] = []
    for agent in agents:
        base = f"/{agent.slug}"
        card = agent_card(agent, public_url + base, version=version, token_required=token is not None)
        handler = DefaultRequestHandler(
            agent_executor=BridgeExecutor(bridge, agent.slug), task_store=bridge.store(agent.slug), agent_card=card
        )
        handlers.append(handler)
        routes += create_agent_card_routes(card, card_url=base + AGENT_CARD_WELL_KNOWN_PATH)
        # 0.3 clients (the method names message/send, ..., and no A2A-Version header) get through too.
        routes += create_jsonrpc_routes(handler, rpc_url=base, enable_v0_3_compat=True)
        for route in create_rest_routes(handler, path_prefix=base, enable_v0_3_compat=True):
            (tenants if isinstance(route, Mount) else routes).append(route)
        if len(agents) == 1:
            routes += create_agent_card_routes(card)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await bridge.resume()
        following = asyncio.get_running_loop().create_task(bridge.relay.run())
        try:
            yield
        finally:
            # Tasks in flight stay in flight: nothing the stop does to them is written (the SDK
            # would record the executors' cancellation as their end), and the next start
            # follows them again. So the stop does not wait for them either.
            bridge.stop_writing()
            following.cancel()
            await bridge.aclose()
            for handler in handlers:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(handler.aclose(), _DRAIN_S)
            await asyncio.gather(following, return_exceptions=True)

    app = Starlette(routes=routes + tenants, lifespan=lifespan)
    if token is not None:
        app.add_middleware(BearerToken, token=token)
    return app
