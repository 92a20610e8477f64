"""Devices: the machines paired into a project, each with an X25519 public key, and their sealed boxes.

The server never sees a project key. A machine that rotates the key lists the devices, checks
each attestation (a MAC under a key derived from the project key, so the server cannot add a
device of its own), seals the ring to each public key and stores the boxes here; every agent of
the project gets one ``device_keys`` event, and a device reads its own box with its token.
Revoking a device deletes it, its token and its box, so no later ring is sealed to it.
"""

from __future__ import annotations

from typing import Any

from ..realtime.hub import Hub
from ..security import new_device_token, sha256_hex
from ..settings import Settings
from ..store import Store
from ..store.devices import DeviceIdTaken
from ..store.documents import DeviceDoc
from ..store.events import EVERYONE
from .audit import Actor, AuditTrail
from .errors import Conflict, Forbidden, NotFound
from .projects import Projects


class Devices:
    """Register, list and revoke devices; store and read their sealed key rings.

    Args:
        store: The devices.
        hub: Where ``device_keys`` is announced.
        settings: The device limit.
        projects: Who owns which project.
        audit: Where registrations, revocations and seals are recorded.
    """

    def __init__(self, store: Store, hub: Hub, settings: Settings, projects: Projects, audit: AuditTrail) -> None:
        self._devices = store.devices
        self._hub = hub
        self._limit = settings.max_devices_per_project
        self._projects = projects
        self._audit = audit

    async def of_project(self, user_id: str, project_id: str) -> list[DeviceDoc]:
        """Return the devices of a project of the user, oldest first.

        Raises:
            ServiceError: ``PROJECT_NOT_FOUND`` (404).
        """
        await self._projects.owned(user_id, project_id)
        return await self._devices.of_project(project_id)

    async def register(
        self, actor: Actor, user_id: str, project_id: str, body: dict[str, Any]
    ) -> tuple[DeviceDoc, str]:
        """Register a device; return it and its token (shown once).

        Raises:
            ServiceError: ``PROJECT_NOT_FOUND`` (404); ``DEVICE_LIMIT`` (403); ``ID_CONFLICT`` (409).
        """
        await self._projects.owned(user_id, project_id)
        if await self._devices.count(project_id) >= self._limit:
            raise Forbidden("DEVICE_LIMIT", f"The project has {self._limit} devices, as many as it may; revoke one.")
        token = new_device_token()
        try:
            device = await self._devices.add(
                project_id, body["id"], body["name"], body["public_key"], body["attestation"], sha256_hex(token)
            )
        except DeviceIdTaken as exc:
            raise Conflict("ID_CONFLICT", f"Device {body['id']} is registered already.") from exc
        await self._audit.record(actor, project_id, "device.register", f"device:{device['id']}")
        return device, token

    async def revoke(self, actor: Actor, user_id: str, project_id: str, device_id: str) -> None:
        """Delete a device, its token and its box.

        Raises:
            ServiceError: ``PROJECT_NOT_FOUND``, ``DEVICE_NOT_FOUND`` (404).
        """
        await self._projects.owned(user_id, project_id)
        if not await self._devices.delete(project_id, device_id):
            raise NotFound(f"Device {device_id}", "DEVICE_NOT_FOUND")
        await self._audit.record(actor, project_id, "device.revoke", f"device:{device_id}")

    async def seal(self, actor: Actor, user_id: str, project_id: str, boxes: list[dict[str, Any]]) -> list[str]:
        """Store each device's new box, all or none as far as the devices go; announce them.

        Returns:
            The devices whose box was stored.

        Raises:
            ServiceError: ``PROJECT_NOT_FOUND`` (404); ``DEVICE_NOT_FOUND``, ``DUPLICATE_DEVICE`` (409).
        """
        await self._projects.owned(user_id, project_id)
        ids = [box["device_id"] for box in boxes]
        if len(set(ids)) != len(ids):
            raise Conflict("DUPLICATE_DEVICE", "Each device gets one box per request.")
        known = {device["id"] for device in await self._devices.of_project(project_id)}
        unknown = [device_id for device_id in ids if device_id not in known]
        if unknown:
            raise Conflict(
                "DEVICE_NOT_FOUND",
                f"Not devices of this project (revoked?): {', '.join(unknown)}; nothing was stored.",
                {"device_ids": unknown},
            )
        # A device revoked between the check and its write is skipped: its box has nowhere to go.
        stored = [box["device_id"] for box in boxes if await self._devices.seal(project_id, **box)]
        await self._audit.record(actor, project_id, "device.keys.seal", f"devices:{len(stored)}")
        await self._hub.emit(project_id, "device_keys", [EVERYONE], {"device_ids": stored})
        return stored

    async def by_token(self, token: str) -> DeviceDoc | None:
        """Return the device a token belongs to, or None."""
        return await self._devices.by_token(sha256_hex(token))
