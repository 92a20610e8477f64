"""Log lines as text for a terminal, or as one JSON object per line for a log pipeline.

``NEXYSYNC_LOG_FORMAT=json`` sends every record (the server's, gunicorn's and uvicorn's) to
stdout as one JSON object: ``time``, ``level``, ``logger``, ``pid``, ``message``, and, for an
access record, ``request_id``, ``method``, ``route``, ``status``, ``duration_ms`` and
``client``. The access records are written by :class:`AccessLog` (the app knows the route
template and the request id; uvicorn's own access line, which holds the raw path and query, is
switched off). A route is a template (``/v1/messages/{message_id}``), never a path, and nothing
of a request's body, query or headers is written: content never reaches the log, encrypted or
not (``tests/e2e/test_json_logs.py`` sends a sentinel everywhere and looks for it).

gunicorn's master reads :func:`dict_config`, so this module must not import the metrics (whose
multiprocess mode is chosen at import, in the workers).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import falcon.asgi

from .ids import iso
from .settings import Settings

#: The logger of the access records (JSON format only).
ACCESS_LOGGER = "nexysync.access"
#: Fields an access record carries, in this order, besides the common ones.
ACCESS_FIELDS = ("request_id", "method", "route", "status", "duration_ms", "client")
#: The route of a request that matched none (or was refused before routing); tracing says the same.
UNMATCHED = "unmatched"

_access = logging.getLogger(ACCESS_LOGGER)


class JsonFormatter(logging.Formatter):
    """Format a record as one line of JSON (a traceback, if any, in ``exception``)."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON object on one line."""
        document: dict[str, Any] = {
            "time": iso(datetime.fromtimestamp(record.created, UTC)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        for name in ACCESS_FIELDS:
            if hasattr(record, name):
                document[name] = getattr(record, name)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False, default=str)


def skip_caller_lookup() -> None:
    """Stop every log record from walking the stack to find the line that logged it.

    No format here shows the source file, line or function, yet each record (an access line per
    request) paid for finding them: about 4 % of the API's CPU under load. This is the logging
    HOWTO's own optimisation ("Optimization": set ``logging._srcfile`` to ``None``).
    """
    logging._srcfile = None


def dict_config(level: str) -> dict[str, Any]:
    """Return the :func:`logging.config.dictConfig` of the JSON format, for gunicorn and uvicorn alike.

    Every logger propagates to the root's one JSON handler, but the servers' access loggers,
    whose lines :class:`AccessLog` replaces.
    """
    quiet = {"handlers": [], "propagate": False}
    through = {"handlers": [], "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"json": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
        "root": {"level": level.upper(), "handlers": ["json"]},
        "loggers": {
            "gunicorn.error": through,
            "uvicorn": through,
            "uvicorn.error": through,
            "gunicorn.access": quiet,
            "uvicorn.access": quiet,
        },
    }


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Return the options of a ``uvicorn.Config`` for the log format (``dev``): its own text, or JSON."""
    return {"log_config": dict_config("info")} if settings.log_format == "json" else {}


def after_worker_init() -> None:
    """Route uvicorn's error log to the root again in a gunicorn worker (JSON format).

    uvicorn's gunicorn worker gives ``uvicorn.error`` the handlers of ``gunicorn.error`` (none,
    in the JSON configuration) and stops it propagating, which would drop its lines.
    """
    logging.getLogger("uvicorn.error").propagate = True


def access_log(settings: Settings) -> list[AccessLog]:
    """Return the access-log middleware for an app: one in the JSON format, none in text (uvicorn logs)."""
    return [AccessLog()] if settings.log_format == "json" else []


class AccessLog:
    """Falcon middleware writing one access record per request (JSON format only).

    For a stream the duration is the time to open it; the stream's end is in the metrics.
    """

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Note when the request started."""
        req.context.access_started = time.perf_counter()

    async def process_response(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, resource: object, req_succeeded: bool
    ) -> None:
        """Write the record."""
        started = getattr(req.context, "access_started", None)
        duration_ms = round((time.perf_counter() - started) * 1000, 3) if started is not None else None
        route = req.uri_template or UNMATCHED
        fields = {
            "request_id": getattr(req.context, "request_id", None),
            "method": req.method,
            "route": route,
            "status": resp.status_code,
            "duration_ms": duration_ms,
            "client": req.remote_addr,
        }
        _access.info("%s %s %d", req.method, route, resp.status_code, extra=fields)
