"""The SDK's requests never try an import that fails: a failed import is retried on every call.

httpx's async transport asks ``sniffio`` which event loop runs, on every request; when it is not
installed the import fails, is not cached, and searches ``sys.path`` again each time (about
0.5 ms of CPU per request). The SDK declares it; this test catches any other such fallback.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

_attempted: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "import" and _attempted is not None:
        _attempted.append(args[0])


sys.addaudithook(_audit)  # audit hooks cannot be removed: it records only while a test asks


@pytest.fixture
def server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _start_recording() -> None:
    global _attempted
    _attempted = []


def _failed_imports() -> list[str]:
    """Stop recording; return the modules asked for since it started that are not imported."""
    global _attempted
    attempted, _attempted = _attempted or [], None
    return sorted({name for name in attempted if name not in sys.modules})


def test_the_async_transport_finds_every_module_it_asks_for(server: str) -> None:
    async def requests() -> list[str]:
        async with httpx.AsyncClient(base_url=server) as http:
            await http.get("/")  # the first request's imports are once only
            _start_recording()
            for _ in range(3):
                assert (await http.get("/")).status_code == 200
            return _failed_imports()

    failed = asyncio.run(requests())
    assert failed == [], f"each request tried to import {failed} and failed: declare it in sdk/pyproject.toml"


def test_the_sync_transport_finds_every_module_it_asks_for(server: str) -> None:
    with httpx.Client(base_url=server) as http:
        http.get("/")
        _start_recording()
        for _ in range(3):
            assert http.get("/").status_code == 200
        failed = _failed_imports()
    assert failed == [], f"each request tried to import {failed} and failed: declare it in sdk/pyproject.toml"
