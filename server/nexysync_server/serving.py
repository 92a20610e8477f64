"""Serve the app with uvicorn (dev) or gunicorn + uvicorn workers (production), draining streams on stop.

SSE streams never finish on their own, and uvicorn's graceful stop waits for open responses.
On SIGTERM or Ctrl-C these servers first tell the app to drain: every open stream gets a last
comment and ends, clients reconnect (elsewhere, in a rolling or blue-green switch) with their
Last-Event-ID and lose nothing; then uvicorn's usual graceful stop runs, bounded in time.
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

import uvicorn
from gunicorn.arbiter import Arbiter  # type: ignore[import-untyped]
from uvicorn_worker import UvicornWorker  # type: ignore[import-untyped]

from . import logs, tracing
from .connections import guarded_protocol
from .settings import Settings

# Left for responses still open after the drain, under gunicorn's graceful_timeout.
_GRACE_MARGIN_S = 5


def api_app() -> Any:
    """Build the API as gunicorn's factory for ``serve`` (once per worker): traced if configured."""
    from .app import create_app  # the whole server: only in the worker that serves it

    logs.skip_caller_lookup()
    return tracing.instrument(create_app, Settings.from_env(), "nexysync-api")


def cdn_app() -> Any:
    """Build the CDN as gunicorn's factory for ``cdn`` (once per worker): traced if configured."""
    from .cdn.app import create_cdn_app

    logs.skip_caller_lookup()
    return tracing.instrument(create_cdn_app, Settings.from_env(), "nexysync-cdn")


def drain_app(app: Any) -> None:
    """Tell the app to end its streams, looking through ASGI wrappers that keep it as ``.app``."""
    seen = 0
    while app is not None and seen < 10:
        drain = getattr(app, "drain", None)
        if callable(drain):
            drain()
            return
        app = getattr(app, "app", None)
        seen += 1


class DrainingServer(uvicorn.Server):
    """A uvicorn server that drains the app's streams as soon as it is asked to stop."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Drain the app's streams, then stop as uvicorn does."""
        if not self.should_exit:
            drain_app(self.config.app)
        super().handle_exit(sig, frame)


class Worker(UvicornWorker):  # type: ignore[misc]  # (UvicornWorker is untyped)
    """A gunicorn worker like ``uvicorn_worker.UvicornWorker`` whose server drains streams on stop.

    Its HTTP protocol caps the worker's connections and times out slow request headers
    (:mod:`.connections`), with ``NEXYSYNC_MAX_CONNECTIONS_PER_WORKER`` and ``NEXYSYNC_HEADER_TIMEOUT_S``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config.timeout_graceful_shutdown = max(1, int(self.cfg.graceful_timeout) - _GRACE_MARGIN_S)
        settings = Settings.from_env()
        self.config.http = guarded_protocol(settings.max_connections_per_worker, settings.header_timeout_s)

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        server = DrainingServer(config=self.config)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
