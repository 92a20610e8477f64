"""Use cases of the API: what a request asks for, independent of HTTP.

A service owns one use case family (accounts, projects, agents, files, messaging, kv, refs,
announcements, receipts, presence, quotas, limits, the audit trail): it reads and writes
through the store, publishes through the realtime hub and refuses with the domain errors of
:mod:`.errors`, which one place (:mod:`nexysync_server.errors`) turns into problem+json.
Services never import falcon.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..realtime.hub import Hub
from ..security import PasswordHasher
from ..settings import Settings
from ..store import Store
from .accounts import Accounts
from .agents import Agents
from .announcements import Announcements
from .audit import AuditTrail
from .devices import Devices
from .feed import EventFeed
from .files import FileService
from .kv import KvService
from .leases import Leases
from .limits import AuthLimits, RateLimiter
from .messaging import Messaging
from .pairing import Pairing
from .presence import Presence
from .projects import Projects
from .quotas import Quotas
from .receipts import Receipts
from .refs import RefService
from .sessions import Sessions
from .streams import OwnerStreams
from .tasks import Tasks


@dataclass(frozen=True, slots=True)
class Services:
    """Every service of one API process, wired to one store and one hub."""

    quotas: Quotas
    audit: AuditTrail
    accounts: Accounts
    sessions: Sessions
    projects: Projects
    agents: Agents
    files: FileService
    feed: EventFeed
    announcements: Announcements
    receipts: Receipts
    path_leases: Leases
    presence: Presence
    owner_streams: OwnerStreams
    messaging: Messaging
    kv: KvService
    refs: RefService
    tasks: Tasks
    pairing: Pairing
    devices: Devices
    #: Requests per agent per minute.
    agent_limiter: RateLimiter
    #: Requests per user per minute on the human-token routes.
    user_limiter: RateLimiter
    auth_limits: AuthLimits

    @classmethod
    def build(cls, settings: Settings, store: Store, hub: Hub) -> Services:
        """Wire the services of a process."""
        quotas = Quotas(settings, store)
        audit = AuditTrail(store.audit)
        auth_limits = AuthLimits(store.auth_counts, settings, audit)
        hasher = PasswordHasher(settings.password_hash_memory_kib, settings.password_hash_iterations)
        announcements = Announcements(store.events, hub)
        receipts = Receipts(store, hub, settings.receipt_sweep_interval_s, settings.receipt_sweep_interval_s)
        sessions = Sessions(store.tokens, settings.cache_ttl_s)
        projects = Projects(store, hub, settings, quotas, audit)
        return cls(
            quotas=quotas,
            audit=audit,
            accounts=Accounts(store, settings, hasher, auth_limits, audit, sessions, projects),
            sessions=sessions,
            projects=projects,
            agents=Agents(store, hub, quotas, audit, settings.presence_window_s),
            files=FileService(store, settings, quotas),
            feed=EventFeed(store.events, settings.event_gap_wait_s),
            announcements=announcements,
            receipts=receipts,
            path_leases=Leases(store, hub, settings),
            presence=Presence(
                store.presence,
                hub,
                settings.presence_lease_s,
                settings.presence_grace_s,
                settings.presence_batch_s,
            ),
            owner_streams=OwnerStreams(
                store.owner_streams, settings.presence_lease_s, settings.max_owner_streams_per_user
            ),
            messaging=Messaging(store, hub, receipts, quotas, settings.read_budget_bytes),
            kv=KvService(store, settings, quotas, announcements),
            refs=RefService(store, settings, quotas, announcements),
            tasks=Tasks(store, hub, settings, quotas),
            pairing=Pairing(store, settings, projects, auth_limits, audit),
            devices=Devices(store, hub, settings, projects, audit),
            agent_limiter=RateLimiter(store.request_counts, settings.rate_limit_per_minute),
            user_limiter=RateLimiter(
                store.request_counts, settings.human_rate_limit_per_minute, "user", "human-rate-limit"
            ),
            auth_limits=auth_limits,
        )
