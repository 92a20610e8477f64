"""The shape of each collection's documents, as the store writes and returns them.

Types only: the store returns these, the services and views read them. A field a document may
lack (written by a later release, or only in some states) is ``NotRequired``.
"""

from __future__ import annotations

from typing import TypedDict


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


class AgentBrief(TypedDict):
    """What a send's ``recipients`` and a message's receipts show of an agent."""

    _id: str
    slug: str
    last_seen_at: str | None
