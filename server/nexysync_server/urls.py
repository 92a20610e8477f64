"""URLs the API hands out, made absolute on the origin (scheme and host) the client reached.

Behind HAProxy the client speaks HTTPS to the proxy and the proxy plain HTTP to the server. The
scheme comes from ``req.scheme``: uvicorn takes ``X-Forwarded-Proto`` into it only from proxies in
``NEXYSYNC_FORWARDED_ALLOW_IPS`` (gunicorn's ``forwarded_allow_ips``), so a client cannot make the
server hand out URLs on a scheme of its choosing. The host is the request's ``Host``, which the
proxy passes through unchanged.
"""

from __future__ import annotations

import falcon.asgi


def origin(req: falcon.asgi.Request) -> str:
    """Return ``scheme://host[:port]`` as the client reached the API."""
    return f"{req.scheme}://{req.netloc}"


def absolute(req: falcon.asgi.Request, url: str) -> str:
    """Return ``url`` made absolute on the request's origin when it is a path (``/v1/...``)."""
    return origin(req) + url if url.startswith("/") else url
