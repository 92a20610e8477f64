"""Unit tests of the MCP server's tools: argument checks, error lines, result views and the push cache."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator, ValidationError
from mcp import Client
from mcp_types import ToolAnnotations

from hostile_text import CORPUS, FAKE_FRAME, FORBIDDEN_CHARACTERS, FORBIDDEN_TAGS
from nexysync import (
    APIConnectionError,
    APIStatusError,
    AsyncClient,
    AuthenticationError,
    DecryptionError,
    KeyFileError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    UndecryptableRecord,
)
from nexysync.crypto import encrypted_file_size
from nexysync.search import SearchHit
from nexysync_generated.models import File, KvEntry, Message, RecipientPresence
from nexysync_mcp.agent import AgentLink
from nexysync_mcp.arguments import Arguments
from nexysync_mcp.errors import ToolFailure, describe
from nexysync_mcp.inbox import Entry, Inbox
from nexysync_mcp.notify import (
    CHANNEL_CAPABILITY,
    CHANNEL_PAYLOAD_BYTES,
    announcement,
    channel_event,
    event_announcement,
)
from nexysync_mcp.output import dumps, structured
from nexysync_mcp.server import build_server
from nexysync_mcp.tools import TOOLS, Reply, Toolbox
from nexysync_mcp.tools.files import DOWNLOADS, INLINE_BYTES, safe_name
from nexysync_mcp.tools.messages import delivery_note, hit_view, message_view, preview_view
from nexysync_mcp.tools.record import Call, Param, Tool
from nexysync_mcp.workspace import Workspace

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


def test_every_tool_has_its_title_at_the_top_level_as_in_its_annotations() -> None:
    for spec in TOOLS:
        declared = spec.declaration()
        assert declared.title and declared.annotations is not None
        assert declared.title == declared.annotations.title and declared.title.startswith("NexySync: ")


def test_every_schema_property_is_typed_and_every_schema_is_valid_json_schema() -> None:
    # The MCP Inspector's strict check warns of a property with no type; jsonschema checks the rest.
    for tool in TOOLS:
        for schema in (tool.input_schema(), tool.output_schema()):
            Draft202012Validator.check_schema(schema)
            untyped = [name for name, prop in schema["properties"].items() if "type" not in prop]
            assert untyped == [], f"{tool.name}: {untyped}"


def test_structured_answers_pass_the_output_schema_their_tool_declares() -> None:
    answers = {"ns_message": {"id": "01J", "state": "queued", "messages": []}, "ns_kv": {"key": "k", "version": 3}}
    for name, answer in answers.items():
        (tool,) = [tool for tool in TOOLS if tool.name == name]
        Draft202012Validator(tool.output_schema()).validate(structured(dumps(answer)))
        Draft202012Validator(tool.output_schema()).validate(structured(dumps([answer])))
        Draft202012Validator(tool.output_schema()).validate(structured("Done."))
    (kv,) = [tool for tool in TOOLS if tool.name == "ns_kv"]
    with pytest.raises(ValidationError, match="is not of type 'integer'"):
        Draft202012Validator(kv.output_schema()).validate({"key": "k", "version": "3"})


def test_schemas_are_flat_and_small() -> None:
    for spec in TOOLS:
        schema = spec.input_schema()
        text = json.dumps(schema)
        # No titles anywhere (ns_ref has a parameter named "title": look at keys, not text).
        assert "anyOf" not in text and "$defs" not in text and "title" not in schema
        assert all(set(prop) <= {"type", "enum", "items", "description"} for prop in schema["properties"].values())
    message_spec = next(spec for spec in TOOLS if spec.name == "ns_message")
    actions = message_spec.input_schema()["properties"]["action"]["enum"]
    assert set(actions) >= {"send", "broadcast", "check", "read", "ack", "thread", "react", "pin", "wait"}
    assert {spec.name for spec in TOOLS} == {
        "ns_auth",
        "ns_meta",
        "ns_message",
        "ns_kv",
        "ns_ref",
        "ns_file",
        "ns_lease",
        "ns_task",
    }
    # Eight tools in 7.2 K; the whole tools/list answer (annotations, output schemas) must stay under 12 K.
    assert sum(len(json.dumps(spec.input_schema())) + len(spec.description) for spec in TOOLS) < 7_500


async def test_a_json_looking_payload_reaches_the_tool_as_the_string_it_is(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[dict[str, Any]] = []

    async def record(self: Toolbox, name: str, arguments: Mapping[str, Any], progress: Any = None) -> Reply:
        seen.append(dict(arguments))
        return Reply("ok")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Toolbox, "call", record)
    arguments = {"action": "send", "payload": '{"a": 1}', "topic": "[1, 2]", "from": "x", "timeout": 3}
    async with Client(build_server()) as client:
        result = await client.call_tool("ns_message", arguments)
    assert not result.is_error
    assert seen == [arguments]


async def test_the_server_lists_each_record_as_declared_and_announces_the_channel(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    async with Client(build_server()) as client:
        listed = await client.list_tools()
        # The 2026 handshake (server/discover) carries Claude Code's channel as well.
        assert client.server_capabilities.experimental == {"claude/channel": {}}
        assert client.server_capabilities.logging is not None
        (inbox,) = (await client.list_resources()).resources
        read = await client.read_resource(inbox.uri)
        unknown = await client.call_tool("ns_nothing", {})
    assert [tool.name for tool in listed.tools] == [tool.name for tool in TOOLS]
    for declared, tool in zip(listed.tools, TOOLS, strict=True):
        assert declared.input_schema == tool.input_schema()
        assert declared.output_schema == tool.output_schema()
        assert declared.annotations == tool.annotations
    assert str(inbox.uri) == "nexysync://inbox"
    assert "No NexySync key configured" in read.contents[0].text  # type: ignore[union-attr]
    assert unknown.is_error and unknown.content[0].text == "Unknown tool 'ns_nothing'."  # type: ignore[union-attr]


def test_the_legacy_handshake_announces_the_channel() -> None:
    options = build_server().create_initialization_options
    assert options(experimental_capabilities=CHANNEL_CAPABILITY).capabilities.experimental == {"claude/channel": {}}


async def test_a_tool_offers_exactly_the_actions_it_serves_and_routes_each_to_its_handler() -> None:
    served: list[tuple[str, str | None]] = []

    async def first(call: Call) -> str:
        served.append(("first", call.args.text("x")))
        return "1"

    async def second(call: Call) -> str:
        served.append(("second", call.args.action))
        return "2"

    hints = ToolAnnotations(title="t")
    tool = Tool("ns_t", "d", hints, (Param("x", "an x"),), actions={"first": first, "second": second})
    assert tool.input_schema()["properties"]["action"]["enum"] == ["first", "second"]
    assert tool.input_schema()["required"] == ["action"]
    link = AgentLink(lambda entry: asyncio.sleep(0))
    link.client = SimpleNamespace()  # type: ignore[assignment]
    assert await tool.run(link, {"action": "first", "x": "y"}) == "1"
    assert await tool.run(link, {"action": "second"}) == "2"
    assert served == [("first", "y"), ("second", "second")]
    with pytest.raises(ToolFailure, match="`action` must be one of first, second; got 'third'"):
        await tool.run(link, {"action": "third"})
    with pytest.raises(ValueError, match="either actions or one handler"):
        Tool("ns_u", "d", hints, (), actions={"first": first}, handler=first)
    with pytest.raises(ValueError, match="either actions or one handler"):
        Tool("ns_u", "d", hints, ())


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
    tools = Toolbox(AgentLink(lambda entry: asyncio.sleep(0)))
    for name, arguments in (("ns_meta", {"action": "whoami"}), ("ns_message", {"action": "check"})):
        reply = await tools.call(name, arguments)
        assert reply.is_error and "call ns_auth" in reply.text and "`nexysync init`" in reply.text


async def test_ns_auth_rejects_a_key_that_is_not_32_bytes_before_any_request() -> None:
    tools = Toolbox(AgentLink(lambda entry: asyncio.sleep(0)))
    reply = await tools.call("ns_auth", {"api_key": "nsync_x", "enc_key": "AAAA", "api_url": "http://127.0.0.1:1"})
    assert reply.is_error and reply.text == "enc_key: a project key must decode to 32 bytes, got 3."


async def test_ns_auth_asks_who_the_agent_is_once_and_keeps_the_client_that_checked_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = ULID.format(1)
    agent = {"id": ULID.format(2), "project_id": project, "slug": "bob", "name": "bob", "role": ""}
    agent |= {"capabilities": [], "key_prefix": "nsync_bo", "created_at": NOW, "updated_at": NOW, "last_seen_at": None}
    requests: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(f"{request.method} {request.url.path}")
        if request.url.path == "/v1/me":
            return httpx.Response(200, json={"agent": agent, "project_id": project})
        if request.url.path == "/v1/messages":
            return httpx.Response(200, json={"data": [], "next_cursor": None})
        # The inbox's stream: refused, which is enough to see it started without asking /v1/me.
        return httpx.Response(404, json={"title": "Not Found", "status": 404})

    built: list[AsyncClient] = []

    def client(**options: Any) -> AsyncClient:
        made = AsyncClient(**options, http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))
        built.append(made)
        return made

    monkeypatch.setattr("nexysync_mcp.agent.AsyncClient", client)
    link = AgentLink(lambda entry: asyncio.sleep(0))
    tools = Toolbox(link)
    key = base64.b64encode(bytes(32)).decode()
    try:
        reply = await tools.call("ns_auth", {"api_key": "nsync_bob", "enc_key": key, "api_url": "http://api.test"})
        assert not reply.is_error, reply.text
        assert json.loads(reply.text) == {"authenticated": "bob", "project_id": project, "api_url": "http://api.test"}
        await until(lambda: len(requests) > 2)
        assert requests[:2] == ["GET /v1/me", "GET /v1/messages"]
        assert requests.count("GET /v1/me") == 1
        # The first client only asks who the agent is; the second, built with the project, is kept.
        assert len(built) == 2 and link.client is built[1]
        assert link.inbox is not None and link.inbox.slug == "bob"
    finally:
        await link.close()


# -- views ---------------------------------------------------------------------------------------


def test_a_preview_shows_who_what_and_the_start_of_the_payload() -> None:
    entry = Entry.of(message(1, payload="x" * 500, reply_to=ULID.format(9)))
    view = preview_view(entry)
    assert (view["from"], view["type"], view["priority"], view["topic"]) == ("alice", "request", "urgent", "topic 1")
    assert view["preview"] == "x" * 120 + "… [500 characters in all]" and view["reply_to"] == ULID.format(9)
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
        f"New NexySync message {ULID.format(1)} from alice (request, urgent): “topic 1”. "
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
        #: What the SDK's page lists in ``undecryptable``: messages it could not decrypt.
        self.undecryptable: list[UndecryptableRecord] = []
        self.streams = 0
        self.resumed_after: list[int | None] = []
        self.me = SimpleNamespace(get=self._me)
        self.messages = SimpleNamespace(list=self._list, get=self._get, mark_read=self._mark_read)
        #: (message id, mark_read) of every get: the push cache must never mark what it fetches.
        self.gets: list[tuple[str, bool]] = []
        #: The ids of every POST /v1/messages/read.
        self.marked: list[str] = []
        #: Whether new_message events carry their message (as the server does for small ones).
        self.carry = False
        self.key_ring = None

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
            return SimpleNamespace(data=mine, next_cursor=None, undecryptable=list(self.undecryptable))

        return SimpleNamespace(first_page=first_page)

    async def _get(self, message_id: str, *, mark_read: bool = True) -> Message:
        self.gets.append((message_id, mark_read))
        return next(m for m in self.stored if m.id == message_id)

    async def _mark_read(self, ids: list[str]) -> Any:
        self.marked += ids
        return SimpleNamespace(read=ids, not_found=[])

    def deliver(self, item: Message, *, to: str = "bob") -> None:
        """Store a message and queue its ``new_message`` event."""
        self.stored.append(item.model_copy(update={"to": to}))
        data = {"id": item.id, "from": item.from_, "to": to, "broadcast": False, "type": "request"}
        data |= {"priority": "urgent", "reply_to": item.reply_to, "created_at": NOW}
        carried = self.stored[-1] if self.carry else None
        self.queue.put_nowait(FakeEvent(len(self.stored), "new_message", data, self, carried))


@dataclass
class FakeEvent:
    """A ``new_message`` event as the SDK's ``AsyncStreamEvent`` shows it: the message it carries, else fetched."""

    seq: int
    type: str
    data: dict[str, Any]
    client: FakeClient
    carried_message: Message | None

    def carried(self, key_ring: Any) -> Message | None:
        return self.carried_message

    async def message(self, *, mark_read: bool = True) -> Message:
        if self.carried_message is not None:
            return self.carried_message
        return await self.client._get(self.data["id"], mark_read=mark_read)


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


async def test_a_message_carried_by_its_event_is_in_hand_at_once_and_marked_read_once_read() -> None:
    client = FakeClient()
    client.carry = True
    inbox = Inbox(client, lambda entry: asyncio.sleep(0))  # type: ignore[arg-type]
    inbox.start()
    try:
        await until(lambda: inbox.synced)
        client.deliver(message(6))
        got = await inbox.wait_for(sender="alice", reply_to=None, timeout=5)
        assert got is not None and got.message is not None and got.message.payload == "hello"
        # In hand at once, with no request: the server recorded it delivered as it wrote the
        # event; nothing marks it read until the AI reads it.
        await asyncio.sleep(0.05)
        assert client.gets == [] and client.marked == []
        inbox.mark_read_on_server(got.id)
        await until(lambda: client.marked == [ULID.format(6)])
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


async def test_an_event_of_another_agent_is_passed_on_and_its_own_are_not() -> None:
    client = FakeClient()
    events: list[tuple[str, str]] = []

    async def on_event(kind: str, data: dict[str, Any]) -> None:
        events.append((kind, str(data.get("id") or data.get("key"))))

    inbox = Inbox(client, lambda entry: asyncio.sleep(0), on_event=on_event)  # type: ignore[arg-type]
    inbox.start()
    try:
        await until(lambda: inbox.synced)
        for seq, (kind, data) in enumerate(
            [
                ("new_ref", {"id": "R1", "from": "bob"}),  # its own
                ("kv_update", {"key": "k", "version": 2, "updated_by": "alice", "deleted": False}),
                ("new_file", {"id": "F1", "from": "alice"}),
            ],
            start=1,
        ):
            client.queue.put_nowait(SimpleNamespace(seq=seq, type=kind, data=data))
        await until(lambda: len(events) == 2)
        assert events == [("kv_update", "k"), ("new_file", "F1")]
    finally:
        await inbox.close()


def test_shared_state_events_are_announced_with_the_way_to_read_them() -> None:
    assert event_announcement("new_ref", {"id": "R1", "from": "alice", "language": "python"}) == (
        "New NexySync code reference R1 from alice (python). Read it with ns_ref action=read id=R1."
    )
    assert "ns_file action=read id=F1" in str(event_announcement("new_file", {"id": "F1", "from": "alice"}))
    assert event_announcement("kv_update", {"key": "k", "updated_by": "alice", "deleted": True}) == (
        "NexySync kv key “k” deleted by alice."
    )


# -- ns_kv, ns_ref, ns_file ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3), (4, 4), (2.0, 2), (None, None), ("", None)],
)
def test_a_version_is_a_whole_number(value: Any, expected: int | None) -> None:
    assert Arguments("set", {"version": value}).integer("version", low=0) == expected


@pytest.mark.parametrize("value", ["v2", -1, 1.5, True, [1]])
def test_a_version_that_is_not_a_whole_number_is_refused(value: Any) -> None:
    with pytest.raises(ToolFailure, match="`version` must be a whole number"):
        Arguments("set", {"version": value}).integer("version", low=0)


def test_a_flag_is_true_or_false() -> None:
    assert Arguments("read", {"overwrite": True}).flag("overwrite") is True
    assert Arguments("read", {"overwrite": "false"}).flag("overwrite") is False
    assert Arguments("read", {}).flag("overwrite") is False
    with pytest.raises(ToolFailure, match="`overwrite` must be true or false; got 'yes'"):
        Arguments("read", {"overwrite": "yes"}).flag("overwrite")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("notes.md", "notes.md"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("/abs/path/x.py", "x.py"),
        ("..", "file-F"),
        ("", "file-F"),
        ("dir/", "file-F"),
        ("a\x00b\nc:d?.txt", "a_b_c_d_.txt"),
    ],
)
def test_a_remote_file_name_becomes_one_safe_component(name: str, expected: str) -> None:
    assert safe_name(name, "file-F") == expected


def test_a_long_remote_name_is_cut_but_keeps_its_extension() -> None:
    name = safe_name("x" * 500 + ".json", "file-F")
    assert len(name) <= 120 and name.endswith(".json")


def test_a_download_never_leaves_the_chosen_directory(tmp_path: Path) -> None:
    workspace = Workspace(root=tmp_path.resolve())
    downloads = workspace.downloads

    def save_path(name: str, path: str | None) -> Path:
        return workspace.save_path(name, "F", path, safe_name=safe_name(name, "file-F"))

    assert save_path("../../../.bashrc", None) == downloads / ".bashrc"
    (downloads / "out").mkdir()
    assert save_path("../x/../../y.bin", "out") == downloads / "out" / "y.bin"
    assert save_path("../y.bin", "new-dir/") == downloads / "new-dir" / "y.bin"
    # A path that is no directory is where the file goes, whatever its remote name.
    assert save_path("../y.bin", "copy.bin") == downloads / "copy.bin"


def kv_entry(key: str, version: int, value: str = "v") -> KvEntry:
    return KvEntry.model_validate(
        {"key": key, "value": value, "version": version, "updated_by": "alice", "updated_at": NOW}
    )


def status_error(cls: type[Any], status: int, code: str) -> Any:
    return cls(str(status), response=response(status, code), status=status, code=code)


def tools_with(client: Any) -> Toolbox:
    link = AgentLink(lambda entry: asyncio.sleep(0))
    link.client = client
    return Toolbox(link)


async def test_a_stale_kv_write_says_which_version_is_current() -> None:
    async def put(key: str, value: str, *, if_match: Any = None, if_none_match: bool = False) -> KvEntry:
        raise status_error(PreconditionFailedError, 412, "PRECONDITION_FAILED")

    async def get(key: str) -> KvEntry:
        return kv_entry(key, 7)

    tools = tools_with(SimpleNamespace(kv=SimpleNamespace(put=put, get=get)))
    reply = await tools.call("ns_kv", {"action": "set", "key": "plan", "value": "x", "version": 3})
    assert reply == Reply("kv key 'plan' changed since version 3 (now 7): get it again and retry.", is_error=True)
    reply = await tools.call("ns_kv", {"action": "set", "key": "plan", "value": "x", "version": 0})
    assert reply.is_error and reply.text.startswith("kv key 'plan' already exists (version 7)")


async def test_kv_arguments_are_checked_before_any_request() -> None:
    tools = tools_with(SimpleNamespace())
    for arguments, expected in (
        ({"action": "set", "key": "a/b", "value": "x"}, "`key` must be 1 to 200 letters"),
        ({"action": "set", "key": "..", "value": "x"}, "`key` must be 1 to 200 letters"),
        ({"action": "set", "key": "a"}, "`value` is required for action=set."),
        ({"action": "get"}, "`key` is required for action=get."),
        ({"action": "put", "key": "a"}, "`action` must be one of set, get, list, delete"),
        ({"action": "delete", "key": "a", "version": 0}, "`version` must be at least 1 for action=delete."),
    ):
        reply = await tools.call("ns_kv", arguments)
        assert reply.is_error and reply.text.startswith(expected), reply.text


def file_meta(content: bytes, name: str = "notes.txt") -> File:
    return File.model_validate(
        {
            "id": ULID.format(7),
            "project_id": ULID.format(0),
            "name": name,
            "size": encrypted_file_size(len(content)),
            "content_type": None,
            "status": "ready",
            "from": "alice",
            "created_at": NOW,
            "expires_at": NOW,
            "download_url": "http://cdn/x",
        }
    )


class FakeFiles:
    """``client.files`` serving one file from memory."""

    def __init__(self, content: bytes, name: str = "notes.txt") -> None:
        self.content = content
        self.meta = file_meta(content, name)

    async def get(self, file_id: str) -> File:
        return self.meta

    async def download(self, file_id: str, *, to: Any) -> File:
        if isinstance(to, str | Path):
            Path(to).write_bytes(self.content)
        else:
            to.write(self.content)
        return self.meta

    async def delete(self, file_id: str) -> None:
        raise status_error(PermissionDeniedError, 403, "NOT_FILE_UPLOADER")


async def test_a_small_text_file_is_read_inline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    tools = tools_with(SimpleNamespace(files=FakeFiles("héllo\n".encode())))
    reply = await tools.call("ns_file", {"action": "read", "id": ULID.format(7)})
    answer = json.loads(reply.text)
    assert (answer["name"], answer["size"], answer["content"]) == ("notes.txt", 7, "héllo\n")
    assert not (tmp_path / DOWNLOADS).exists()


@pytest.mark.parametrize("content", [b"\x89PNG\x00\x01", b"x" * (INLINE_BYTES + 1)])
async def test_a_binary_or_large_file_is_saved_and_never_overwrites(
    content: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    tools = tools_with(SimpleNamespace(files=FakeFiles(content, name="../../evil.bin")))
    answer = json.loads((await tools.call("ns_file", {"action": "read", "id": ULID.format(7)})).text)
    saved = tmp_path / DOWNLOADS / "evil.bin"
    assert answer["saved_to"] == str(saved) and "content" not in answer
    assert saved.read_bytes() == content
    saved.write_bytes(b"mine")
    reply = await tools.call("ns_file", {"action": "read", "id": ULID.format(7)})
    assert reply.is_error and reply.text == f"{saved} exists; give another path, or overwrite=true to replace it."
    assert saved.read_bytes() == b"mine"
    await tools.call("ns_file", {"action": "read", "id": ULID.format(7), "overwrite": True})
    assert saved.read_bytes() == content


async def test_a_text_file_read_to_a_path_is_saved_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    tools = tools_with(SimpleNamespace(files=FakeFiles(b"text")))
    answer = json.loads((await tools.call("ns_file", {"action": "read", "id": ULID.format(7), "path": "a.txt"})).text)
    saved = tmp_path.resolve() / DOWNLOADS / "a.txt"
    assert answer["saved_to"] == str(saved) and saved.read_bytes() == b"text"


async def test_file_errors_are_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    tools = tools_with(SimpleNamespace(files=FakeFiles(b"x")))
    reply = await tools.call("ns_file", {"action": "delete", "id": "F1"})
    assert reply == Reply("Only the agent that uploaded file F1 may delete it.", is_error=True)
    reply = await tools.call("ns_file", {"action": "upload", "path": "missing.txt"})
    assert reply.is_error and reply.text.startswith("No file at 'missing.txt'")
    quota = status_error(PermissionDeniedError, 403, "QUOTA_EXCEEDED")
    quota.detail = "The project has reached its quota of 50 MB of storage; ask its owner to raise it."
    assert "frees storage" in describe(quota) and "\n" not in describe(quota)
    too_large = status_error(APIStatusError, 413, "FILE_TOO_LARGE")
    too_large.detail = "A file may be at most 25 MiB (encrypted)."
    assert describe(too_large) == "Too large (413 FILE_TOO_LARGE): A file may be at most 25 MiB (encrypted)."


async def test_a_reference_too_large_to_share_points_to_files() -> None:
    async def share(*args: Any, **kwargs: Any) -> Any:
        error = status_error(APIStatusError, 413, "PAYLOAD_TOO_LARGE")
        error.detail = "The body may be at most 262144 bytes."
        raise error

    tools = tools_with(SimpleNamespace(refs=SimpleNamespace(share=share)))
    reply = await tools.call("ns_ref", {"action": "share", "title": "t", "content": "x"})
    assert reply.is_error and "(ns_file action=upload)" in reply.text and "\n" not in reply.text


# -- records the SDK could not decrypt -----------------------------------------------------------


def undecryptable(n: int, *, sender: str = "carol") -> UndecryptableRecord:
    """Return a message the SDK left out of a page: made with a key this agent does not hold."""
    raw = message(n, sender=sender).model_dump(mode="json", by_alias=True)
    raw.update(topic="v1.0badc0de.AAAA", payload="v1.0badc0de.AAAA", created_at="2026-01-01T00:00:01Z")
    error = DecryptionError(
        "made with key 0badc0de, which is not in the key ring", record=f"message/{raw['id']}", field="metadata"
    )
    return UndecryptableRecord(error, raw)


async def test_check_lists_the_good_messages_next_to_one_that_cannot_be_decrypted() -> None:
    bad = undecryptable(2)
    assert isinstance(bad, DecryptionError) and bad.record == f"message/{ULID.format(2)}"
    later = message(3).model_copy(update={"created_at": datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC)})
    page = SimpleNamespace(data=[message(1), later], next_cursor=None, undecryptable=[bad])

    def list_(**query: Any) -> Any:
        async def first_page() -> Any:
            return page

        return SimpleNamespace(first_page=first_page)

    # Without the push cache: check asks the API.
    tools = tools_with(SimpleNamespace(messages=SimpleNamespace(list=list_)))
    answer = json.loads((await tools.call("ns_message", {"action": "check"})).text)
    assert answer["unread"] == 3
    assert [m["id"] for m in answer["messages"]] == [ULID.format(n) for n in (1, 2, 3)]
    shown = answer["messages"][1]
    assert shown["from"] == "carol" and "topic" not in shown and "preview" not in shown
    assert shown["error"].startswith(f"Cannot decrypt message {ULID.format(2)} from carol")
    assert "ask the user to check the project key" in shown["error"]
    assert [answer["messages"][n]["preview"] for n in (0, 2)] == ["hello", "hello"]


async def test_the_push_cache_keeps_the_good_messages_when_one_cannot_be_decrypted() -> None:
    client = FakeClient()
    client.stored = [message(1), message(3)]
    client.undecryptable = [undecryptable(2)]
    link = AgentLink(lambda entry: asyncio.sleep(0))
    link.client = client  # type: ignore[assignment]
    inbox = link.inbox = Inbox(client, lambda entry: asyncio.sleep(0))  # type: ignore[arg-type]
    inbox.start()
    try:
        await until(lambda: inbox.synced)
        # One foreign message no longer makes the cache incomplete: check answers from it.
        assert inbox.complete
        assert [e.id for e in inbox.unread()] == [ULID.format(n) for n in (1, 3, 2)]
        answer = json.loads((await Toolbox(link).call("ns_message", {"action": "check"})).text)
        assert [m["id"] for m in answer["messages"]] == [ULID.format(n) for n in (1, 3, 2)]
        assert "ask the user to check the project key" in answer["messages"][2]["error"]
        assert answer["messages"][0]["preview"] == "hello"
        # Reading it tells why, once.
        reply = await Toolbox(link).call("ns_message", {"action": "read", "id": ULID.format(2)})
        assert reply.is_error and "from carol" in reply.text
    finally:
        await inbox.close()


async def test_shared_lists_name_the_records_that_cannot_be_decrypted() -> None:
    bad_value = UndecryptableRecord(
        DecryptionError("bad tag", record="kv/plan", field="value"),
        {"key": "plan", "value": "v1.0badc0de.AAAA", "version": 2, "updated_by": "carol", "updated_at": NOW},
    )
    kv_page = SimpleNamespace(data=[kv_entry("style", 1)], next_cursor=None, undecryptable=[bad_value])

    def kv_list(**query: Any) -> Any:
        async def first_page() -> Any:
            return kv_page

        return SimpleNamespace(first_page=first_page)

    tools = tools_with(SimpleNamespace(kv=SimpleNamespace(list=kv_list)))
    answer = json.loads((await tools.call("ns_kv", {"action": "list"})).text)
    assert [e["key"] for e in answer["entries"]] == ["style"]
    assert answer["undecryptable"] == [
        "Kv key 'plan' (last set by carol) could not be decrypted: "
        "ask the user to check the project key (enc_key) of both agents."
    ]


async def test_a_thread_names_the_messages_that_cannot_be_decrypted() -> None:
    async def thread(message_id: str) -> Any:
        return SimpleNamespace(root_id=ULID.format(1), data=[message(1)], undecryptable=[undecryptable(2)])

    tools = tools_with(SimpleNamespace(messages=SimpleNamespace(thread=thread)))
    answer = json.loads((await tools.call("ns_message", {"action": "thread", "id": ULID.format(1)})).text)
    assert [m["id"] for m in answer["messages"]] == [ULID.format(1)]
    assert answer["undecryptable"] == [
        f"Message {ULID.format(2)} from carol could not be decrypted: "
        "ask the user to check the project key (enc_key) of both agents."
    ]


def test_the_delivery_note_says_queued_and_who_hears_now() -> None:
    now = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    frontend = RecipientPresence(agent="frontend", online=False, last_seen_at=now - dt.timedelta(minutes=12))
    backend = RecipientPresence(agent="backend", online=True, last_seen_at=now)
    new = RecipientPresence(agent="docs", online=False, last_seen_at=None)
    assert delivery_note([frontend], broadcast=False, now=now) == (
        "queued: frontend is offline (last seen 12 min ago); it gets it when it connects"
    )
    assert delivery_note([backend], broadcast=False, now=now) == "queued: backend is online; it will be told now"
    assert delivery_note([backend, frontend, new], broadcast=True, now=now) == (
        "queued for 3 agents; online, told now: backend; offline, get it when they connect: "
        "frontend (last seen 12 min ago), docs (never seen yet)"
    )
    assert delivery_note([], broadcast=True, now=now) == "queued: no other agent is in the project yet"
    assert delivery_note([backend], broadcast=True, now=now) == "queued for 1 agent; online, told now: backend"
    for note in (delivery_note([frontend], broadcast=False), delivery_note([backend, new], broadcast=True)):
        assert "sent" not in note and "deliver" not in note


def test_a_channel_event_carries_the_message_and_identifier_only_meta() -> None:
    message = Message.model_validate(
        {
            "id": "01HZX0000000000000000000AA",
            "project_id": "01HZX0000000000000000000PP",
            "from": "frontend",
            "to": None,
            "broadcast": True,
            "type": "request",
            "priority": "blocking",
            "reply_to": "01HZX0000000000000000000BB",
            "topic": "Contract",
            "payload": "y" * (CHANNEL_PAYLOAD_BYTES + 10),
            "metadata": None,
            "status": "unread",
            "pinned": False,
            "reactions": [],
            "created_at": "2026-01-01T00:00:00Z",
            "expires_at": "2026-01-08T00:00:00Z",
        }
    )
    params = channel_event(Entry.of(message))
    assert params["meta"] == {
        "message_id": message.id,
        "from": "frontend",
        "type": "request",
        "priority": "blocking",
        "reply_to": message.reply_to,
        "broadcast": "true",
    }
    content = params["content"]
    assert content.startswith(f"NexySync message {message.id} from frontend (request, blocking priority, replying to")
    assert "Topic: Contract" in content
    quoted_lines = [line for line in content.splitlines() if line.startswith("    │ ")]
    assert len(quoted_lines) == 1 and set(quoted_lines[0].removeprefix("    │ ")) == {"y"}
    assert len(quoted_lines[0].encode()) < CHANNEL_PAYLOAD_BYTES
    assert f"of {CHANNEL_PAYLOAD_BYTES + 10:,} characters shown]" in content
    assert f"(read the rest with ns_message action=read id={message.id})" in content
    assert content.endswith(f"Answer with ns_message action=send to=frontend reply_to={message.id}.")
    failed = channel_event(Entry(message.id, "frontend", "request", "normal", None, "2026-01-01T00:00:00Z"))
    assert "could not be fetched" in failed["content"] and "reply_to" not in failed["meta"]


def test_wait_fits_a_60_second_client_limit_by_default() -> None:
    spec = next(spec for spec in TOOLS if spec.name == "ns_message")
    (timeout,) = [param for param in spec.params if param.name == "timeout"]
    assert "default 50" in timeout.description and "max 600" in timeout.description
    assert "status" in spec.description and "status" in next(p for p in spec.all_params if p.name == "action").enum


@pytest.mark.parametrize("text", [*CORPUS, "T" * 280_000 + "\n" + FAKE_FRAME])
def test_hostile_words_stay_inert_and_framed_in_the_channel_the_announcements_and_the_tools(text: str) -> None:
    hostile = message(1, payload=text).model_copy(update={"topic": text, "metadata": {"note": text, text[:50]: 1}})
    entry = Entry.of(hostile)
    content = channel_event(entry)["content"]
    outputs = {
        "channel": content,
        "announcement": announcement(entry),
        "check": dumps(preview_view(entry)),
        "read": dumps(message_view(hostile)),
    }
    for where, output in outputs.items():
        assert not FORBIDDEN_CHARACTERS & set(output), where
        assert not [tag for tag in FORBIDDEN_TAGS if tag in output], where
    # The channel's own lines come first and last; the sender's words only on quoted lines.
    lines = content.splitlines()
    assert lines[0].startswith(f"NexySync message {hostile.id} from alice (request, urgent priority")
    assert lines[1].startswith("Topic: ") and len(lines[1]) < 300
    assert lines[-1] == f"Answer with ns_message action=send to=alice reply_to={hostile.id}."
    assert all(line.startswith("    │ ") for line in lines[3:-2] if not line.startswith(("[cut: ", "(read the rest")))
    assert len(content.encode()) <= CHANNEL_PAYLOAD_BYTES + 1024
    assert "\n" not in outputs["announcement"] and len(outputs["announcement"]) < 500
    assert len(outputs["check"]) < 1000


def test_a_search_hit_is_named_as_its_kind_names_things_and_says_how_to_read_a_cut_one_whole() -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    ref_hit = SearchHit("ref", ULID.format(3), "alice", at, "**Token** check", "def f(): ...", "src/a.py python", True)
    kv_hit = SearchHit("kv", "plan", "bob", at, "plan", "the **plan**", "", False, version=4)
    assert hit_view(ref_hit) == {
        "kind": "ref",
        "id": ULID.format(3),
        "from": "alice",
        "at": "2026-12-01T00:00:00+00:00",
        "title": "**Token** check",
        "content": "def f(): ...",
        "source": "src/a.py python",
        "cut": f"passages around the matches; read it whole with ns_ref action=read id={ULID.format(3)}",
    }
    assert hit_view(kv_hit) == {
        "kind": "kv",
        "id": "plan",
        "from": "bob",
        "at": "2026-12-01T00:00:00+00:00",
        "key": "plan",
        "value": "the **plan**",
        "version": 4,
    }


def test_the_link_refreshes_only_what_an_event_changed() -> None:
    link = AgentLink(lambda entry: asyncio.sleep(0))
    link.stale.clear()
    for event in ("new_file", "new_ref", "kv_update", "reset"):
        link._changed(event)
    assert link.stale == {"ref", "kv", "message"}
