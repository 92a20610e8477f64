"""``ns_auth``: set this agent's keys for the session, when no key file was found."""

from __future__ import annotations

from mcp_types import ToolAnnotations

from nexysync_mcp.agent import credentials_from_arguments
from nexysync_mcp.output import dumps
from nexysync_mcp.tools.record import Answer, Call, Param, Tool

__all__ = ["TOOL"]


async def authenticate(call: Call) -> str:
    """Check the keys against the API and use them from now on."""
    args, link = call.args, call.link
    current = link.credentials.api_url if link.credentials else None
    credentials = credentials_from_arguments(
        args.required_text("api_key"), args.required_text("enc_key"), args.text("api_url"), current
    )
    me = await link.authenticate(credentials)
    return dumps({"authenticated": me.agent.slug, "project_id": me.project_id, "api_url": credentials.api_url})


TOOL = Tool(
    name="ns_auth",
    description=(
        "Set this agent's NexySync keys for the session when no .nexysync/key was found "
        "(ask the user). Not saved."
    ),
    annotations=ToolAnnotations(
        title="NexySync: set keys", read_only_hint=False, destructive_hint=False, idempotent_hint=True,
        open_world_hint=False,
    ),
    params=(
        Param("api_key", "Agent API key (nsync_...)."),
        Param("enc_key", "Project encryption key: base64 of 32 bytes."),
        Param("api_url", "API root URL; default: the configured one."),
    ),
    required=("api_key", "enc_key"),
    answers={"authenticated": Answer("string", "the agent's slug")},
    handler=authenticate,
)  # fmt: skip
