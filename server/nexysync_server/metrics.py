"""Prometheus metrics: what each worker counts, and ``/metrics``, the sum over a server's workers.

Under gunicorn every worker is its own process, so the counts go through prometheus-client's
multiprocess mode: the gunicorn config points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory
*before* anything imports prometheus-client (the mode is chosen at import), each worker writes
its values to files there, ``/metrics`` adds them up, and a dead worker's live gauges are dropped
(``mark_process_dead``, see ``gunicorn_conf.child_exit``). ``dev`` is one process and uses the
default registry.

``/metrics`` exists only when ``NEXYSYNC_METRICS_TOKEN`` is set, and answers only to
``Authorization: Bearer <token>``: it is never public by default. No label carries a project,
agent, user or message id: routes are templates (``/v1/messages/{message_id}``), refusals are
codes.
"""

from __future__ import annotations

import hmac
import os
import time
from typing import Any

import falcon
import falcon.asgi
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

#: The environment variable prometheus-client's multiprocess mode reads.
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The mode prometheus-client chose when it was imported (just above): later changes do not count.
_MULTIPROCESS = bool(os.environ.get(MULTIPROC_DIR_ENV))

HTTP_REQUESTS = Counter(
    "nexysync_http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "nexysync_http_request_duration_seconds",
    "Time to answer an HTTP request (streams excluded), by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
HTTP_PROBLEMS = Counter(
    "nexysync_http_problems_total",
    "Problem+json answers, by status and code (429 RATE_LIMITED, 503 DATABASE_UNAVAILABLE, ...).",
    ["status", "code"],
)
STREAMS_OPEN = Gauge(
    "nexysync_streams_open",
    "Server-Sent Event streams open now, by kind (agent, owner).",
    ["kind"],
    multiprocess_mode="livesum",
)
STREAMS_CAP = Gauge(
    "nexysync_streams_cap",
    "Streams the server's workers may hold at once (NEXYSYNC_MAX_STREAMS_PER_WORKER per worker; "
    "0: no cap). Alert on nexysync_streams_open nearing it.",
    multiprocess_mode="livesum",
)

EVENTS_DELIVERED = Counter(
    "nexysync_events_delivered_total",
    "Events handed to open streams (one per stream), by event type.",
    ["type"],
)
STREAMS_ENDED = Counter(
    "nexysync_streams_ended_total",
    "Streams the server ended, by reason: slow_consumer (its queue was full; the standard alert is "
    "a rate above 0), revoked (its key or session ended), stopping (the server drains).",
    ["reason"],
)

FANOUT_DURATION = Histogram(
    "nexysync_fanout_duration_seconds",
    "Time to hand one event to every stream of this process that follows its project (a broadcast's "
    "fan-out; the writes to the sockets follow in each stream's task).",
    buckets=(0.00001, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)
EVENT_LAG = Histogram(
    "nexysync_event_lag_seconds",
    "From an event being stored to its being written to a stream, for live events (a replay after a "
    "reconnection is not lag). The clock is the event's created_at, to the millisecond.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
WATCHER_POLLS = Counter(
    "nexysync_watcher_polls_total",
    "Reads of the event log's change stream, by result: event (news for this process's streams), "
    "seen (written here or brought by the sweeper already, or of a project with no stream here), empty.",
    ["result"],
)
WATCHER_LAG = Histogram(
    "nexysync_watcher_lag_seconds",
    "From an event being stored (by another process) to the change stream bringing it here, for news only.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
DATABASE_ERRORS = Counter(
    "nexysync_database_errors_total",
    "Database operations that failed, by source: request (answered 503 or 500), watcher, sweeper.",
    ["source"],
)
LIMIT_REFUSALS = Counter(
    "nexysync_limit_refusals_total",
    "Requests refused by a limit, by limit: rate limits and streams (429; agent_requests, user_requests, "
    "auth_ip, login_account, login_account_ip, register_ip, streams_per_agent) and quotas (403 "
    "QUOTA_EXCEEDED; messages_per_day, message_bytes_per_day, agents, projects, ...).",
    ["limit"],
)
CONNECTIONS_REFUSED = Counter(
    "nexysync_connections_refused_total",
    "Connections a worker answered or closed before any request reached the app, by reason: "
    "header_timeout (408: headers too slow, or cut to make room), busy (503 SERVER_BUSY), aborted "
    "(past the cap and its overflow, closed unread).",
    ["reason"],
)
CDN_BYTES = Counter(
    "nexysync_cdn_bytes_total",
    "File content through the CDN, by direction (upload: stored; download: sent).",
    ["direction"],
)

#: The route label of a request that matched no route (never the raw path: it may hold ids).
UNMATCHED = "unmatched"
_EVENT_STREAM = "text/event-stream"


class HttpMetrics:
    """Falcon middleware counting every request by route template and status, with its duration."""

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Note when the request started."""
        req.context.metrics_started = time.perf_counter()

    async def process_response(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, resource: object, req_succeeded: bool
    ) -> None:
        """Count the answer; time it unless it is a stream (which lasts as long as its client)."""
        route = req.uri_template or UNMATCHED
        status = str(resp.status_code)
        HTTP_REQUESTS.labels(req.method, route, status).inc()
        code = getattr(req.context, "problem_code", None)  # set by errors.serialize_problem
        if code:
            HTTP_PROBLEMS.labels(status, code).inc()
        started = getattr(req.context, "metrics_started", None)
        if started is not None and not (resp.content_type or "").startswith(_EVENT_STREAM):
            HTTP_DURATION.labels(req.method, route).observe(time.perf_counter() - started)


class MetricsEndpoint:
    """``GET /metrics``: every worker's metrics, to the holder of the metrics token only.

    Args:
        token: The bearer token a scraper must send.
    """

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Answer the metrics in Prometheus' text format."""
        given = (req.get_header("Authorization") or "").encode()
        if not hmac.compare_digest(given, self._expected):
            # (Not errors.Problem: the hub imports this module, and errors imports the services.)
            raise falcon.HTTPUnauthorized(
                description="Send the metrics token (NEXYSYNC_METRICS_TOKEN) as Authorization: Bearer <token>.",
                challenges=['Bearer realm="metrics"'],
            )
        resp.content_type = CONTENT_TYPE_LATEST
        resp.data = generate_latest(_registry())


def _registry() -> Any:
    """Return the registry to read: every worker's files in multiprocess mode, else this process's."""
    if _MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def add_endpoint(app: falcon.asgi.App[Any, Any], token: str) -> None:
    """Serve ``/metrics`` on ``app`` when a token is set (without one the route does not exist: 404)."""
    if token:
        app.add_route("/metrics", MetricsEndpoint(token))
