"""``nexysync devices list|revoke`` and what the key commands do with devices: register, seal to, sync from.

This machine's device in a project is kept with the project's keys (``<config dir>/projects/``)
and in every key file written for the project, so the MCP server can pick up a rotation too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nexysync import AuthenticationError, Client, DecryptionError, NexySyncError, new_ulid
from nexysync.crypto import new_key
from nexysync.devices import Device, attest, is_attested, new_device, public_key_of, seal_ring, take_ring
from nexysync_cli.context import Context
from nexysync_cli.credentials import OwnerSession
from nexysync_cli.errors import CliError
from nexysync_cli.keyfiles import ProjectKeys, rewrite_key_ring
from nexysync_cli.lookup import find_project
from nexysync_generated.models import Device as ListedDevice

__all__ = [
    "ensure_device",
    "register_device",
    "rotate",
    "run_devices_list",
    "run_devices_revoke",
    "seal_to_devices",
    "sync_from_device",
    "update_key_files",
]

#: Boxes per request (the API takes at most 100).
_BOXES_PER_REQUEST = 100


def update_key_files(project: ProjectKeys) -> tuple[list[str], list[str]]:
    """Write the project's ring (and this machine's device) into every key file registered for it.

    Returns:
        The files updated, and the files dropped from the registry (gone, or now another
        project's).
    """
    updated: list[str] = []
    dropped: list[str] = []
    for name in project.key_files:
        (updated if rewrite_key_ring(Path(name), project) else dropped).append(name)
    project.key_files = updated
    return updated, dropped


def register_device(owner: OwnerSession, project: ProjectKeys, name: str, public_key: str) -> tuple[str, str]:
    """Register a device's public key under the project, attested with the current key; return its id and token."""
    device_id = new_ulid()
    attestation = attest(project.keys, project.project_id, device_id, public_key)

    def register(client: Client) -> tuple[str, str]:
        created = client.devices.register(
            project.project_id, id=device_id, name=name[:64], public_key=public_key, attestation=attestation
        )
        return created.device.id, created.token

    return owner.call(register)


def ensure_device(ctx: Context, owner: OwnerSession, project: ProjectKeys, name: str) -> Device:
    """Return this machine's device in the project, registering one (and saving it) the first time."""
    if project.device is not None:
        return project.device
    private = new_device()
    device_id, token = register_device(owner, project, name, public_key_of(private))
    project.device = Device(device_id, token, private)
    update_key_files(project)
    ctx.project_keys.save(project)
    return project.device


def _fields(device: ListedDevice) -> dict[str, str]:
    return {"id": device.id, "public_key": device.public_key, "attestation": device.attestation}


def _listed(owner: OwnerSession, project_id: str) -> list[ListedDevice]:
    return owner.call(lambda client: client.devices.list(project_id).data)


def seal_to_devices(ctx: Context, owner: OwnerSession, project: ProjectKeys) -> tuple[list[str], list[str]]:
    """Seal the project's ring to every attested device and store the boxes.

    Returns:
        The devices sealed to, and those skipped (their attestation does not hold: not
        registered by a holder of the project key).
    """
    attested: list[ListedDevice] = []
    skipped: list[str] = []
    for device in _listed(owner, project.project_id):
        if is_attested(project.keys, project.project_id, _fields(device)):
            attested.append(device)
        else:
            skipped.append(device.id)
    for device_id in skipped:
        ctx.output.warn(
            f"device {device_id} is not attested by a key of this project (not registered by a machine that holds "
            "the key): no key was sealed to it; revoke it with `nexysync devices revoke`"
        )
    sealed: list[str] = []
    key_id = project.key_ids()[-1]
    for start in range(0, len(attested), _BOXES_PER_REQUEST):
        boxes = [
            {
                "device_id": device.id,
                "key_id": key_id,
                "sealed": seal_ring(
                    project.keys, project_id=project.project_id, device_id=device.id, public_key=device.public_key
                ),
            }
            for device in attested[start : start + _BOXES_PER_REQUEST]
        ]

        def store(client: Client, boxes: list[dict[str, str]] = boxes) -> list[str]:
            return client.devices.seal(project.project_id, boxes=boxes).device_ids

        sealed += owner.call(store)
    return sealed, skipped


def sync_from_device(ctx: Context, project: ProjectKeys) -> int:
    """Read the ring sealed to this machine's device, keep what it adds, and update the key files.

    Returns:
        How many keys it added.

    Raises:
        CliError: the machine has no device in the project, or the box does not open.
    """
    if project.device is None:
        raise CliError(
            f"this machine has no device in project {project.name or project.project_id}: pair it with "
            "`nexysync pair accept`, or run `nexysync pair offer` here once to register it",
            code="NO_DEVICE",
        )
    api_url = project.api_url or ctx.api_url
    try:
        with ctx.client_factory(base_url=api_url, api_key=project.device.token) as client:
            box = client.devices.keys()
    except AuthenticationError as exc:
        raise CliError(
            f"this machine's device in project {project.name or project.project_id} was revoked (or the project "
            "deleted): it gets no new keys; pair it again with `nexysync pair accept`",
            code="DEVICE_REVOKED",
        ) from exc
    if box.sealed is None:
        return 0
    try:
        merged = take_ring(box.sealed, project_id=project.project_id, device=project.device, held=project.keys)
    except DecryptionError as exc:
        raise CliError(str(exc), code="BAD_DEVICE_BOX") from exc
    if merged is None:
        return 0
    added = len(set(merged) - set(project.keys))
    project.keys = merged
    update_key_files(project)
    ctx.project_keys.save(project)
    return added


def rotate(ctx: Context, project: ProjectKeys, owner: OwnerSession | None) -> dict[str, Any]:
    """Add a new key that encrypts from now on, write it everywhere on this machine, and seal it to the devices.

    Without ``owner`` (nobody signed in) the devices are not sealed to, and a warning says so.

    Returns:
        What changed, as the commands report it.
    """
    project.keys.append(new_key())
    updated, dropped = update_key_files(project)
    ctx.project_keys.save(project)
    for name in dropped:
        ctx.output.warn(f"{name} is gone or belongs to another project now; no longer tracked")
    sealed: list[str] = []
    skipped: list[str] = []
    if owner is None:
        ctx.output.warn(
            "not signed in: the new key was not sealed to the project's other machines; run `nexysync login`, "
            "then `nexysync keys rotate` again"
        )
    else:
        try:
            sealed, skipped = seal_to_devices(ctx, owner, project)
        except (CliError, NexySyncError) as error:
            # The key is made and in use here; only the other machines wait for it.
            ctx.output.warn(
                f"the new key was not sealed to the project's other machines ({error}); they keep the old key "
                "until `nexysync keys rotate` runs again with the server reachable"
            )
    return {
        "project_id": project.project_id,
        "key_id": project.key_ids()[-1],
        "key_ids": project.key_ids(),
        "key_files_updated": updated,
        "key_files_dropped": dropped,
        "devices_sealed": sealed,
        "devices_skipped": skipped,
    }


def run_devices_list(ctx: Context) -> int:
    """List the project's paired devices, with whether each is attested by a key this machine holds."""
    owner = ctx.owner()
    found = find_project(owner, ctx.args.project)
    local = ctx.project_keys.load(found.id)
    devices = _listed(owner, found.id)
    data = []
    rows = []
    for device in devices:
        attested = is_attested(local.keys, found.id, _fields(device)) if local else None
        this = local is not None and local.device is not None and local.device.id == device.id
        data.append({**device.model_dump(mode="json"), "attested": attested, "this_machine": this})
        rows.append(
            [
                device.id + (" *" if this else ""),
                device.name,
                device.created_at.strftime("%Y-%m-%d %H:%M"),
                device.key_id or "-",
                {True: "yes", False: "NO", None: "?"}[attested],
            ]
        )
    text = (
        ctx.output.table(rows, ["DEVICE", "NAME", "PAIRED", "SEALED_KEY", "ATTESTED"]) + "\n(* this machine)"
        if rows
        else f"No devices paired into {found.name!r}."
    )
    ctx.output.result(data, text)
    return 0


def run_devices_revoke(ctx: Context) -> int:
    """Revoke a device, then rotate the key so it gets no later one."""
    owner = ctx.owner()
    found = find_project(owner, ctx.args.project)
    device_id: str = ctx.args.device_id
    owner.call(lambda client: client.devices.revoke(found.id, device_id))
    local = ctx.project_keys.load(found.id)
    if local is None:
        ctx.output.warn(
            "this machine holds no key for the project, so it cannot rotate it: run `nexysync keys rotate` "
            "on a machine that does, or the revoked device keeps reading new messages"
        )
        ctx.output.result({"device_id": device_id, "rotated": False}, f"Revoked device {device_id}.")
        return 0
    if local.device is not None and local.device.id == device_id:
        local.device = None
    outcome = rotate(ctx, local, owner)
    ctx.output.result(
        {"device_id": device_id, "rotated": True, **outcome},
        f"Revoked device {device_id}; new key {outcome['key_id']} sealed to {len(outcome['devices_sealed'])} "
        "other device(s). The revoked device gets no later key.",
    )
    return 0
