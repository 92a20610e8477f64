"""The shape of each collection's documents, as the store writes and returns them.

Types only: the store returns these, the services and views read them. A field a document may
lack (written by a later release, or only in some states) is ``NotRequired``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NotRequired, TypedDict


class AgentRef(TypedDict):
    """Who an agent is: enough to record what it did and to announce it (presence, receipts)."""

    _id: str
    project_id: str
    slug: str


class AgentDoc(AgentRef):
    """One document of ``agents``: an agent of a project and the hash of its API key."""

    name: str
    role: str
    capabilities: list[str]
    key_hash: str
    key_prefix: str
    created_at: str
    updated_at: str
    last_seen_at: str | None
    #: Where its unread messages begin: every message addressed to it before this sort key is read.
    unread_floor: NotRequired[str]


class AgentBrief(TypedDict):
    """What a send's ``recipients`` and a message's receipts show of an agent."""

    _id: str
    slug: str
    last_seen_at: str | None


class Announced(TypedDict):
    """What the event log needs of a record it stores with an event (:meth:`.events.EventStore.write_with_records`).

    ``seq`` names the record's event once it is numbered, so that a retry can tell whether the
    event was stored.
    """

    _id: str
    project_id: str
    seq: NotRequired[int]


class UserDoc(TypedDict):
    """One document of ``users``: a human account (the email case-folded)."""

    _id: str
    email: str
    name: str
    password_hash: str
    created_at: str


class ProjectDoc(TypedDict):
    """One document of ``projects``: the isolation boundary, owned by one user."""

    _id: str
    name: str
    owner_id: str
    default_ttl_hours: int
    created_at: str
    updated_at: str


class KvWrite(TypedDict):
    """What every write of a kv entry sets.

    ``write_key`` is the idempotency key of the write; ``counted_bytes`` what the value takes of
    the storage quota (missing from entries written before values counted). ``seq`` is the event
    number of the write once its event is stored.
    """

    value: str
    updated_by: str
    updated_at: str
    write_key: str | None
    seq: int | None
    counted_bytes: NotRequired[int]


class KvDoc(KvWrite):
    """One document of ``kv``: an entry, its ``_id`` being ``"{project_id}:{key}"``."""

    _id: str
    project_id: str
    key: str
    version: int


#: One document of ``refs``: a shared reference, its ``_id`` being ``"{project_id}:{id}"``; ``from``
#: is the author's slug, ``readers`` who may see it (the recipient or everyone, and the author).
RefDoc = TypedDict(
    "RefDoc",
    {
        "_id": str,
        "id": str,
        "project_id": str,
        "sk": str,
        "from_id": str,
        "from": str,
        "to": str | None,
        "readers": list[str],
        "title": str,
        "content": str,
        "source_file": str | None,
        "language": str | None,
        "size_bytes": int,
        "fingerprint": str,
        "created_at": str,
        "seq": NotRequired[int | None],
    },
)

#: One document of ``files``: a file's record (its bytes are in the blob store), ``_id`` being
#: ``"{project_id}:{id}"``. ``upload_token`` and ``lease_until_ms`` (epoch ms) are the upload lease;
#: ``ready_at`` is set when the upload completes.
FileDoc = TypedDict(
    "FileDoc",
    {
        "_id": str,
        "id": str,
        "project_id": str,
        "name": str,
        "size": int,
        "content_type": str | None,
        "status": str,
        "from": str,
        "from_id": str,
        "created_at": str,
        "expires_at": str,
        "pending_until": str,
        "ready_at": NotRequired[str],
        "upload_token": NotRequired[str],
        "lease_until_ms": NotRequired[int],  # missing from files announced before this lease
        "seq": NotRequired[int | None],
    },
)


class Reaction(TypedDict):
    """One reaction to a message: an emoji and the slug of the agent who added it."""

    emoji: str
    agent: str
    created_at: str


class MessageRef(TypedDict):
    """What a receipt needs of a message: which one, who sent it, to whom, and until when it is kept.

    A :data:`MessageDoc` is one; so is what :func:`.messages.carried_ref` reads from a
    ``new_message`` event that carries its message.
    """

    id: str
    project_id: str
    from_id: str
    recipients: list[str]
    expires_at: datetime


#: One document of ``messages``, its ``_id`` being ``"{project_id}:{id}"``. Content fields
#: (``topic``, ``payload``, ``metadata``) are envelopes the server cannot read; ``sk`` is the
#: sort key (a ULID made at store time). ``read_by``, ``acked_by``, ``acks_told`` and
#: ``pinned_by`` hold agent ids; ``reaction_keys`` is ``"{slug}|{emoji}"`` per reaction, for the
#: once-only test; ``rev`` guards the rewrite of the reactions. ``seq`` is that of its
#: ``new_message`` event once stored; ``pinned_by`` is missing from messages stored before pins
#: were per agent.
MessageDoc = TypedDict(
    "MessageDoc",
    {
        "_id": str,
        "id": str,
        "project_id": str,
        "sk": str,
        "from_id": str,
        "from": str,
        "to": str | None,
        "broadcast": bool,
        "type": str,
        "priority": str,
        "reply_to": str | None,
        "topic": str,
        "payload": str,
        "metadata": str | None,
        "recipients": list[str],
        "read_by": list[str],
        "acked_by": list[str],
        "acks_told": list[str],
        "pinned_by": NotRequired[list[str]],
        "reactions": list[Reaction],
        "reaction_keys": list[str],
        "rev": int,
        "fingerprint": str,
        "created_at": str,
        "expires_at": datetime,
        "seq": NotRequired[int],
    },
)


class PathLeaseDoc(TypedDict):
    """One document of ``leases``: one agent's lease on one path, known by its keys (see :mod:`.leases`).

    ``path`` and ``reason`` are envelopes; times are epoch milliseconds; ``token`` is the fencing
    token, above every token granted before it in the project.
    """

    _id: str
    project_id: str
    agent_id: str
    agent: str
    exclusive: bool
    key: str
    ancestors: list[str]
    path: str
    reason: str | None
    token: int
    created_ms: int
    renewed_ms: int
    expires_ms: int


class TaskDoc(TypedDict):
    """One document of ``tasks`` (see :mod:`.tasks`): ``title``, ``body`` and ``result`` are envelopes.

    ``from_id`` is the creator's agent id (named as every idempotent record's, see
    :mod:`.idempotency`); ``version`` grows by one with each change; times are epoch milliseconds.
    """

    _id: str
    id: str
    project_id: str
    sk: str
    from_id: str
    created_by: str
    fingerprint: str
    title: str
    body: str | None
    blocked_by: list[str]
    state: str
    assignee_id: str | None
    assignee: str | None
    result: str | None
    result_by: str | None
    size_bytes: int
    version: int
    created_ms: int
    updated_ms: int
    claimed_ms: int | None


class EventBody(TypedDict):
    """What a client is shown of an event: its number, type, time and what it tells.

    ``data`` is routing, and content only as the sealed envelopes of a small message (see
    :meth:`.messages.MessageStore`); never anything the server can read. The stream also makes
    events of its own (``resume``, ``reset``) that are never stored.
    """

    seq: int
    type: str
    created_at: str
    data: dict[str, Any]


class EventDoc(EventBody):
    """One document of ``events``: the project's realtime log, ``_id`` being ``"{project_id}:{seq}"``.

    ``seq`` numbers a project's events without a gap; a number taken by a write that failed is
    stored as a filler (``type`` ``"filler"``, addressed to nobody). ``recipients`` are agent ids
    or ``"*"`` (everyone).
    """

    _id: str
    project_id: str
    recipients: list[str]
    expires_at: datetime
    #: A ``new_message`` event carrying its message: the sender's id (for the ``delivered`` receipt).
    sender_id: NotRequired[str]


class RefreshTokenDoc(TypedDict):
    """One document of ``refresh_tokens``, ``_id`` being the SHA-256 of the token.

    A token is used once; a family is the chain of tokens of one sign-in, revoked whole when a
    used token comes back (a stolen one).
    """

    _id: str
    user_id: str
    family_id: str
    used: bool
    revoked: bool
    created_at: str
    expires_at: datetime


class AuditDoc(TypedDict):
    """One document of ``audit``: a management action or refusal, who did it and from where."""

    _id: str
    project_id: str | None
    actor: str
    action: str
    target: str
    outcome: str
    source_ip: str
    at: str
    expires_at: datetime


class OwnerLeaseDoc(TypedDict):
    """One document of ``owner_stream_leases``: one open owner stream of a user, renewed while it lives.

    ``expires_ms`` (epoch milliseconds: the embedded database compares date-like strings only to
    the second) passes when its server stops renewing it; ``gc_at`` drops it later.
    """

    _id: str
    user_id: str
    expires_ms: int
    gc_at: datetime


class LeaseDoc(TypedDict):
    """One document of ``presence_leases``: one open stream of an agent, renewed while it lives.

    ``expires_ms`` (epoch milliseconds; ``expires`` is the same as ISO time, for servers of the
    previous version) passes when its server stops renewing it; ``gc_at`` drops it later.
    """

    _id: str
    project_id: str
    agent_id: str
    slug: str
    since: str
    expires: str
    expires_ms: NotRequired[int]
    gc_at: datetime


class PresenceDoc(TypedDict):
    """One document of ``presence_state``: whether an agent was last announced online (``_id``: its id)."""

    _id: str
    project_id: str
    online: bool


class PairingSlotDoc(TypedDict):
    """One document of ``pairing_slots`` (see :mod:`.pairing`), keyed by the slot number.

    Every field but the owner and project is what the two machines relay to each other; none of
    it is secret (SPAKE2 messages, a public key, key confirmations, a box sealed with the key
    only the code holders derive). Times are epoch milliseconds.
    """

    _id: str
    user_id: str
    project_id: str
    state: str
    offer_msg: str
    accept_msg: str | None
    public_key: str | None
    name: str | None
    accept_confirm: str | None
    offer_confirm: str | None
    sealed: str | None
    created_ms: int
    expires_ms: int
    reusable_ms: int
    gc_at: datetime


class DeviceDoc(TypedDict):
    """One document of ``devices`` (see :mod:`.devices`), keyed ``<project_id>:<id>``.

    ``token_hash`` is the SHA-256 of the device token; ``sealed`` is the key ring last sealed to
    the device's public key (opaque here). Times are epoch milliseconds.
    """

    _id: str
    id: str
    project_id: str
    name: str
    public_key: str
    attestation: str
    token_hash: str
    created_ms: int
    sealed: str | None
    key_id: str | None
    sealed_ms: int | None
