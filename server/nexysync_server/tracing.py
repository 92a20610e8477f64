"""OpenTelemetry tracing: off unless ``NEXYSYNC_TRACING`` is set, and then only with the ``otel`` extra.

``NEXYSYNC_TRACING=otlp`` exports spans over OTLP/HTTP to where the standard ``OTEL_EXPORTER_OTLP_*``
variables say (``http://localhost:4318`` by default); ``console`` prints them, to try it out. The
other standard variables apply too: ``OTEL_SERVICE_NAME`` (default ``nexysync-api`` or
``nexysync-cdn``), ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``, ``OTEL_BSP_*``.

A request is a server span from OpenTelemetry's ASGI middleware (Falcon's own instrumentation is
WSGI-only), named by its route template (``POST /v1/messages``, never an id) and with every
MongoDB command under it as a client span (the pymongo instrumentation, without statements).

Surprises, documented:

* Nothing a client sends reaches a span: no body, no header, no MongoDB statement, no concrete
  path (ids, kv keys) and no query (cursors; a signed CDN URL's query is a credential). The span's
  path attributes hold the route template.
* A stream is one span, as long as the stream; its events are not spans (``send`` spans are off).
* The provider is made per process, after gunicorn forks (the app is not preloaded), and flushed
  when the worker exits. ``dev`` serves the API and the CDN in one process: all its spans are
  ``nexysync-api``'s.
* A request refused before routing (401 from authentication) has no route: its span is named by
  its method alone, as its access record says ``unmatched``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import falcon.asgi

from .logs import UNMATCHED
from .settings import Settings

log = logging.getLogger(__name__)

_MISSING_EXTRA = (
    "NEXYSYNC_TRACING={value} needs OpenTelemetry, which is not installed: "
    "pip install 'nexysync-server[otel]' (or unset NEXYSYNC_TRACING)"
)

_EXTRA_MODULES = (
    "opentelemetry.sdk.trace",
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.instrumentation.asgi",
    "opentelemetry.instrumentation.pymongo",
)

#: This process's tracer provider, once made (one per process: gunicorn forks before the app loads).
_provider: Any = None


def instrument(build: Callable[[Settings], falcon.asgi.App[Any, Any]], settings: Settings, service: str) -> Any:
    """Build an app with ``build(settings)``, traced when ``settings.tracing`` says so.

    Args:
        build: The app factory (``create_app`` or ``create_cdn_app``).
        settings: The server settings.
        service: The service name when ``OTEL_SERVICE_NAME`` does not give one.

    Returns:
        The app itself when tracing is off, else the app inside OpenTelemetry's ASGI middleware
        (which keeps it as ``.app``, where the servers find it to drain).

    Raises:
        RuntimeError: tracing is asked for but the ``otel`` extra is not installed.
    """
    if not settings.tracing:
        return build(settings)
    if not installed():
        raise RuntimeError(missing_extra(settings.tracing))
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    provider = _start(settings.tracing, service)
    app = build(settings)  # after _start: pymongo traces only the clients made once it listens
    app.add_middleware(RouteName())
    return OpenTelemetryMiddleware(
        app,
        default_span_details=_method_only,
        server_request_hook=_scrub,
        tracer_provider=provider,
        exclude_spans=["receive", "send"],
    )


def installed() -> bool:
    """Say whether the ``otel`` extra is installed (the SDK, the exporter and both instrumentations)."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in _EXTRA_MODULES)
    except ModuleNotFoundError:  # a parent package is missing
        return False


def missing_extra(value: str) -> str:
    """Return the error for ``NEXYSYNC_TRACING=value`` without the ``otel`` extra."""
    return _MISSING_EXTRA.format(value=value)


def shutdown() -> None:
    """Export the spans still buffered and stop the provider (a worker's exit); nothing if tracing is off."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def _start(exporter_name: str, service: str, environ: Mapping[str, str] = os.environ) -> Any:
    """Make this process's tracer provider and trace pymongo's commands, once."""
    global _provider
    if _provider is not None:
        return _provider
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

    exporter: SpanExporter
    if exporter_name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    else:
        exporter = ConsoleSpanExporter()
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are read by Resource.create; ours is a default.
    attributes = {} if environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    PymongoInstrumentor().instrument(tracer_provider=provider, capture_statement=False)
    _provider = provider
    log.info("tracing on: %s spans as %s", exporter_name, provider.resource.attributes.get(SERVICE_NAME))
    return provider


def _method_only(scope: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Name a span by its method until the route is known (a path would carry ids)."""
    return str(scope.get("method") or "HTTP"), {}


def _scrub(span: Any, scope: dict[str, Any]) -> None:
    """Take the concrete path and the query out of a new span's attributes, until the route is known.

    A path carries ids and kv keys, a query cursors and (on the CDN) signatures: none of it goes to a
    collector. ``http.target`` and ``url.path`` say ``unmatched`` until :class:`RouteName` sets the
    route template.
    """
    if not span.is_recording():
        return
    _set_route(span, UNMATCHED)
    if "url.query" in (getattr(span, "attributes", None) or {}):
        span.set_attribute("url.query", "REDACTED")


def _set_route(span: Any, route: str) -> None:
    """Set the path-bearing attributes the ASGI middleware wrote (old or new conventions) to ``route``."""
    attributes = getattr(span, "attributes", None) or {}
    for name in ("http.target", "url.path"):
        if name in attributes:
            span.set_attribute(name, route)
    url = attributes.get("http.url")
    if isinstance(url, str):
        parts = urllib.parse.urlsplit(url)
        span.set_attribute("http.url", f"{parts.scheme}://{parts.netloc}{route if route.startswith('/') else ''}")


class RouteName:
    """Falcon middleware: name the request's span by its route template and set ``http.route``."""

    def __init__(self) -> None:
        from opentelemetry import trace  # the otel extra: imported only when tracing is on

        self._current_span = trace.get_current_span

    async def process_resource(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, resource: object, params: dict[str, Any]
    ) -> None:
        """Rename the current span once Falcon has routed the request."""
        span = self._current_span()
        if req.uri_template and span.is_recording():
            span.update_name(f"{req.method} {req.uri_template}")
            span.set_attribute("http.route", req.uri_template)
            _set_route(span, req.uri_template)
