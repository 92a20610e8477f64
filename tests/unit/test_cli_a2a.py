"""The A2A bridge's parts without a network: the mapping, the task file, the token, the card, the call's reading."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.helpers.proto_helpers import new_data_part
from a2a.server.context import ServerCallContext
from a2a.types.a2a_pb2 import (
    ListTasksRequest,
    Message,
    Part,
    Role,
    StreamResponse,
    Task,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)
from a2a.utils.errors import ContentTypeNotSupportedError, InvalidParamsError
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from nexysync.types import Message as NexyMessage
from nexysync_a2a.app import BearerToken, Exposed, agent_card
from nexysync_a2a.call import _Following, state_name
from nexysync_a2a.mapping import reply_state, to_a2a, to_nexysync
from nexysync_a2a.relay import Watch
from nexysync_a2a.serve import TOKEN_FILE, bridge_token, is_loopback
from nexysync_a2a.store import BridgeFile, DiskTaskStore, owner_context
from nexysync_cli.main import build_parser
from nexysync_generated.models import MessageType


def a2a_message(*parts: Part) -> Message:
    return Message(message_id="m-1", role=Role.ROLE_USER, parts=list(parts))


def reply(kind: str, payload: str = "ok", metadata: Any = None, message_id: str = "01J00000000000000000000000") -> Any:
    """A decrypted NexySync reply, with the fields the bridge reads."""
    return NexyMessage.model_construct(
        id=message_id, from_="backend", payload=payload, type=MessageType(kind), metadata=metadata, reply_to="m"
    )


# -- mapping ------------------------------------------------------------------------------------


def test_text_data_and_url_parts_become_one_payload_and_the_data_stays_whole() -> None:
    message = a2a_message(
        Part(text="Deploy the API\nthen tell me"),
        new_data_part({"env": "staging", "replicas": 2}),
        Part(url="https://example.test/plan.md", filename="plan.md"),
    )
    out = to_nexysync(message, task_id="t", context_id="c")
    assert out.topic == "Deploy the API"
    assert out.payload.startswith("Deploy the API\nthen tell me\n\n```json\n")
    assert '"env": "staging"' in out.payload and out.payload.endswith("file: plan.md <https://example.test/plan.md>")
    assert out.metadata == {
        "a2a": {"task_id": "t", "context_id": "c", "message_id": "m-1", "data": [{"env": "staging", "replicas": 2}]}
    }


def test_a_long_first_line_is_cut_for_the_topic_and_data_alone_gets_a_plain_one() -> None:
    long = to_nexysync(a2a_message(Part(text="x" * 200)), task_id="t", context_id="c")
    assert len(long.topic) == 60 and long.topic.endswith("…") and long.payload == "x" * 200
    data = to_nexysync(a2a_message(new_data_part([1, 2])), task_id="t", context_id="c")
    assert data.topic == "A2A request" and "data" in data.metadata["a2a"]


def test_raw_bytes_and_empty_messages_are_refused_with_a2a_errors() -> None:
    with pytest.raises(ContentTypeNotSupportedError, match="send its URL"):
        to_nexysync(a2a_message(Part(text="see"), Part(raw=b"\x00\x01")), task_id="t", context_id="c")
    with pytest.raises(InvalidParamsError, match="no text"):
        to_nexysync(a2a_message(Part(text="  ")), task_id="t", context_id="c")
    with pytest.raises(InvalidParamsError):
        to_nexysync(a2a_message(), task_id="t", context_id="c")


@pytest.mark.parametrize(
    ("kind", "metadata", "state"),
    [
        ("response", None, TaskState.TASK_STATE_COMPLETED),
        ("request", None, TaskState.TASK_STATE_INPUT_REQUIRED),
        ("notification", None, TaskState.TASK_STATE_WORKING),
        ("response", {"a2a": {"state": "rejected"}}, TaskState.TASK_STATE_REJECTED),
        ("response", {"a2a": {"state": "failed"}}, TaskState.TASK_STATE_FAILED),
        ("notification", {"a2a": {"state": "input-required"}}, TaskState.TASK_STATE_INPUT_REQUIRED),
        # Not a state a reply may name (canceled is the A2A client's to say), or not ours at all.
        ("response", {"a2a": {"state": "canceled"}}, TaskState.TASK_STATE_COMPLETED),
        ("request", {"a2a": "rejected"}, TaskState.TASK_STATE_INPUT_REQUIRED),
        ("response", ["a2a"], TaskState.TASK_STATE_COMPLETED),
    ],
)
def test_a_reply_moves_the_task_by_its_type_or_the_state_it_names(kind: str, metadata: Any, state: int) -> None:
    assert reply_state(reply(kind, metadata=metadata)) == state


def test_a_reply_becomes_an_agent_message_with_its_data_parts() -> None:
    message = to_a2a(reply("response", "done", {"a2a": {"data": [{"ok": True}, 3]}}), task_id="t", context_id="c")
    assert message.role == Role.ROLE_AGENT and (message.task_id, message.context_id) == ("t", "c")
    assert message.parts[0].text == "done"
    assert message.parts[1].data.struct_value["ok"] is True and message.parts[2].data.number_value == 3


def test_a_watch_hands_each_reply_over_once_and_a_reply_means_delivered() -> None:
    watch = Watch("m")
    first = reply("notification", "on it")
    watch.offer(first)
    watch.offer(first)  # found again by a check after a reconnect
    assert watch.delivered.is_set() and watch.replies.qsize() == 1


# -- the task file ------------------------------------------------------------------------------


def task(task_id: str, *, context_id: str = "c", seconds: int = 0) -> Task:
    when = datetime(2026, 12, 7, 12, 0, seconds, tzinfo=UTC)
    return Task(
        id=task_id, context_id=context_id, status=TaskStatus(state=TaskState.TASK_STATE_COMPLETED, timestamp=when)
    )


async def test_tasks_survive_a_restart_under_their_owner(tmp_path: Path) -> None:
    path = tmp_path / ".nexysync" / "a2a.db"
    file = BridgeFile(path, "p/bridge")
    store = DiskTaskStore(file, "backend")
    alice, bob = owner_context("alice"), owner_context("bob")
    for n in range(5):
        await store.save(task(f"t{n}", seconds=n), alice)
    await store.save(task("theirs"), bob)
    await DiskTaskStore(file, "helper").save(task("elsewhere"), alice)
    file.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700

    again = BridgeFile(path, "p/bridge")
    reopened = DiskTaskStore(again, "backend")
    assert await reopened.load() == 6
    assert (await reopened.get("t3", alice)) == task("t3", seconds=3)
    assert await reopened.get("theirs", alice) is None and await reopened.get("elsewhere", alice) is None
    first = await reopened.list(ListTasksRequest(page_size=2), alice)
    assert [t.id for t in first.tasks] == ["t4", "t3"] and first.next_page_token
    rest = await reopened.list(ListTasksRequest(page_size=10, page_token=first.next_page_token), alice)
    assert [t.id for t in rest.tasks] == ["t2", "t1", "t0"] and not rest.next_page_token
    await reopened.delete("theirs", alice)  # not alice's: nothing happens
    await reopened.delete("t0", alice)
    again.close()

    third = DiskTaskStore(BridgeFile(path, "p/bridge"), "backend")
    assert await third.load() == 5
    assert await third.get("theirs", bob) is not None and await third.get("t0", alice) is None


def test_a_bridge_file_is_one_agents(tmp_path: Path) -> None:
    path = tmp_path / ".nexysync" / "a2a.db"
    BridgeFile(path, "p/bridge").close()
    with pytest.raises(ValueError, match="holds the A2A tasks of p/bridge, not of p/other"):
        BridgeFile(path, "p/other")


def test_links_and_contexts_tie_tasks_to_messages(tmp_path: Path) -> None:
    from nexysync_a2a.store import Link

    file = BridgeFile(tmp_path / "a2a.db", "p/bridge")
    file.wait_on(Link("t", "backend", "", "c", "m1", None))
    file.asked("t", "q1")
    assert file.link("t") == Link("t", "backend", "", "c", "m1", "q1")
    file.wait_on(Link("t", "backend", "", "c", "m2", None))  # the answer to q1 went out as m2
    assert [link.waiting_on for link in file.links()] == ["m2"] and file.link("t").question is None  # type: ignore[union-attr]
    file.settled("t")
    assert file.link("t") is None and file.links() == []
    assert file.last_in_context("backend", "c") is None
    file.extend_context("backend", "c", "m1")
    file.extend_context("backend", "c", "r1")
    assert file.last_in_context("backend", "c") == "r1" and file.last_in_context("helper", "c") is None
    file.last_event_id = 42
    assert file.last_event_id == 42


# -- token, card, call --------------------------------------------------------------------------


def test_a_token_is_needed_off_loopback_and_made_once(tmp_path: Path) -> None:
    key = tmp_path / ".nexysync" / "key"
    key.parent.mkdir()
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.test")
    assert bridge_token("127.0.0.1", None, key) == (None, None)
    assert bridge_token("127.0.0.1", " given\n", key) == ("given", None)
    token, made = bridge_token("0.0.0.0", None, key)
    assert made == key.with_name(TOKEN_FILE) and token and len(token) >= 40
    assert stat.S_IMODE(os.stat(made).st_mode) == 0o600
    assert bridge_token("10.0.0.5", None, key) == (token, made)


def test_the_card_names_the_agent_and_declares_the_token() -> None:
    agent = Exposed(slug="backend", name="Backend", role="API Engineer", capabilities=("python", "sql"))
    open_card = agent_card(agent, "http://h:1/backend", version="1.2.3", token_required=False)
    assert open_card.name == "Backend" and open_card.version == "1.2.3"
    assert [(i.protocol_binding, i.protocol_version) for i in open_card.supported_interfaces] == [
        ("JSONRPC", "1.0"),
        ("HTTP+JSON", "1.0"),
        ("JSONRPC", "0.3"),
    ]
    assert {i.url for i in open_card.supported_interfaces} == {"http://h:1/backend"}
    [skill] = open_card.skills
    assert (skill.id, skill.name, list(skill.tags)) == ("api-engineer", "API Engineer", ["python", "sql"])
    assert not open_card.security_schemes and not open_card.security_requirements
    roleless = agent_card(Exposed("ops", "Ops", " ", ()), "http://h:1/ops", version="1", token_required=False)
    assert roleless.description.startswith("Ops, a NexySync agent")
    assert (roleless.skills[0].id, roleless.skills[0].name, list(roleless.skills[0].tags)) == (
        "agent",
        "agent",
        ["agent"],
    )
    locked = agent_card(agent, "http://h:1/backend", version="1", token_required=True)
    assert locked.security_schemes["bearer"].http_auth_security_scheme.scheme == "Bearer"
    assert list(locked.security_requirements[0].schemes) == ["bearer"]


async def test_the_token_guards_everything_but_the_cards() -> None:
    async def ok(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    inner = Starlette(routes=[Route("/{path:path}", ok, methods=["GET", "POST"])])
    app = BearerToken(inner, "s3cret")  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b") as client:
        assert (await client.get("/backend/.well-known/agent-card.json")).status_code == 200
        assert (await client.get("/.well-known/agent-card.json")).status_code == 200
        refused = await client.post("/backend", json={})
        assert refused.status_code == 401 and "Bearer" in refused.headers["www-authenticate"]
        assert (await client.post("/backend", headers={"Authorization": "Bearer s3cre"})).status_code == 401
        assert (await client.post("/backend", headers={"Authorization": "Bearer s3cret"})).status_code == 200


def test_a_call_reads_the_last_state_and_the_answer() -> None:
    seen: list[tuple[str, str]] = []
    following = _Following(lambda state, text: seen.append((state, text)))
    working = TaskStatus(state=TaskState.TASK_STATE_WORKING)
    done = TaskStatus(
        state=TaskState.TASK_STATE_COMPLETED, message=Message(role=Role.ROLE_AGENT, parts=[Part(text="all done")])
    )
    following.take(StreamResponse(task=Task(id="t", context_id="c", status=TaskStatus(state=1))))
    following.take(StreamResponse(status_update=TaskStatusUpdateEvent(task_id="t", context_id="c", status=working)))
    following.take(StreamResponse(status_update=TaskStatusUpdateEvent(task_id="t", context_id="c", status=done)))
    assert following.result.to_dict() == {
        "state": "completed",
        "text": "all done",
        "task_id": "t",
        "context_id": "c",
        "updates": ["submitted", "working", "completed"],
    }
    assert seen == [("submitted", ""), ("working", ""), ("completed", "all done")]
    assert state_name(TaskState.TASK_STATE_INPUT_REQUIRED) == "input-required"


def test_a2a_serve_needs_agents_to_expose() -> None:
    args = build_parser().parse_args(["a2a", "serve", "--expose", "backend,helper"])
    assert (args.host, args.port, args.expose) == ("127.0.0.1", 8790, "backend,helper")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["a2a", "serve"])


def test_owner_context_carries_the_owner() -> None:
    context = owner_context("alice")
    assert isinstance(context, ServerCallContext) and context.user.user_name == "alice"
    assert owner_context("").user.is_authenticated is False


def test_without_the_a2a_extra_the_commands_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    from nexysync_cli.main import main

    monkeypatch.setitem(sys.modules, "a2a", None)  # import a2a raises ImportError
    assert main(["a2a", "call", "http://127.0.0.1:9/x", "--text", "hi"]) == 1
    assert "pip install 'nexysync-mcp[a2a]'" in capsys.readouterr().err


def test_the_tokens_file_gives_the_longest_matching_prefix_and_only_at_a_slash(tmp_path: Path) -> None:
    import json as json_module

    from nexysync import KeyFileError
    from nexysync_a2a.call import TOKENS_FILE, token_for

    assert token_for("https://a.example/x", tmp_path) is None  # no file
    path = tmp_path / TOKENS_FILE
    path.write_text(
        json_module.dumps(
            {"https://a.example": "whole-host", "https://a.example/team/": "team", "http://b.test/x": "b"}
        )
    )
    path.chmod(0o600)
    assert token_for("https://a.example/agent", tmp_path) == "whole-host"
    assert token_for("https://a.example", tmp_path) == "whole-host"
    assert token_for("https://a.example/team/planner", tmp_path) == "team"
    assert token_for("https://a.example.evil.test/agent", tmp_path) is None  # not at a slash: no leak
    assert token_for("http://b.test/xy", tmp_path) is None
    path.chmod(0o644)
    with pytest.raises(KeyFileError):
        token_for("https://a.example/agent", tmp_path)
    path.chmod(0o600)
    path.write_text('{"https://a.example": 42}')
    with pytest.raises(ValueError, match="JSON object of URL prefix to token"):
        token_for("https://a.example/agent", tmp_path)
