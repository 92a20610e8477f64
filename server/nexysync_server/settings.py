"""Server settings, read from ``NEXYSYNC_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

_PREFIX = "NEXYSYNC_"
#: The values of ``NEXYSYNC_LOG_FORMAT`` (see logs.py).
LOG_FORMATS = ("text", "json")
#: The values of ``NEXYSYNC_TRACING``: off (""), OTLP/HTTP, or printed (see tracing.py).
TRACING_EXPORTERS = ("", "otlp", "console")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
#: The shortest secret accepted for signing (HS256 tokens, CDN URLs): 256 bits, as RFC 7518 asks.
MIN_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the server can be told from outside.

    Each field ``name`` is read from the environment variable ``NEXYSYNC_<NAME>``.
    """

    mongodb_uri: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    db_name: str = "nexysync"
    # Failing fast while the database is down: how long a request waits for a reachable
    # database (server selection), to connect (also the monitor's check, so not too tight for a
    # busy database), and for one answer on an open connection.
    mongodb_select_timeout_ms: int = 1000
    mongodb_connect_timeout_ms: int = 3000
    mongodb_socket_timeout_ms: int = 10_000
    # The Retry-After (seconds) of a 503 DATABASE_UNAVAILABLE.
    database_retry_after_s: int = 1
    jwt_secret: str = ""
    access_token_ttl_s: int = 900
    refresh_token_ttl_days: int = 30
    max_body_bytes: int = 1_048_576
    default_message_ttl_hours: int = 168
    quota_messages_per_day: int = 1500
    quota_storage_mb: int = 50
    quota_agents: int = 10
    rate_limit_per_minute: int = 600
    heartbeat_s: float = 25.0
    last_seen_interval_s: float = 60.0
    event_ttl_days: float = 7.0
    stream_max_duration_s: float = 3600.0
    stream_retry_ms: int = 2000
    event_gap_wait_s: float = 2.0
    event_poll_interval_s: float = 1.0
    presence_window_s: float = 300.0
    presence_lease_s: float = 30.0
    presence_grace_s: float = 3.0
    presence_batch_s: float = 0.25
    event_content_max_bytes: int = 8192
    # Files and the CDN.
    cdn_url: str = "http://127.0.0.1:8081"
    cdn_secret: str = ""
    files_dir: str = ""
    url_ttl_s: int = 900
    file_max_mb: int = 25
    file_retention_days: float = 30.0
    file_pending_ttl_s: float = 3600.0
    file_sweep_interval_s: float = 60.0
    # Delivery receipts: a step whose teller died is told by the sweep once this old.
    receipt_sweep_interval_s: float = 5.0
    # Abuse resistance (see README "Security model"): limits on every way in, quotas on every byte.
    # Password hashing: Argon2id at OWASP's first recommendation (19 MiB, 2 passes, 1 lane).
    password_hash_memory_kib: int = 19456
    password_hash_iterations: int = 2
    login_failures_per_account: int = 10
    login_failures_per_account_ip: int = 5
    login_failure_window_s: int = 900
    auth_requests_per_ip_per_minute: int = 60
    registrations_per_ip_per_hour: int = 10
    human_rate_limit_per_minute: int = 300
    quota_message_mb_per_day: int = 50
    quota_projects_per_user: int = 10
    max_streams_per_agent: int = 10
    max_owner_streams_per_user: int = 5
    # The bearer token of /metrics on the API and the CDN; without it /metrics does not exist.
    metrics_token: str = ""
    # Connections one worker serves at once (503 SERVER_BUSY beyond): an idle stream costs about
    # 18 KiB, so 10,000 take about 180 MiB beside the worker's 82 MiB at rest; lowered to fit the
    # descriptor limit. See connections.py.
    max_connections_per_worker: int = 10_000
    # Streams one worker holds at once (503 SERVER_BUSY with Retry-After beyond, so the client or
    # HAProxy opens it on another worker); half the connection cap, so requests always get in.
    # See "Capacity" in the README for the figures it is sized from.
    max_streams_per_worker: int = 5_000
    # How long a request's headers may take to arrive (408 beyond).
    header_timeout_s: float = 10.0
    stream_queue_max: int = 1000
    key_check_interval_s: float = 2.0
    # Leases on paths (issue 26).
    lease_max_ttl_s: int = 86_400
    max_leases_per_agent: int = 200
    max_leases_per_project: int = 2_000
    lease_force_after_s: float = 1_800.0
    max_tasks_per_project: int = 5_000
    # Pairing and devices (issue 27).
    pairing_ttl_s: int = 300
    pairings_per_user_per_hour: int = 20
    pairing_accepts_per_ip_per_hour: int = 20
    pairing_requests_per_ip_per_minute: int = 120
    max_devices_per_project: int = 100
    # Send path (issue 15): how long a worker keeps agent keys, slugs and project settings; the
    # bound on another worker's revocation showing here (this worker's own changes apply at once).
    cache_ttl_s: float = 0.5
    read_budget_bytes: int = 4_194_304
    cdn_body_timeout_s: float = 30.0
    # A whole upload must end within cdn_body_timeout_s plus its size at this rate, and never later
    # than its URL's expiry plus the grace: a trickle cannot hold a connection and a lease for ever.
    cdn_min_upload_bytes_per_s: int = 16_384
    cdn_upload_grace_s: float = 60.0
    forwarded_allow_ips: str = "127.0.0.1"
    # "text" (for a terminal) or "json" (one object per line, for a log pipeline); see logs.py.
    log_format: str = "text"
    # OpenTelemetry spans: "" (off), "otlp" (to OTEL_EXPORTER_OTLP_ENDPOINT) or "console"; needs the
    # otel extra. See tracing.py.
    tracing: str = ""

    def __post_init__(self) -> None:
        """Refuse a signing secret that is set but shorter than :data:`MIN_SECRET_BYTES`.

        An empty secret means "not configured" (``dev`` makes one; ``serve`` refuses to start).

        Raises:
            ValueError: a secret is too short to resist guessing offline, or the log format or
                tracing exporter is unknown.
        """
        if self.log_format not in LOG_FORMATS:
            raise ValueError(f"{_PREFIX}LOG_FORMAT={self.log_format!r} is not one of {', '.join(LOG_FORMATS)}")
        if self.tracing not in TRACING_EXPORTERS:
            exporters = ", ".join(filter(None, TRACING_EXPORTERS))
            raise ValueError(f"{_PREFIX}TRACING={self.tracing!r} is not one of {exporters} (or empty: off)")
        for name in ("jwt_secret", "cdn_secret"):
            value = getattr(self, name)
            if value and len(value.encode()) < MIN_SECRET_BYTES:
                raise ValueError(
                    f"{_PREFIX}{name.upper()} is {len(value.encode())} bytes; use at least {MIN_SECRET_BYTES} random "
                    "bytes, e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
                )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from the environment, then apply ``overrides``.

        Raises:
            ValueError: a variable does not parse as the field's type.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in fields(cls):
            raw = env.get(_PREFIX + field.name.upper())
            if raw is None:
                continue
            kind: type[Any] = type(field.default)
            try:
                values[field.name] = _parse(kind, raw)
            except ValueError as exc:
                raise ValueError(f"{_PREFIX}{field.name.upper()}={raw!r} is not a valid {kind.__name__}") from exc
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def _parse(kind: type[Any], raw: str) -> object:
    """Convert a variable's text to a field's type.

    ``bool("false")`` is true, so booleans are read by word (1/true/yes/on, 0/false/no/off).

    Raises:
        ValueError: the text is not a value of that type.
    """
    if kind is str:
        return raw
    if kind is bool:
        word = raw.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise ValueError(raw)
    return kind(raw)
