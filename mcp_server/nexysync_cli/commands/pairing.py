"""``nexysync pair offer|accept``: give a new machine the project key (and an agent) from a short code.

The offering machine holds the project key and is signed in as the owner; the new machine needs
neither. See :mod:`nexysync_cli.pairing` for the exchange. After it, the new machine is a device
of the project: ``nexysync keys rotate`` anywhere seals the new key to it, and it takes it with
``nexysync keys sync`` or when its MCP server runs.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nexysync import NexySyncError
from nexysync.devices import Device, merge_rings, new_device, public_key_of
from nexysync_cli.commands.devices import ensure_device, register_device, update_key_files
from nexysync_cli.commands.init import agent_with_key, editor_configs, mcp_launch
from nexysync_cli.context import Context
from nexysync_cli.errors import CliError, describe
from nexysync_cli.keyfiles import (
    KEY_DIR,
    KEY_FILE,
    ProjectKeys,
    add_to_gitignore,
    decode_key,
    encode_key,
    key_file_fields,
    write_key_file,
)
from nexysync_cli.lookup import find_project, list_agents
from nexysync_cli.pairing import Accepting, Offering, b64, parse_code, unb64
from nexysync_generated.models import PairingSlot

__all__ = ["run_pair_accept", "run_pair_offer"]

#: Seconds one waiting read asks the server to hold (below the SDK's 30 s timeout).
_WAIT_S = 20


def _wait(read: Callable[[str, int], PairingSlot], known: str, deadline: float) -> PairingSlot:
    """Read the slot until it leaves ``known`` or ``deadline`` (monotonic) passes; return it as last read."""
    while True:
        left = deadline - time.monotonic()
        slot = read(known, max(0, min(_WAIT_S, int(left))))
        if slot.state != known or left <= 0:
            return slot
        if left < 1:  # the server answers at once now: do not spin
            time.sleep(0.2)


def _fail_line(ctx: Context, error: Exception) -> None:
    """End a ``--json`` exchange with its outcome line on stdout (the error is reported on stderr too)."""
    if ctx.output.json_mode and isinstance(error, CliError | NexySyncError):
        failure = describe(error, None)
        ctx.output.result({"ok": False, "error": {"code": failure.code, "message": failure.message}})


def _outcome_error(slot: PairingSlot, side: str) -> CliError:
    if slot.state == "expired" or slot.state == "waiting":
        return CliError(
            "the pairing code expired before the other machine used it; offer again", code="PAIRING_EXPIRED"
        )
    if side == "accept":
        return CliError(
            "pairing failed: the code was wrong (or the offer was given up); the code is burned, ask for a new one",
            code="WRONG_CODE",
        )
    return CliError(f"pairing failed: the slot is {slot.state}", code="PAIRING_FAILED")


def run_pair_offer(ctx: Context) -> int:
    """Print a code, wait for the new machine, check its confirmation, and hand over the key ring (and an agent)."""
    try:
        return _offer(ctx)
    except (CliError, NexySyncError) as error:
        _fail_line(ctx, error)
        raise


def _offer(ctx: Context) -> int:
    owner = ctx.owner()
    project = find_project(owner, ctx.args.project)
    keys = ctx.project_keys.load(project.id)
    if keys is None:
        raise CliError(
            f"this machine holds no key for project {project.name!r}: offer from a machine that has it",
            code="NO_PROJECT_KEY",
        )
    slug: str | None = ctx.args.agent
    if slug:
        # Checked before the code is shown, so a bad slug fails here, not after the other side typed it.
        agents = list_agents(owner, project.id)
    # This machine becomes a device too, so a rotation made on the new machine reaches it.
    ensure_device(ctx, owner, keys, socket.gethostname())
    offering = Offering()
    ttl_s: int = ctx.args.ttl
    slot = owner.call(lambda client: client.pairing.create(project.id, b64(offering.message), ttl_s=ttl_s))
    number = slot.number
    code = offering.code(number)
    api_url = owner.api_url
    accept = f"nexysync pair accept {code} --dir <workspace> --api-url {api_url}"
    ctx.output.result(
        {"code": str(code), "number": number, "expires_at": slot.expires_at.isoformat(), "api_url": api_url},
        f"Pairing code: {code}\n(single use, valid until {slot.expires_at.astimezone():%H:%M:%S})\n"
        f"On the new machine run:\n    {accept}",
    )
    ctx.output.progress("Waiting for the other machine...")
    deadline = time.monotonic() + ttl_s + 2

    def read(known: str, wait: int) -> PairingSlot:
        return owner.call(lambda client: client.pairing.get(number, wait=wait, state=known))

    try:
        slot = _wait(read, "waiting", deadline)
        if slot.state != "accepted":
            raise _outcome_error(slot, "offer")
        assert slot.public_key is not None and slot.name is not None
        exchange = offering.answer(
            number, unb64(slot.accept_msg, "SPAKE2 message"), slot.public_key, slot.name, slot.accept_confirm
        )
        if exchange is None:
            raise CliError(
                "the other machine typed a wrong code: nothing was handed over and the code is burned; "
                "offer again and check the words",
                code="WRONG_CODE",
            )
        device_id, token = register_device(owner, keys, slot.name, slot.public_key)
        bundle: dict[str, Any] = {
            "v": 1,
            "project_id": project.id,
            "project_name": project.name,
            "keys": [encode_key(key) for key in keys.keys],
            "device": {"id": device_id, "token": token},
            "agent": None,
        }
        if slug:
            made, existed = agent_with_key(owner, project, slug, agents)
            if existed:
                ctx.output.warn(f"agent {slug!r} already existed: it got a new API key and its old key stopped working")
            bundle["agent"] = {"slug": made.agent.slug, "name": made.agent.name, "api_key": made.api_key}
        sealed = exchange.seal(bundle)
        confirm = exchange.confirmation("offer")
        owner.call(lambda client: client.pairing.finish(number, confirm=confirm, sealed=sealed))
    except BaseException:
        # Whatever went wrong, the code must not stay usable.
        with contextlib.suppress(CliError, NexySyncError):
            owner.call(lambda client: client.pairing.burn(number))
        raise
    ctx.output.result(
        {
            "ok": True,
            "project_id": project.id,
            "device_id": device_id,
            "device_name": slot.name,
            "verification": exchange.verification,
            "agent": slug,
        },
        f"Paired {slot.name!r} (device {device_id}) into {project.name!r}"
        + (f" with agent {slug!r}" if slug else "")
        + f".\nVerification: {exchange.verification} (the other machine shows the same)",
    )
    return 0


def run_pair_accept(ctx: Context) -> int:
    """Complete a pairing from its code and write the workspace's key file."""
    try:
        return _accept(ctx)
    except (CliError, NexySyncError) as error:
        _fail_line(ctx, error)
        raise


def _accept(ctx: Context) -> int:
    code = parse_code(ctx.args.code)
    workspace = Path(ctx.args.dir).expanduser().resolve()
    existing = workspace / KEY_DIR / KEY_FILE
    if existing.exists() and not ctx.args.force:
        # Checked before the code is used, so the code stays good for another --dir.
        raise CliError(
            f"{existing} exists already (its agent would lose its key): pass --force to replace it, or pick "
            "another --dir",
            code="KEY_FILE_EXISTS",
        )
    workspace.mkdir(parents=True, exist_ok=True)
    api_url = ctx.api_url
    name: str = ctx.args.name or socket.gethostname()
    private = new_device()
    public_key = public_key_of(private)
    with ctx.client_factory(base_url=api_url) as client:
        slot = client.pairing.get(code.number)
        if slot.state != "waiting":
            raise (
                _outcome_error(slot, "accept")
                if slot.state == "expired"
                else CliError(
                    "this pairing code was used already (or given up); ask for a new one", code="PAIRING_USED"
                )
            )
        accepting = Accepting(code, unb64(slot.offer_msg, "SPAKE2 message"), public_key, name[:64])
        exchange = accepting.exchange
        client.pairing.accept(
            code.number,
            msg=b64(accepting.message),
            public_key=public_key,
            name=name[:64],
            confirm=exchange.confirmation("accept"),
        )
        ctx.output.progress("Waiting for the other machine to check the code...")

        def read(known: str, wait: int) -> PairingSlot:
            return client.pairing.get(code.number, wait=wait, state=known)

        slot = _wait(read, "accepted", time.monotonic() + 120)
    if slot.state != "done":
        raise _outcome_error(slot, "accept")
    if not exchange.confirms("offer", slot.offer_confirm):
        raise CliError("the other machine's confirmation is wrong: nothing was written", code="WRONG_CODE")
    bundle = exchange.open(slot.sealed)
    written = _write(
        ctx, workspace, api_url, bundle, Device(bundle["device"]["id"], bundle["device"]["token"], private)
    )
    agent = bundle.get("agent") or None
    ctx.output.result(
        {
            "ok": True,
            "project_id": bundle["project_id"],
            "project_name": bundle.get("project_name"),
            "device_id": bundle["device"]["id"],
            "key_file": str(written),
            "agent": agent["slug"] if agent else None,
            "verification": exchange.verification,
        },
        f"Paired into project {bundle.get('project_name')!r}: key file {written}"
        + (
            f" for agent {agent['slug']!r}"
            if agent
            else " (no agent: run `nexysync init --agent SLUG` here, signed in)"
        )
        + f".\nVerification: {exchange.verification} (the other machine shows the same)",
    )
    return 0


def _write(ctx: Context, workspace: Path, api_url: str, bundle: dict[str, Any], device: Device) -> Path:
    """Keep the ring and device in the project key store and write the workspace's key file."""
    try:
        project_id = str(bundle["project_id"])
        keys = [decode_key(str(text), f"key {i} of the bundle") for i, text in enumerate(bundle["keys"])]
    except (KeyError, TypeError) as exc:
        raise CliError(f"the sealed bundle lacks {exc}", code="BAD_PAIRING_MESSAGE") from exc
    store = ctx.project_keys
    project = store.load(project_id) or ProjectKeys(project_id, [], api_url=api_url)
    project.keys = merge_rings(project.keys, keys)
    project.name = bundle.get("project_name") or project.name
    project.api_url = api_url
    project.device = device
    agent = bundle.get("agent") or None
    # Without an agent the file holds the keys only: `nexysync init` (or NEXYSYNC_API_KEY) adds one.
    fields = key_file_fields(
        api_key=agent["api_key"] if agent else None,
        api_url=api_url,
        project=project,
        agent_name=agent["name"] if agent else None,
    )
    # The project's other key files first, then this one (written once, with the device).
    update_key_files(project)
    written = write_key_file(workspace, fields)
    if str(written) not in project.key_files:
        project.key_files.append(str(written))
    store.save(project)
    if add_to_gitignore(workspace):
        ctx.output.progress(f"Added {KEY_DIR}/ to {workspace / '.gitignore'}")
    if agent and (ctx.args.write_config or ctx.args.hooks):
        editor_configs(ctx, workspace, mcp_launch(ctx))
    return written
