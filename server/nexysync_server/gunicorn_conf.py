"""Gunicorn settings for ``nexysync-server serve``: one place, read by ``ops/gunicorn.conf.py`` too.

Gunicorn loads this module with ``-c python:nexysync_server.gunicorn_conf`` and reads every
module-level name that is one of its settings. Everything an operator tunes per deployment comes
from ``NEXYSYNC_*`` environment variables, so the same file serves a laptop, a container and a
Kubernetes pod. Command-line flags (``--bind``, ``--workers``) still win over these values.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import tempfile
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from typing import Any

from nexysync_server import logs
from nexysync_server.cdn.signing import RedactSignatures

__all__ = [
    "ACCESS_LOG_FORMAT",
    "accesslog",
    "bind",
    "child_exit",
    "control_socket_disable",
    "errorlog",
    "forwarded_allow_ips",
    "graceful_timeout",
    "keepalive",
    "logconfig_dict",
    "loglevel",
    "on_exit",
    "post_worker_init",
    "proc_name",
    "timeout",
    "worker_class",
    "worker_exit",
    "workers",
]

# Workers beyond this rarely add throughput: each one holds its own MongoDB connection pool and its
# own event-log watcher, and the database, not the CPU, is what saturates first.
_MAX_DEFAULT_WORKERS = 8


def _cpu_count() -> int:
    """Count the CPUs this process may run on (a container's cpuset, not the host's cores)."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return max(os.cpu_count() or 1, 1)


def default_workers(cpus: int | None = None) -> int:
    """Return gunicorn's classic ``2 * cores + 1``, capped at eight.

    Args:
        cpus: CPU count to plan for; this machine's when ``None``.

    Returns:
        The number of worker processes to start.
    """
    return min(2 * (cpus if cpus is not None else _cpu_count()) + 1, _MAX_DEFAULT_WORKERS)


def workers_from_env(environ: MutableMapping[str, str] | None = None) -> int:
    """Read ``NEXYSYNC_WORKERS``, falling back to :func:`default_workers`.

    Args:
        environ: Environment to read; ``os.environ`` when ``None``.

    Returns:
        A positive worker count.

    Raises:
        ValueError: the variable is not a positive integer.
    """
    env = os.environ if environ is None else environ
    raw = env.get("NEXYSYNC_WORKERS", "").strip()
    if not raw:
        return default_workers()
    try:
        count = int(raw)
    except ValueError as exc:
        raise ValueError(f"NEXYSYNC_WORKERS={raw!r} is not an integer") from exc
    if count < 1:
        raise ValueError(f"NEXYSYNC_WORKERS={raw!r} must be at least 1")
    return count


def bind_from_env(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Read ``NEXYSYNC_BIND``: one or more comma-separated ``HOST:PORT`` (or ``unix:PATH``) addresses.

    Args:
        environ: Environment to read; ``os.environ`` when ``None``.

    Returns:
        The addresses to listen on, ``["0.0.0.0:8080"]`` by default.
    """
    env = os.environ if environ is None else environ
    addresses = [part.strip() for part in env.get("NEXYSYNC_BIND", "").split(",") if part.strip()]
    return addresses or ["0.0.0.0:8080"]


# --- the settings gunicorn reads -------------------------------------------------------------

#: File descriptors a server process should be allowed: each SSE stream holds one for hours.
WANTED_DESCRIPTORS = 65_536


def raise_descriptor_limit(wanted: int = WANTED_DESCRIPTORS) -> int:
    """Raise this process's soft limit on open files toward ``wanted`` (never past the hard limit); return it.

    systemd and most container runtimes start a service with a soft limit of 1,024, which a few
    hundred idle streams and their database connections exhaust: every request after that fails
    to accept. The hard limit is usually far higher (the units set ``LimitNOFILE=65536``; Docker
    and Kubernetes give 1,048,576), and a process may raise its soft limit up to it by itself.
    The workers gunicorn forks inherit what the master set here.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


# --- metrics across workers (see nexysync_server/metrics.py) ------------------------------------
#
# prometheus-client picks its multiprocess mode when it is first imported, which happens in each
# worker after the fork (the app is not preloaded): the directory must be in the environment by
# then. Nothing this file imports pulls prometheus-client in (a test checks).

_MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_metrics_dir(environ: MutableMapping[str, str] | None = None) -> tuple[str, bool]:
    """Give the workers an empty directory for their metric files; return it and whether it is ours.

    A directory the operator set is emptied (files of an earlier run would be added in); without
    one, a fresh temporary directory is made, and removed when the server exits.
    """
    env = os.environ if environ is None else environ
    given = env.get(_MULTIPROC_DIR_ENV)
    if given:
        os.makedirs(given, exist_ok=True)
        for name in os.listdir(given):
            if name.endswith(".db"):
                os.remove(os.path.join(given, name))
        return given, False
    made = tempfile.mkdtemp(prefix="nexysync-metrics-")
    env[_MULTIPROC_DIR_ENV] = made
    return made, True


_metrics_dir, _metrics_dir_is_ours = prepare_metrics_dir()


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges (open streams) from the sum (gunicorn hook, in the master)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def worker_exit(server: Any, worker: Any) -> None:
    """Export the worker's last spans when tracing is on (gunicorn hook, in the worker)."""
    from nexysync_server import tracing

    tracing.shutdown()


def on_exit(server: Any) -> None:
    """Remove the metrics directory this config made (gunicorn hook)."""
    if _metrics_dir_is_ours:
        shutil.rmtree(_metrics_dir, ignore_errors=True)


raise_descriptor_limit()
bind = bind_from_env()
workers = workers_from_env()
# uvicorn-worker's ASGI worker (uvicorn's own ``uvicorn.workers`` is deprecated), extended to
# drain SSE streams first on a graceful stop (see nexysync_server/serving.py).
worker_class = "nexysync_server.serving.Worker"
proc_name = "nexysync-server"
# SSE streams never finish on their own. On a graceful stop (SIGTERM, a rollout) a worker stops
# accepting and waits this long for open requests; streams still open are then cut, and their
# clients reconnect elsewhere with Last-Event-ID, losing nothing.
graceful_timeout = 30
# A worker whose event loop stays blocked this long is killed and replaced. Streams are not
# affected: the worker's heartbeat to the arbiter runs on the loop, not per request.
timeout = 60
# HAProxy reuses idle backend connections for up to its ``timeout http-keep-alive``. If the server
# closed them first, a request sent at that instant would fail with a 502, so the server's idle
# timeout must be the longer of the two: keep HAProxy's below 75 s.
keepalive = 75
# Only a proxy we trust may set X-Forwarded-For/-Proto: otherwise any client could forge its
# address in audit logs and rate-limit keys. Behind HAProxy, set this to HAProxy's address (or
# "*" when only the proxy can reach the workers, as in a Kubernetes pod network).
forwarded_allow_ips = os.environ.get("NEXYSYNC_FORWARDED_ALLOW_IPS", "127.0.0.1")
# Logs go to stdout/stderr, where containers and systemd collect them.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("NEXYSYNC_LOG_LEVEL", "info")
# NEXYSYNC_LOG_FORMAT=json: every line (the master's too) one JSON object; see logs.py.
_JSON_LOGS = os.environ.get("NEXYSYNC_LOG_FORMAT", "text") == "json"
logconfig_dict = logs.dict_config(loglevel) if _JSON_LOGS else {}
# Gunicorn 25.1+ opens a runtime-control socket at one per-user path ($HOME/.gunicorn/gunicorn.ctl):
# two servers on a host would take it from each other, and workers are managed by the platform
# (systemd, Kubernetes) anyway. Older gunicorn ignores the unknown name.
control_socket_disable = True

# --- access log with the request id ----------------------------------------------------------
#
# Gunicorn's ``access_log_format`` is not used by uvicorn workers: uvicorn writes its own access
# line to the ``gunicorn.access`` handlers, without the request id. So each worker wraps the app in
# a tiny ASGI layer that notes the response's ``X-Request-Id`` in a context variable just before
# uvicorn logs the response, and the access handlers format that variable into every line. The
# same id is in the problem+json body of any error, so a user's report leads to the log line.

#: Format of one access log line; uvicorn's message is ``client - "METHOD PATH HTTP/x" status``.
ACCESS_LOG_FORMAT = "%(asctime)s [%(process)d] %(message)s request_id=%(request_id)s"

_request_id: ContextVar[str] = ContextVar("nexysync_access_request_id", default="-")

_Scope = MutableMapping[str, Any]
_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]
_ASGIApp = Callable[[_Scope, _Receive, _Send], Awaitable[None]]


def _header(headers: Any, name: bytes) -> str | None:
    """Return the first value of header ``name`` (lower-case bytes) from ASGI headers."""
    for key, value in headers or ():
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class RequestIdCapture:
    """Wrap an ASGI app so the access log knows each response's request id.

    Args:
        app: The ASGI application.
    """

    def __init__(self, app: _ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        """Pass the call through, noting the request id when the response starts."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        # A proxy's id (HAProxy's unique-id) is the fallback when the app sends none, e.g. when
        # it crashed before its middleware ran.
        incoming = _header(scope.get("headers"), b"x-request-id")

        async def send_noting_request_id(message: _Message) -> None:
            if message.get("type") == "http.response.start":
                # Awaited in the request's own task, so uvicorn's log call inside send() sees it.
                _request_id.set(_header(message.get("headers"), b"x-request-id") or incoming or "-")
            await send(message)

        await self.app(scope, receive, send_noting_request_id)


class RequestIdFilter(logging.Filter):
    """Put the current response's request id on each access log record as ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate the record; never drop it."""
        record.request_id = _request_id.get()
        return True


def post_worker_init(worker: Any) -> None:
    """Wrap the loaded app and format the access log with request ids (gunicorn hook).

    Gunicorn calls this in each worker after it loaded the app and before it serves.

    Args:
        worker: The gunicorn worker (a ``nexysync_server.serving.Worker``).
    """
    worker.wsgi = RequestIdCapture(worker.wsgi)
    if _JSON_LOGS:
        logs.after_worker_init()  # its access records come from the app (logs.AccessLog)
        return
    for handler in worker.log.access_log.handlers:
        handler.addFilter(RequestIdFilter())
        # Signed CDN URLs are credentials: their signatures never reach the log.
        handler.addFilter(RedactSignatures())
        handler.setFormatter(logging.Formatter(ACCESS_LOG_FORMAT))
