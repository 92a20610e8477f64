"""Unit tests of the MCP server's tools: argument checks, error lines, result views and the push cache."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from mcp.server.mcpserver import MCPServer

from nexysync import APIConnectionError, AuthenticationError, DecryptionError, KeyFileError, NotFoundError
from nexysync_generated.models import Message
from nexysync_mcp.agent import AgentLink
from nexysync_mcp.arguments import Arguments
from nexysync_mcp.errors import ToolFailure, describe
from nexysync_mcp.inbox import Entry, Inbox
from nexysync_mcp.notify import announcement
from nexysync_mcp.server import mcp_tool
from nexysync_mcp.tools import SPECS, Reply, Tools, message_view, preview_view

ULID = "01JAAAAAAAAAAAAAAAAAAAAAA{}"
NOW = "2026-01-01T00:00:00Z"


def message(n: int, *, sender: str = "alice", payload: str = "hello", reply_to: str | None = None) -> Message:
    """Return a decrypted message as the SDK gives it."""
    return Message.model_validate(
        {
            "id": ULID.format(n),
            "project_id": ULID.format(0),
            "from": sender,
            "to": "bob",
            "broadcast": False,
            "type": "request",
            "priority": "urgent",
            "reply_to": reply_to,
            "topic": f"topic {n}",
            "payload": payload,
            "metadata": None,
            "status": "unread",
            "pinned": False,
            "reactions": [],
            "created_at": NOW,
            "expires_at": NOW,
        }
    )


def response(status: int, code: str) -> httpx.Response:
    return httpx.Response(
        status, json={"status": status, "code": code}, request=httpx.Request("GET", "http://x/v1/messages")
    )


# -- arguments -----------------------------------------------------------------------------------


def test_a_missing_required_argument_names_it_and_the_action() -> None:
    with pytest.raises(ToolFailure, match=r"^`to` is required for action=send\.$"):
        Arguments("send", {"to": None, "topic": "t"}).required_text("to")


def test_null_and_empty_strings_mean_not_given_and_numbers_pass_as_text() -> None:
    args = Arguments("send", {"topic": "", "reply_to": None, "payload": 42})
    assert (args.text("topic"), args.text("reply_to"), args.text("payload")) == (None, None, "42")


def test_a_choice_outside_its_options_lists_them() -> None:
    with pytest.raises(ToolFailure, match="`priority` must be one of normal, urgent, blocking; got 'high'"):
        Arguments("send", {"priority": "high"}).choice("priority", ("normal", "urgent", "blocking"))
    assert Arguments("send", {}).choice("type", ("request",), "request") == "request"


@pytest.mark.parametrize("value", ["soon", -1, 601, True, float("nan")])
def test_a_timeout_must_be_a_number_in_range(value: Any) -> None:
    with pytest.raises(ToolFailure, match="`timeout` must be"):
        Arguments("wait", {"timeout": value}).number("timeout", default=60, low=0, high=600)


def test_a_timeout_given_as_text_is_read_as_a_number() -> None:
    assert Arguments("wait", {"timeout": "2.5"}).number("timeout", default=60, low=0, high=600) == 2.5


def test_ids_may_be_a_list_or_one_string_of_several() -> None:
    assert Arguments("ack", {"ids": ["a", "b, c"]}).strings("ids") == ["a", "b", "c"]
    assert Arguments("ack", {"ids": "a b"}).strings("ids") == ["a", "b"]
    with pytest.raises(ToolFailure, match="`ids` is required for action=ack"):
        Arguments("ack", {"ids": []}).strings("ids", required=True)


# -- schemas -------------------------------------------------------------------------------------


def test_schemas_are_flat_and_small() -> None:
    for spec in SPECS:
        schema = spec.input_schema()
        text = json.dumps(schema)
        assert "anyOf" not in text and "title" not in text and "$defs" not in text
        assert all(set(prop) <= {"type", "enum", "items", "description"} for prop in schema["properties"].values())
    message_spec = next(spec for spec in SPECS if spec.name == "ns_message")
    actions = message_spec.input_schema()["properties"]["action"]["enum"]
    assert set(actions) >= {"send", "broadcast", "check", "read", "ack", "thread", "react", "pin", "wait"}
    assert sum(len(json.dumps(spec.input_schema())) + len(spec.description) for spec in SPECS) < 6_000


async def test_a_json_looking_payload_reaches_the_tool_as_the_string_it_is() -> None:
    seen: list[dict[str, Any]] = []

    async def record(name: str, arguments: Mapping[str, Any]) -> Reply:
        seen.append(dict(arguments))
        return Reply("ok")

    spec = next(spec for spec in SPECS if spec.name == "ns_message")
    server: MCPServer[Any] = MCPServer(tools=[mcp_tool(spec, record)])
    arguments = {"action": "send", "payload": '{"a": 1}', "topic": "[1, 2]", "from": "x", "timeout": 3}
    result = await server.call_tool("ns_message", arguments)
    assert not result.is_error
    assert {key: seen[0][key] for key in arguments} == arguments


# -- errors --------------------------------------------------------------------------------------


def test_errors_are_one_clear_line() -> None:
    not_found = NotFoundError(
        "404", response=response(404, "RECIPIENT_NOT_FOUND"), status=404, code="RECIPIENT_NOT_FOUND"
    )
    assert describe(not_found, recipient="carol").startswith("Unknown agent 'carol': no such agent")
    refused = AuthenticationError("401", response=response(401, "UNAUTHORIZED"), status=401)
    assert "refused" in describe(refused) and "ns_auth" in describe(refused) and "nexysync init" in describe(refused)
    mismatch = DecryptionError("bad tag", record="message/X", field="payload")
    assert "ask the user to check the project key" in describe(mismatch)
    down = APIConnectionError("connection refused\nretried 2 times")
    assert describe(down, api_url="http://127.0.0.1:1") == (
        "Cannot reach the NexySync API at http://127.0.0.1:1: connection refused retried 2 times; "
        "is the server running?"
    )
    assert "nexysync init" in describe(KeyFileError("enc_key must decode to 32 bytes"))
    assert "\n" not in describe(RuntimeError("boom\nline two"))


async def test_every_tool_answers_how_to_configure_keys_when_none_are_set() -> None:
    tools = Tools(AgentLink(lambda entry: asyncio.sleep(0)))
    for name, arguments in (("ns_meta", {"action": "whoami"}), ("ns_message", {"action": "check"})):
        reply = await tools.call(name, arguments)
        assert reply.is_error and "call ns_auth" in reply.text and "`nexysync init`" in reply.text


async def test_ns_auth_rejects_a_key_that_is_not_32_bytes_before_any_request() -> None:
    tools = Tools(AgentLink(lambda entry: asyncio.sleep(0)))
    reply = await tools.call("ns_auth", {"api_key": "nsync_x", "enc_key": "AAAA", "api_url": "http://127.0.0.1:1"})
    assert reply.is_error and reply.text == "enc_key must decode to 32 bytes, got 3."


# -- views ---------------------------------------------------------------------------------------


def test_a_preview_shows_who_what_and_the_start_of_the_payload() -> None:
    entry = Entry.of(message(1, payload="x" * 500, reply_to=ULID.format(9)))
    view = preview_view(entry)
    assert (view["from"], view["type"], view["priority"], view["topic"]) == ("alice", "request", "urgent", "topic 1")
    assert view["preview"] == "x" * 120 + "…" and view["reply_to"] == ULID.format(9)
    assert "payload" not in view


def test_a_full_message_leaves_out_what_is_empty() -> None:
    view = message_view(message(1))
    assert view == {
        "id": ULID.format(1),
        "from": "alice",
        "to": "bob",
        "type": "request",
        "priority": "urgent",
        "topic": "topic 1",
        "payload": "hello",
        "status": "unread",
        "created_at": "2026-01-01T00:00:00+00:00",
    }


def test_an_announcement_says_who_sent_what_and_how_to_read_it() -> None:
    text = announcement(Entry.of(message(1)))
    assert text == (
        f"New NexySync message {ULID.format(1)} from alice (request, urgent): 'topic 1'. "
        f"Read it with ns_message action=read id={ULID.format(1)}."
    )


# -- the push cache ------------------------------------------------------------------------------


class FakeStream:
    """The SDK stream's surface, fed from a queue (an exception in it is raised)."""

    def __init__(self, queue: asyncio.Queue[Any]) -> None:
        self.queue = queue
        self.last_event_id: int | None = None

    async def __aenter__(self) -> FakeStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def open(self) -> FakeStream:
        return self

    def __aiter__(self) -> FakeStream:
        return self

    async def __anext__(self) -> Any:
        item = await self.queue.get()
        if isinstance(item, BaseException):
            raise item
        self.last_event_id = item.seq
        return item


class FakeClient:
    """The few ``AsyncClient`` calls the inbox makes, answered from memory."""

    base_url = "http://fake"

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.stored: list[Message] = []
        self.streams = 0
        self.resumed_after: list[int | None] = []
        self.me = SimpleNamespace(get=self._me)
        self.messages = SimpleNamespace(list=self._list, get=self._get)
        #: (message id, mark_read) of every get: the push cache must never mark what it fetches.
        self.gets: list[tuple[str, bool]] = []

    async def _me(self) -> Any:
        return SimpleNamespace(agent=SimpleNamespace(slug="bob"))

    def stream(self, *, last_event_id: int | None = None, **options: Any) -> FakeStream:
        self.streams += 1
        self.resumed_after.append(last_event_id)
        return FakeStream(self.queue)

    def _list(self, **query: Any) -> Any:
        async def first_page() -> Any:
            # As the server does: only messages addressed to the caller.
            mine = [m for m in self.stored if m.to == "bob" and m.from_ != "bob"]
            return SimpleNamespace(data=mine, next_cursor=None)

        return SimpleNamespace(first_page=first_page)

    async def _get(self, message_id: str, *, mark_read: bool = True) -> Message:
        self.gets.append((message_id, mark_read))
        return next(m for m in self.stored if m.id == message_id)

    def deliver(self, item: Message, *, to: str = "bob") -> None:
        """Store a message and queue its ``new_message`` event."""
        self.stored.append(item.model_copy(update={"to": to}))
        data = {"id": item.id, "from": item.from_, "to": to, "broadcast": False, "type": "request"}
        data |= {"priority": "urgent", "reply_to": item.reply_to, "created_at": NOW}
        self.queue.put_nowait(SimpleNamespace(seq=len(self.stored), type="new_message", data=data))


async def until(condition: Callable[[], bool], deadline_s: float = 5.0) -> None:
    async with asyncio.timeout(deadline_s):
        while not condition():
            await asyncio.sleep(0.01)


async def test_new_messages_are_cached_announced_once_and_served_to_wait() -> None:
    client = FakeClient()
    announced: list[str] = []

    async def announce(entry: Entry) -> None:
        announced.append(entry.id)

    inbox = Inbox(client, announce)  # type: ignore[arg-type]
    inbox.start()
    try:
        await until(lambda: inbox.synced)
        waiting = asyncio.create_task(inbox.wait_for(sender="alice", reply_to=None, timeout=5))
        client.deliver(message(1, sender="bob"))  # its own message
        client.deliver(message(2), to="carol")  # someone else's
        client.deliver(message(3))
        got = await waiting
        assert got is not None and got.id == ULID.format(3) and got.message is not None
        assert got.message.payload == "hello"
        assert announced == [ULID.format(3)]
        assert client.gets == [(ULID.format(3), False)]
        assert [e.id for e in inbox.unread()] == [ULID.format(3)]
        assert await inbox.wait_for(sender="carol", reply_to=None, timeout=0.05) is None
    finally:
        await inbox.close()


async def test_the_inbox_outlives_a_failing_stream() -> None:
    client = FakeClient()
    inbox = Inbox(client, lambda entry: asyncio.sleep(0))  # type: ignore[arg-type]
    inbox.start()
    try:
        await until(lambda: inbox.synced)
        client.deliver(message(4))
        client.queue.put_nowait(RuntimeError("stream broke"))
        await until(lambda: client.streams == 2 and inbox.synced)
        client.deliver(message(5, reply_to=ULID.format(4)))
        got = await inbox.wait_for(sender=None, reply_to=ULID.format(4), timeout=5)
        assert got is not None and got.id == ULID.format(5)
        # The second stream resumed after the last event the first one delivered.
        assert client.resumed_after == [None, 1]
    finally:
        await inbox.close()
