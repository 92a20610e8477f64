"""``ns_lease``: lease workspace paths so that other agents leave them alone (the server sees only keyed hashes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcp_types import ToolAnnotations

from nexysync import ConflictError
from nexysync_mcp.errors import ToolFailure
from nexysync_mcp.output import dumps, iso_time
from nexysync_mcp.tools.record import Answer, Call, Param, Tool
from nexysync_mcp.workspace import Workspace

if TYPE_CHECKING:
    from nexysync.types import Lease

__all__ = ["TOOL", "lease_view"]

#: How long a lease lasts when the call does not say (seconds).
DEFAULT_TTL_S = 1800


def lease_view(lease: Lease) -> dict[str, Any]:
    """Return a lease as the AI sees it: the path, who holds it, until when, why."""
    view: dict[str, Any] = {"path": lease.path, "agent": lease.agent, "until": iso_time(lease.expires_at)}
    if not lease.exclusive:
        view["shared"] = True
    if lease.reason:
        view["reason"] = lease.reason
    return view | {"id": lease.id}


def _normalised(call: Call, paths: list[str]) -> tuple[Workspace, list[str]]:
    from nexysync.paths import normalise

    workspace = Workspace.locate(call.link.source)
    try:
        return workspace, [normalise(path, workspace.root) for path in paths]
    except ValueError as exc:
        raise ToolFailure(f"{exc}. Paths are relative to the workspace {workspace.root}.") from exc


async def claim(call: Call) -> str:
    """Lease each path, all or none; a refusal names each holder."""
    workspace, paths = _normalised(call, call.args.strings("paths", required=True))
    ttl_s = call.args.integer("ttl_s", low=5) or DEFAULT_TTL_S
    leases = call.client.leases
    try:
        granted = await leases.claim_paths(
            paths,
            ttl_s=ttl_s,
            exclusive=not call.args.flag("shared"),
            reason=call.args.text("reason"),
            root=workspace.root,
        )
    except ConflictError as error:
        if error.code != "LEASE_CONFLICT":
            raise
        held = [lease_view(lease) for lease in await leases.conflicts(error)]
        raise ToolFailure(
            "Not granted (nothing was): " + dumps({"held": held}) + ". Work elsewhere, message the holder, "
            "or wait until it ends."
        ) from error
    return dumps({"leased": [lease_view(lease) | {"token": lease.token} for lease in granted.data]})


async def _mine(call: Call, paths: list[str]) -> list[Lease]:
    """Return the caller's live lease on each path (the paths as normalised)."""
    keys = await call.client.leases.path_keys()
    me = (await call.client.me.get()).agent.slug
    live = (await call.client.leases.list(agent=me)).data
    found = []
    for path in paths:
        lease = next((lease for lease in live if lease.key in keys.named(path)), None)
        if lease is None:
            raise ToolFailure(f"You hold no live lease on {path} (ns_lease action=list shows them).")
        found.append(lease)
    return found


async def release(call: Call) -> str:
    """Release the caller's leases on the paths."""
    _, paths = _normalised(call, call.args.strings("paths", required=True))
    mine = await _mine(call, paths)
    for lease in mine:
        await call.client.leases.release(lease.id)
    return dumps({"released": [lease.path for lease in mine]})


async def renew(call: Call) -> str:
    """Extend the caller's leases on the paths by ``ttl_s`` from now."""
    _, paths = _normalised(call, call.args.strings("paths", required=True))
    ttl_s = call.args.integer("ttl_s", low=5) or DEFAULT_TTL_S
    renewed = [await call.client.leases.renew(lease.id, ttl_s) for lease in await _mine(call, paths)]
    return dumps({"renewed": [lease_view(lease) for lease in renewed]})


async def list_leases(call: Call) -> str:
    """Every live lease of the project (or one agent's)."""
    leases = (await call.client.leases.list(agent=call.args.text("agent"))).data
    return dumps({"leases": [lease_view(lease) for lease in leases]})


TOOL = Tool(
    name="ns_lease",
    description=(
        "Lease workspace paths (a file, or a directory/ and all under it) before editing, so other agents "
        "leave them alone; a commit touching another's lease is refused. claim: paths, optional ttl_s (1800), "
        "shared, reason; refused if held (names the holder). release, renew: paths; list: all leases."
    ),
    annotations=ToolAnnotations(
        title="NexySync: path leases", read_only_hint=False, destructive_hint=False, idempotent_hint=False,
        open_world_hint=True,
    ),
    params=(
        Param("paths", "Workspace-relative paths; a directory ends with / (claim, release, renew).", "array"),
        Param("ttl_s", "Seconds until it ends unless renewed (claim, renew).", "integer"),
        Param("shared", "Shared: others may share it, none may hold it alone (claim).", "boolean"),
        Param("reason", "Why, for the others (claim)."),
        Param("agent", "Only this agent's leases (list)."),
    ),
    answers={
        "leased": Answer("array", "granted leases"),
        "held": Answer("array", "leases in the way"),
        "leases": Answer("array", "live leases"),
    },
    actions={"claim": claim, "release": release, "renew": renew, "list": list_leases},
)  # fmt: skip
