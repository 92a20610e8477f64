"""Serve the console's static files with a strict Content-Security-Policy."""

from __future__ import annotations

from importlib import resources
from urllib.parse import urlsplit

import falcon
import falcon.asgi

from ..errors import not_found

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


def content_security_policy(cdn_url: str) -> str:
    """Return the console's policy: its own scripts and styles only, no inline code, no eval.

    The one other origin it may reach is the file CDN's (signed download URLs), when the CDN
    is not behind the same origin as the API.
    """
    parts = urlsplit(cdn_url)
    cdn_origin = f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else ""
    connect = " ".join(filter(None, ["'self'", cdn_origin]))
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


class Assets:
    """``GET /console/`` and ``/console/{name}``: the page and its modules, read once from the package.

    Args:
        cdn_url: The CDN's public URL, allowed in ``connect-src`` for file downloads.
    """

    def __init__(self, cdn_url: str) -> None:
        folder = resources.files(__package__).joinpath("static")
        self._files = {
            entry.name: entry.read_bytes()
            for entry in folder.iterdir()
            if entry.is_file() and any(entry.name.endswith(suffix) for suffix in _TYPES)
        }
        self._csp = content_security_policy(cdn_url)

    def _send(self, resp: falcon.asgi.Response, name: str) -> None:
        body = self._files.get(name)
        if body is None:
            raise not_found("Console file", "NOT_FOUND")
        resp.content_type = _TYPES["." + name.rpartition(".")[2]]
        resp.data = body
        resp.set_header("Content-Security-Policy", self._csp)
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("Referrer-Policy", "no-referrer")
        resp.set_header("Cross-Origin-Opener-Policy", "same-origin")
        # Revalidated each time, so an upgraded server never runs with yesterday's modules.
        resp.set_header("Cache-Control", "no-cache")

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Send the page; ``/console`` without the slash is redirected so relative URLs resolve."""
        if not req.scope.get("path", "").endswith("/"):
            raise falcon.HTTPMovedPermanently("console/" if req.path == "/console" else req.path + "/")
        self._send(resp, "index.html")

    async def on_get_asset(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        """Send one of the page's files."""
        self._send(resp, name)
