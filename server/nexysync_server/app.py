"""The API application factory."""

from __future__ import annotations

import dataclasses
import logging
import secrets
from typing import Any

import falcon
import falcon.asgi

from nexysync_generated import load_spec, spec_path

from .cdn.app import signer_for
from .console.assets import Assets
from .errors import database_error_handler, handle_service_error, handle_unexpected, serialize_problem
from .logs import access_log
from .metrics import HttpMetrics
from .metrics import add_endpoint as add_metrics_endpoint
from .middleware import Authentication, Component, Lifespan, RequestId
from .realtime.hub import Hub
from .realtime.keycheck import KeyCheck
from .realtime.watcher import Watcher
from .resources import (
    Context,
    agents,
    auth,
    devices,
    files,
    health,
    kv,
    leases,
    me,
    messages,
    owner,
    pairing,
    projects,
    realtime,
    refs,
    tasks,
)
from .services import Services
from .services.errors import ServiceError
from .settings import Settings
from .store import Store
from .store.failures import DatabaseError
from .validation import SchemaValidator

log = logging.getLogger(__name__)


class Api(falcon.asgi.App[falcon.asgi.Request, falcon.asgi.Response]):
    """The NexySync API: a Falcon ASGI app that can drain its event streams before it stops.

    Args:
        hub: The realtime hub whose streams :meth:`drain` ends.
        **kwargs: Passed to :class:`falcon.asgi.App`.
    """

    def __init__(self, hub: Hub, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._hub = hub

    def drain(self) -> None:
        """End every open stream (clients reconnect elsewhere) and refuse new ones."""
        self._hub.drain()


def create_app(settings: Settings | None = None) -> Api:
    """Build the ASGI app; the database is opened and indexed at ASGI start-up.

    Args:
        settings: Server settings; read from ``NEXYSYNC_*`` environment variables if omitted.
    """
    settings = settings or Settings.from_env()
    if not settings.jwt_secret:
        # Tokens would not survive a restart nor work across workers; fine for a throwaway run only.
        log.warning("NEXYSYNC_JWT_SECRET is not set; using a random secret for this process only")
        settings = dataclasses.replace(settings, jwt_secret=secrets.token_urlsafe(32))
    if not settings.cdn_secret:
        # The CDN would refuse every URL this process signs; file uploads cannot work.
        log.warning("NEXYSYNC_CDN_SECRET is not set; the CDN will refuse the file URLs this process signs")
        settings = dataclasses.replace(settings, cdn_secret=secrets.token_urlsafe(32))
    spec_text = spec_path().read_text(encoding="utf-8")
    store = Store(settings)
    hub = Hub(
        store.events,
        settings.event_gap_wait_s,
        settings.event_poll_interval_s,
        settings.stream_queue_max,
        settings.max_streams_per_worker,
    )
    hub.on_revoked(store.agents.forget)  # another worker's revocation reaches this one's key cache
    services = Services.build(settings, store, hub)
    ctx = Context(
        settings=settings,
        services=services,
        validator=SchemaValidator(load_spec()),
    )
    components: list[Component] = [
        services.agent_limiter,
        services.user_limiter,
        store.usage,
        hub,
        Watcher(store.events, hub),
        services.presence,
        services.owner_streams,
        KeyCheck(hub, store.agents, services.sessions, settings.key_check_interval_s),
        services.receipts,
        services.path_leases,
        store.expiry,
    ]
    app = Api(
        hub,
        middleware=[
            RequestId(),
            *access_log(settings),
            HttpMetrics(),
            Lifespan(settings, store, components),
            Authentication(settings, store, services),
        ],
    )
    app.req_options.strip_url_path_trailing_slash = True
    app.set_error_serializer(serialize_problem)
    # Falcon picks the most specific handler, so HTTPError (and Problem) still go through its
    # own handler and our serializer; this one only sees unexpected exceptions.
    app.add_error_handler(Exception, handle_unexpected)
    # A service's refusal (a domain error) answers its problem, wherever in the request it came.
    app.add_error_handler(ServiceError, handle_service_error)
    # A database that is down or cannot write answers 503 with Retry-After, never a hang or a 500.
    app.add_error_handler(DatabaseError, database_error_handler(settings.database_retry_after_s))

    add_metrics_endpoint(app, settings.metrics_token)
    app.add_route("/v1/openapi.yaml", health.Spec(spec_text))
    app.add_route("/v1/health/live", health.Live())
    app.add_route("/v1/health/ready", health.Ready(ctx, store.ping))
    app.add_route("/v1/auth/register", auth.Register(ctx))
    app.add_route("/v1/auth/login", auth.Login(ctx))
    app.add_route("/v1/auth/refresh", auth.Refresh(ctx))
    app.add_route("/v1/auth/logout", auth.Logout(ctx))
    app.add_route("/v1/auth/logout-all", auth.LogoutAll(ctx))
    app.add_route("/v1/auth/password", auth.Password(ctx))
    app.add_route("/v1/auth/delete-account", auth.DeleteAccount(ctx))
    app.add_route("/v1/projects", projects.Collection(ctx))
    app.add_route("/v1/projects/{project_id}", projects.Item(ctx))
    app.add_route("/v1/projects/{project_id}/usage", projects.Usage(ctx))
    app.add_route("/v1/projects/{project_id}/audit", projects.Audit(ctx))
    app.add_route("/v1/projects/{project_id}/agents", agents.Collection(ctx))
    app.add_route("/v1/projects/{project_id}/agents/{agent_id}", agents.Item(ctx))
    app.add_route("/v1/projects/{project_id}/agents/{agent_id}/rotate-key", agents.RotateKey(ctx))
    app.add_route("/v1/projects/{project_id}/agents/{agent_id}/clone", agents.Clone(ctx))
    app.add_route("/v1/me", me.Me(ctx))
    app.add_route("/v1/agents", me.Directory(ctx))
    app.add_route("/v1/quota", me.Quota(ctx))
    app.add_route("/v1/messages", messages.Collection(ctx))
    app.add_route("/v1/messages/ack", messages.Ack(ctx))
    app.add_route("/v1/messages/read", messages.MarkRead(ctx))
    app.add_route("/v1/messages/{message_id}", messages.Item(ctx))
    app.add_route("/v1/messages/{message_id}/receipts", messages.MessageReceipts(ctx))
    app.add_route("/v1/messages/{message_id}/thread", messages.Thread(ctx))
    app.add_route("/v1/messages/{message_id}/reactions", messages.Reactions(ctx))
    app.add_route("/v1/messages/{message_id}/pin", messages.Pin(ctx))
    app.add_route("/v1/stream", realtime.Stream(ctx, hub, services.presence))
    app.add_route("/v1/presence", realtime.PresenceList(ctx))
    app.add_route("/v1/kv", kv.Collection(ctx))
    app.add_route("/v1/leases", leases.Collection(ctx))
    app.add_route("/v1/leases/{lease_id}", leases.Item(ctx))
    app.add_route("/v1/leases/{lease_id}/renew", leases.Renew(ctx))
    app.add_route("/v1/tasks", tasks.Collection(ctx))
    app.add_route("/v1/tasks/{task_id}", tasks.Item(ctx))
    for action in ("claim", "release", "done", "cancel"):
        app.add_route(f"/v1/tasks/{{task_id}}/{action}", tasks.Action(ctx, action))
    app.add_route("/v1/kv/{key}", kv.Item(ctx))
    app.add_route("/v1/refs", refs.Collection(ctx))
    app.add_route("/v1/refs/{ref_id}", refs.Item(ctx))
    signer = signer_for(settings)
    app.add_route("/v1/files", files.Collection(ctx, signer))
    app.add_route("/v1/files/{file_id}", files.Item(ctx, signer))
    app.add_route("/v1/events", realtime.Events(ctx))
    # The owner's read-only view of a whole project (the console reads these).
    app.add_route("/v1/projects/{project_id}/messages", owner.Messages(ctx))
    app.add_route("/v1/projects/{project_id}/messages/{message_id}/receipts", owner.MessageReceipts(ctx))
    app.add_route("/v1/projects/{project_id}/stream", owner.OwnerStream(ctx, hub))
    app.add_route("/v1/projects/{project_id}/presence", owner.Presence(ctx))
    app.add_route("/v1/projects/{project_id}/kv", owner.Kv(ctx))
    app.add_route("/v1/projects/{project_id}/refs", owner.Refs(ctx))
    app.add_route("/v1/projects/{project_id}/leases", owner.Leases(ctx))
    app.add_route("/v1/projects/{project_id}/tasks", owner.Tasks(ctx))
    app.add_route("/v1/projects/{project_id}/files", owner.Files(ctx, signer))
    app.add_route("/v1/pairing", pairing.Collection(ctx))
    app.add_route("/v1/pairing/{number}", pairing.Item(ctx))
    app.add_route("/v1/pairing/{number}/accept", pairing.Accept(ctx))
    app.add_route("/v1/pairing/{number}/finish", pairing.Finish(ctx))
    app.add_route("/v1/projects/{project_id}/devices", devices.Collection(ctx))
    app.add_route("/v1/projects/{project_id}/devices/{device_id}", devices.Item(ctx))
    app.add_route("/v1/projects/{project_id}/device-keys", devices.Keys(ctx))
    app.add_route("/v1/device/keys", devices.Own())
    console = Assets(settings.cdn_url)
    app.add_route("/console", console)
    app.add_route("/console/{name}", console, suffix="asset")
    return app
