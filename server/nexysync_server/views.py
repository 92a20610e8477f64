"""What the API shows of each stored record: the renderers of the contract's schemas.

A renderer takes a document as the store holds it and returns the representation the
contract names (``Message``, ``KvEntry``, ``Agent``, ...), never a field the schema does not list.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from .ids import iso, iso_ms
from .store.documents import (
    AgentDoc,
    AuditDoc,
    DeviceDoc,
    EventBody,
    FileDoc,
    KvDoc,
    MessageDoc,
    PairingSlotDoc,
    PathLeaseDoc,
    ProjectDoc,
    RefDoc,
    TaskDoc,
    UserDoc,
)
from .store.files import READY
from .store.pairing import view_state
from .store.receipts import STATES, state_of


def agent(doc: AgentDoc) -> dict[str, Any]:
    """Return the API representation of an agent."""
    return {
        "id": doc["_id"],
        "project_id": doc["project_id"],
        "slug": doc["slug"],
        "name": doc["name"],
        "role": doc["role"],
        "capabilities": doc["capabilities"],
        "key_prefix": doc["key_prefix"],
        "created_at": doc["created_at"],
        "updated_at": doc["updated_at"],
        "last_seen_at": doc.get("last_seen_at"),
    }


def audit_entry(doc: AuditDoc) -> dict[str, Any]:
    """Return the API representation of an audit entry."""
    return {
        "id": doc["_id"],
        "at": doc["at"],
        "actor": doc["actor"],
        "action": doc["action"],
        "target": doc["target"],
        "outcome": doc["outcome"],
        "source_ip": doc["source_ip"],
    }


def event(doc: EventBody) -> dict[str, Any]:
    """Return the API representation of an event."""
    return {"seq": doc["seq"], "type": doc["type"], "created_at": doc["created_at"], "data": doc["data"]}


def file(doc: FileDoc, download_url: str | None = None) -> dict[str, Any]:
    """Return the API representation of a file (``download_url`` only for a ready one)."""
    return {
        "id": doc["id"],
        "project_id": doc["project_id"],
        "name": doc["name"],
        "size": doc["size"],
        "content_type": doc["content_type"],
        "status": doc["status"],
        "from": doc["from"],
        "created_at": doc["created_at"],
        "expires_at": doc["expires_at"],
        "download_url": download_url if doc["status"] == READY else None,
    }


def kv_entry(doc: KvDoc) -> dict[str, Any]:
    """Return the API representation of a kv entry."""
    return {
        "key": doc["key"],
        "value": doc["value"],
        "version": doc["version"],
        "updated_by": doc["updated_by"],
        "updated_at": doc["updated_at"],
    }


def status_for(doc: MessageDoc, agent_id: str) -> str:
    """Return a message's state for one agent: acked, read or unread for a recipient, else sent."""
    if agent_id not in doc["recipients"]:
        return "sent"
    if agent_id in doc["acked_by"]:
        return "acked"
    if agent_id in doc["read_by"]:
        return "read"
    return "unread"


def lease(doc: PathLeaseDoc) -> dict[str, Any]:
    """Return the API representation of a lease (its path and reason sealed)."""
    return {
        "id": doc["_id"],
        "agent": doc["agent"],
        "exclusive": doc["exclusive"],
        "key": doc["key"],
        "ancestors": doc["ancestors"],
        "path": doc["path"],
        "reason": doc["reason"],
        "token": doc["token"],
        "created_at": iso_ms(doc["created_ms"]),
        "renewed_at": iso_ms(doc["renewed_ms"]),
        "expires_at": iso_ms(doc["expires_ms"]),
    }


def pairing_slot(doc: PairingSlotDoc) -> dict[str, Any]:
    """Return the API representation of a pairing slot (all of it is what the two machines relay)."""
    return {
        "number": doc["_id"],
        "state": view_state(doc),
        "expires_at": iso_ms(doc["expires_ms"]),
        "offer_msg": doc["offer_msg"],
        "accept_msg": doc["accept_msg"],
        "public_key": doc["public_key"],
        "name": doc["name"],
        "accept_confirm": doc["accept_confirm"],
        "offer_confirm": doc["offer_confirm"],
        "sealed": doc["sealed"],
    }


def device(doc: DeviceDoc) -> dict[str, Any]:
    """Return the API representation of a device (never its token or its box)."""
    return {
        "id": doc["id"],
        "name": doc["name"],
        "public_key": doc["public_key"],
        "attestation": doc["attestation"],
        "created_at": iso_ms(doc["created_ms"]),
        "sealed_at": None if doc["sealed_ms"] is None else iso_ms(doc["sealed_ms"]),
        "key_id": doc["key_id"],
    }


def device_keys(doc: DeviceDoc) -> dict[str, Any]:
    """Return what a device reads of itself: its sealed key ring."""
    return {
        "device_id": doc["id"],
        "project_id": doc["project_id"],
        "key_id": doc["key_id"],
        "sealed": doc["sealed"],
        "sealed_at": None if doc["sealed_ms"] is None else iso_ms(doc["sealed_ms"]),
    }


def task(doc: TaskDoc) -> dict[str, Any]:
    """Return the API representation of a task (its title, body and result sealed)."""
    result = None
    if doc["state"] == "done":
        result = {"task": doc["id"], "by": doc["result_by"], "text": doc["result"]}
    return {
        "id": doc["id"],
        "title": doc["title"],
        "body": doc["body"],
        "state": doc["state"],
        "created_by": doc["created_by"],
        "assignee": doc["assignee"],
        "blocked_by": doc["blocked_by"],
        "result": result,
        "created_at": iso_ms(doc["created_ms"]),
        "updated_at": iso_ms(doc["updated_ms"]),
        "claimed_at": None if doc["claimed_ms"] is None else iso_ms(doc["claimed_ms"]),
    }


def message(doc: MessageDoc, agent_id: str) -> dict[str, Any]:
    """Return the API representation of a message as ``agent_id`` sees it."""
    return {
        "id": doc["id"],
        "project_id": doc["project_id"],
        "from": doc["from"],
        "to": doc["to"],
        "broadcast": doc["broadcast"],
        "type": doc["type"],
        "priority": doc["priority"],
        "reply_to": doc["reply_to"],
        "topic": doc["topic"],
        "payload": doc["payload"],
        "metadata": doc["metadata"],
        "status": status_for(doc, agent_id),
        "pinned": agent_id in doc.get("pinned_by", ()),
        "reactions": doc["reactions"],
        "created_at": doc["created_at"],
        "expires_at": iso(doc["expires_at"]),
    }


def furthest_status(doc: MessageDoc) -> str:
    """Return the furthest state any recipient has reached (the owner's view of a message)."""
    if doc["acked_by"]:
        return "acked"
    return "read" if doc["read_by"] else "unread"


def owner_message(doc: MessageDoc, agent_id: str | None) -> dict[str, Any]:
    """Return a message as the project's owner sees it: its state for ``agent_id``, else :func:`furthest_status`."""
    if agent_id is not None:
        return message(doc, agent_id)
    return {**message(doc, ""), "status": furthest_status(doc), "pinned": bool(doc.get("pinned_by"))}


def project(doc: ProjectDoc) -> dict[str, Any]:
    """Return the API representation of a project."""
    return {
        "id": doc["_id"],
        "name": doc["name"],
        "owner_id": doc["owner_id"],
        "default_ttl_hours": doc["default_ttl_hours"],
        "created_at": doc["created_at"],
        "updated_at": doc["updated_at"],
    }


def _times(doc: dict[str, Any] | None) -> dict[str, str | None]:
    """Return when a receipt reached each state past ``queued`` (``None`` where it did not)."""
    return {f"{state}_at": (doc or {}).get(f"{state}_at") for state in STATES[1:]}


def receipt(message: MessageDoc, slug: str, doc: dict[str, Any] | None) -> dict[str, Any]:
    """Return the API representation of one recipient's receipt (``doc``: its receipt document, if any)."""
    return {"agent": slug, "state": state_of(doc), "queued_at": message["created_at"], **_times(doc)}


def receipt_summary(recipients: int, docs: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Count a message's copies per state; copies without a receipt document are queued."""
    counts = Counter(state_of(doc) for doc in docs)
    counts["queued"] += recipients - sum(counts.values())
    return {state: counts[state] for state in STATES}


def ref(doc: RefDoc) -> dict[str, Any]:
    """Return the API representation of a reference."""
    return {
        "id": doc["id"],
        "project_id": doc["project_id"],
        "from": doc["from"],
        "to": doc["to"],
        "title": doc["title"],
        "content": doc["content"],
        "source_file": doc["source_file"],
        "language": doc["language"],
        "size_bytes": doc["size_bytes"],
        "created_at": doc["created_at"],
    }


def user(doc: UserDoc) -> dict[str, Any]:
    """Return the API representation of a user."""
    return {"id": doc["_id"], "email": doc["email"], "name": doc["name"], "created_at": doc["created_at"]}
