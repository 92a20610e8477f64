"""Helpers for realtime tests: a minimal SSE reader, seeded teams and envelope-making senders."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx

from nexysync.crypto import KeyRing, new_key
from nexysync_server.ids import new_id


@dataclass
class Frame:
    """One SSE frame: an event (``kind == "event"``) or a comment such as a heartbeat."""

    kind: str
    at: float
    comment: str = ""
    event: str = ""
    id: int | None = None
    data: dict[str, Any] | None = None


class EventStream:
    """``GET /v1/stream`` (or the stream at ``path``) frame by frame; an async context manager that drops it on exit."""

    def __init__(
        self, base_url: str, api_key: str, last_event_id: int | None = None, path: str = "/v1/stream", **params: str
    ) -> None:
        self._client = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(10, read=None))
        headers = {"Authorization": f"Bearer {api_key}"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self._request = self._client.stream("GET", path, headers=headers, params=params)
        self.response: httpx.Response | None = None
        self._lines: Any = None

    async def __aenter__(self) -> EventStream:
        self.response = await self._request.__aenter__()
        assert self.response.status_code == 200, await self.response.aread()
        self._lines = self.response.aiter_lines()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._request.__aexit__(None, None, None)
        await self._client.aclose()

    async def frame(self, timeout: float = 10.0) -> Frame:
        """Return the next frame, or raise TimeoutError."""
        return await asyncio.wait_for(self._read_frame(), timeout)

    async def _read_frame(self) -> Frame:
        fields: dict[str, str] = {}
        comments: list[str] = []
        data_lines: list[str] = []
        async for line in self._lines:
            if line == "":
                if data_lines:
                    return Frame(
                        kind="event",
                        at=time.monotonic(),
                        event=fields.get("event", "message"),
                        id=int(fields["id"]) if "id" in fields else None,
                        data=json.loads("\n".join(data_lines)),
                    )
                if comments:
                    return Frame(kind="comment", at=time.monotonic(), comment=" ".join(comments))
                continue
            if line.startswith(":"):
                comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data_lines.append(value)
            else:
                fields[name] = value
        raise EOFError("the stream ended")

    async def event(self, timeout: float = 10.0) -> Frame:
        """Return the next event, skipping comments."""
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.frame(max(0.01, deadline - time.monotonic()))
            if frame.kind == "event":
                return frame

    async def messages(self, count: int, timeout: float = 30.0) -> list[Frame]:
        """Return the next ``count`` ``new_message`` events (other events are skipped)."""
        deadline = time.monotonic() + timeout
        found: list[Frame] = []
        while len(found) < count:
            frame = await self.event(max(0.01, deadline - time.monotonic()))
            if frame.event == "new_message":
                found.append(frame)
        return found


class Team:
    """A human owner with one project and named agents, all on one server."""

    def __init__(self, base_url: str, slugs: list[str]) -> None:
        self.base_url = base_url
        self.ring = KeyRing([new_key()])
        http = httpx.Client(base_url=base_url, timeout=10)
        self.email = f"rt-{secrets.token_hex(5)}@example.test"
        tokens = http.post(
            "/v1/auth/register",
            json={
                "email": self.email,
                "name": "Realtime",
                "password": "realtime-pass",
                "tos_accepted": True,
            },
        )
        tokens.raise_for_status()
        http.headers["Authorization"] = f"Bearer {tokens.json()['access_token']}"
        self.owner = http
        self.project_id = http.post("/v1/projects", json={"name": "realtime"}).json()["id"]
        self.keys: dict[str, str] = {}
        for slug in slugs:
            created = http.post(f"/v1/projects/{self.project_id}/agents", json={"slug": slug, "name": slug})
            created.raise_for_status()
            self.keys[slug] = created.json()["api_key"]

    def body(self, to: str | None) -> dict[str, Any]:
        """Return a valid send body (direct to ``to``, or a broadcast when ``to`` is None)."""
        message_id = new_id()

        def seal(field: str) -> str:
            return self.ring.encrypt(
                b"realtime", project_id=self.project_id, kind="message", record_id=message_id, field=field
            )

        body: dict[str, Any] = {
            "id": message_id,
            "type": "notification",
            "topic": seal("topic"),
            "payload": seal("payload"),
        }
        if to is None:
            body["broadcast"] = True
        else:
            body["to"] = to
        return body

    def auth(self, slug: str) -> dict[str, str]:
        """Return the headers that authenticate as agent ``slug``."""
        return {"Authorization": f"Bearer {self.keys[slug]}"}

    async def send(self, client: httpx.AsyncClient, sender: str, to: str | None) -> str:
        """Send one message as ``sender``; return its id."""
        body = self.body(to)
        response = await client.post(f"{self.base_url}/v1/messages", json=body, headers=self.auth(sender))
        assert response.status_code == 201, response.text
        return body["id"]


async def receipt_events(stream: EventStream, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
    """Return the data of the next ``count`` ``message_receipt`` events (others are skipped)."""
    found: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while len(found) < count:
            frame = await stream.event(timeout)
            if frame.event == "message_receipt":
                assert frame.data is not None
                found.append(frame.data["data"])
    return found


async def no_more_receipts(stream: EventStream, team: Team, http: httpx.AsyncClient, to: str = "alice") -> None:
    """Fail if a ``message_receipt`` reaches ``to``'s stream before a marker sent now (a step told twice).

    Events come in ``seq`` order, and a step is told by the server that took it right after its
    request answered, so a step told again by the requests made so far almost always comes before
    the marker's ``new_message`` (this can miss a late duplicate; it never fails a correct server).
    """
    marker = await team.send(http, next(slug for slug in team.keys if slug != to), to)
    async with asyncio.timeout(15):
        while True:
            frame = await stream.event()
            assert frame.event != "message_receipt", frame.data
            if frame.event == "new_message" and frame.data and frame.data["data"]["id"] == marker:
                return
