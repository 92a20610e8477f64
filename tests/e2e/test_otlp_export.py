"""``NEXYSYNC_TRACING=otlp``: spans reach an OTLP collector, named by route, with MongoDB under them, and no content.

The collector is a small OTLP/HTTP receiver in this process that decodes what the server exports
with OpenTelemetry's own protobuf classes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from realtime_support import Team
from sentinel_support import SENTINEL, requests_carrying_the_sentinel

pytestmark = pytest.mark.e2e

SERVER_KIND = 2  # opentelemetry.proto.trace.v1.Span.SPAN_KIND_SERVER
CLIENT_KIND = 3


@dataclass
class Span:
    service: str
    name: str
    kind: int
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    attributes: dict[str, Any]


class Collector:
    """Receives OTLP/HTTP trace exports; keeps the raw bodies and the decoded spans."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.spans: list[Span] = []
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                collector.receive(self.path, body)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def receive(self, path: str, body: bytes) -> None:
        assert path == "/v1/traces", path
        request = ExportTraceServiceRequest.FromString(body)
        spans = []
        for resource_spans in request.resource_spans:
            resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
                        Span(
                            service=resource.get("service.name", ""),
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id,
                            span_id=span.span_id,
                            parent_span_id=span.parent_span_id,
                            attributes={kv.key: _value(kv.value) for kv in span.attributes},
                        )
                    )
        with self._lock:
            self.bodies.append(body)
            self.spans.extend(spans)

    def wait_for(self, found: Callable[[list[Span]], bool], what: str, timeout_s: float = 15) -> list[Span]:
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                spans = list(self.spans)
            if found(spans):
                return spans
            assert time.monotonic() < deadline, f"{what}: got {sorted({span.name for span in spans})}"
            time.sleep(0.1)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _value(any_value: Any) -> Any:
    return getattr(any_value, any_value.WhichOneof("value")) if any_value.WhichOneof("value") else None


@pytest.fixture
def collector() -> Iterator[Collector]:
    receiver = Collector()
    yield receiver
    receiver.close()


def _traced(collector: Collector) -> dict[str, str]:
    return {
        "NEXYSYNC_TRACING": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }


def test_requests_are_traced_by_route_with_their_database_commands_and_no_content(
    server_processes: Callable[..., str], collector: Collector
) -> None:
    base_url = server_processes(["serve", "--workers", "2"], _traced(collector))
    team = Team(base_url, ["alice", "bob"])
    answers = requests_carrying_the_sentinel(base_url, team)
    with httpx.Client(base_url=base_url, timeout=10) as http:
        sent = _send(http, team)
        read = http.get(f"/v1/messages/{sent['id']}", headers={"Authorization": f"Bearer {team.keys['bob']}"})
    assert read.status_code == 200, read.text

    def sent_and_read(spans: list[Span]) -> bool:
        names = {span.name for span in spans if span.kind == SERVER_KIND}
        return {"POST /v1/messages", "GET /v1/messages/{message_id}", "GET /v1/messages"} <= names

    spans = collector.wait_for(sent_and_read, "the send and the read were not traced")
    servers = [span for span in spans if span.kind == SERVER_KIND]
    assert {span.service for span in spans} == {"nexysync-api"}

    # A send: its span is named by the route, says so and its status, and has its MongoDB commands under it.
    (send,) = [span for span in servers if span.name == "POST /v1/messages" and _status(span) == 201][-1:]
    assert send.attributes["http.route"] == "/v1/messages"
    under_send = [span for span in spans if span.parent_span_id == send.span_id]
    assert under_send, "no database command under the send's span"
    assert all(span.kind == CLIENT_KIND and span.trace_id == send.trace_id for span in under_send)
    assert {span.attributes.get("db.system") for span in under_send} == {"mongodb"}
    # The message and its event are one write (a client bulk write, or inserts where it has none).
    written = {span.name.rsplit(".", 1)[-1] for span in under_send}
    assert written & {"bulkWrite", "insert"}, written

    # No id, kv key, query or content anywhere: not in names, attributes or the raw exports.
    read_span = next(span for span in servers if span.name == "GET /v1/messages/{message_id}")
    assert read_span.attributes.get("http.target", "/v1/messages/{message_id}") == "/v1/messages/{message_id}"
    assert all(sent["id"] not in span.name and sent["id"] not in str(span.attributes) for span in spans)
    exported = b"".join(collector.bodies)
    assert SENTINEL.encode() not in exported and SENTINEL.lower().encode() not in exported
    assert sent["id"].encode() not in exported
    # An unknown path is a span too, without its path.
    assert any(answer.status_code == 404 for answer in answers)
    assert any(span.name == "GET" and span.attributes.get("http.target") == "unmatched" for span in servers)


def test_tracing_is_off_unless_configured(server_processes: Callable[..., str], collector: Collector) -> None:
    settings = _traced(collector)
    del settings["NEXYSYNC_TRACING"]
    base_url = server_processes(["serve", "--workers", "1"], settings)
    with httpx.Client(base_url=base_url, timeout=10) as http:
        _send(http, Team(base_url, ["alice", "bob"]))
    time.sleep(1)  # ten times the export delay the traced server is given
    assert collector.bodies == []


def _send(http: httpx.Client, team: Team) -> dict[str, Any]:
    answer = http.post("/v1/messages", json=team.body("bob"), headers={"Authorization": f"Bearer {team.keys['alice']}"})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _status(span: Span) -> int | None:
    return span.attributes.get("http.status_code", span.attributes.get("http.response.status_code"))
