"""A fake API for the SDK's unit tests: problem answers, an agent, a scripted server, a client on it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import httpx

from nexysync import (
    Client,
    KeyRing,
)

PROJECT = "01JAAAAAAAAAAAAAAAAAAAAAAA"
AGENT = "01JBBBBBBBBBBBBBBBBBBBBBBB"
NOW = "2026-01-01T00:00:00Z"
#: What a client-made id (a ULID) looks like.
ULID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


def problem(status: int, code: str, detail: str = "nope", headers: dict[str, str] | None = None) -> httpx.Response:
    """Return a problem+json response as the server makes them."""
    body = {"type": "about:blank", "title": "Error", "status": status, "detail": detail, "code": code}
    body["request_id"] = "req-123"
    return httpx.Response(
        status,
        json=body,
        headers={"Content-Type": "application/problem+json", "X-Request-Id": "req-123", **(headers or {})},
    )


def agent_json(slug: str = "alice") -> dict[str, Any]:
    """Return an Agent as the server serialises it."""
    return {
        "id": AGENT,
        "project_id": PROJECT,
        "slug": slug,
        "name": slug,
        "role": "",
        "capabilities": [],
        "key_prefix": "nsync_al",
        "created_at": NOW,
        "updated_at": NOW,
        "last_seen_at": None,
    }


class FakeServer:
    """An in-memory stand-in for the message API: stores whatever envelopes it is sent."""

    def __init__(self) -> None:
        self.messages: dict[str, dict[str, Any]] = {}
        self.requests: list[httpx.Request] = []
        self.me_calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/v1/me":
            self.me_calls += 1
            return httpx.Response(200, json={"agent": agent_json(), "project_id": PROJECT})
        if path == "/v1/messages" and request.method == "POST":
            body = json.loads(request.content)
            if body["id"] in self.messages:
                return httpx.Response(200, json=self.messages[body["id"]])
            stored = {
                "id": body["id"],
                "project_id": PROJECT,
                "from": "alice",
                "to": body.get("to"),
                "broadcast": bool(body.get("broadcast", False)),
                "type": body["type"],
                "priority": body.get("priority", "normal"),
                "reply_to": body.get("reply_to"),
                "topic": body["topic"],
                "payload": body["payload"],
                "metadata": body.get("metadata"),
                "status": "sent",
                "pinned": False,
                "reactions": [],
                "created_at": NOW,
                "expires_at": NOW,
            }
            self.messages[body["id"]] = stored
            return httpx.Response(201, json=stored)
        if path == "/v1/messages" and request.method == "GET":
            return httpx.Response(200, json={"data": list(self.messages.values()), "next_cursor": None})
        match = re.fullmatch(r"/v1/messages/([0-9A-Z]{26})", path)
        if match:
            found = self.messages.get(match.group(1))
            return httpx.Response(200, json=found) if found else problem(404, "NOT_FOUND")
        match = re.fullmatch(r"/v1/messages/([0-9A-Z]{26})/thread", path)
        if match:
            return httpx.Response(200, json={"root_id": match.group(1), "data": list(self.messages.values())})
        return problem(404, "NOT_FOUND")


def make_client(handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> tuple[Client, list[float]]:
    """Return a client over a mock transport, and the list its (fake) sleeps are recorded in."""
    sleeps: list[float] = []
    options: dict[str, Any] = {
        "base_url": "http://api.test",
        "api_key": "nsync_alice_" + "0" * 40,
        "key_ring": KeyRing([bytes(range(32))]),
        "project_id": PROJECT,
        "http_client": httpx.Client(transport=httpx.MockTransport(handler)),
        "sleep": sleeps.append,
    }
    options.update(kwargs)
    return Client(**options), sleeps
