"""The A2A bridge, driven by the official A2A SDK's client over JSON-RPC and HTTP+JSON.

A real server, the bridge as a real process (``nexysync a2a serve``) and scripted NexySync agents
(see ``a2a_support``): cards, blocking and streaming sends, tasks read back and paged, cancel,
``input-required`` and its answer, contexts as threads, a bridge killed and started again, the
bearer token, the protocol version, and no plaintext in the server's files.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.client import Client as A2AClient
from a2a.client import ClientConfig, create_client
from a2a.helpers.proto_helpers import get_artifact_text, get_message_text
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    StreamResponse,
    SubscribeToTaskRequest,
    Task,
    TaskState,
)
from a2a_support import BridgeProcess, ScriptedAgent, echo_agent, wait_for_card
from cli_support import CliProject, provision_project, run_cli
from jsonschema import Draft202012Validator
from mcp_raw import LEGACY, raw_mcp
from scan_support import encodings, files_holding

from nexysync_mcp.tools.messages import TOOL as MESSAGE_TOOL

pytestmark = pytest.mark.e2e

JSONRPC = "JSONRPC"
HTTP_JSON = "HTTP+JSON"


@dataclass
class World:
    project: CliProject
    bridge: BridgeProcess
    backend: ScriptedAgent
    helper: ScriptedAgent
    sent: list[str]  # every A2A text sent to the bridge (the scan looks for them)

    def url(self, slug: str) -> str:
        return f"{self.bridge.url}/{slug}"

    def restart_bridge(self) -> None:
        self.bridge.stop()
        self.bridge = BridgeProcess(
            ["--expose", "backend,helper"],
            config_dir=self.project.config_dir,
            workspace=self.project.workspaces["bridge"],
            port=self.bridge.port,
        ).start("backend")


@pytest.fixture(scope="module")
def world(dev_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("a2a")
    project = provision_project(dev_server.base_url, root, ("bridge", "backend", "helper", "gate"))
    backend = ScriptedAgent(project.workspaces["backend"] / ".nexysync" / "key")
    helper = ScriptedAgent(project.workspaces["helper"] / ".nexysync" / "key")
    bridge = BridgeProcess(
        ["--expose", "backend,helper"], config_dir=project.config_dir, workspace=project.workspaces["bridge"]
    )
    world = World(project, bridge, backend, helper, [])
    try:
        bridge.start("backend")
        yield world
    finally:
        world.bridge.stop()
        backend.close()
        helper.close()


def secret_word() -> str:
    return "w" + secrets.token_hex(8)


@pytest.fixture
async def rpc(world: World) -> AsyncIterator[A2AClient]:
    async with connect(world.url("backend"), JSONRPC) as client:
        yield client


class connect:
    """An A2A SDK client for the agent at ``url``, on one binding, streaming or not."""

    def __init__(self, url: str, binding: str, *, streaming: bool = False, token: str | None = None) -> None:
        self._url, self._binding, self._streaming = url, binding, streaming
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(timeout=60, headers=headers)

    async def __aenter__(self) -> A2AClient:
        config = ClientConfig(
            streaming=self._streaming, httpx_client=self._http, supported_protocol_bindings=[self._binding]
        )
        self._client = await create_client(self._url, config)
        return self._client

    async def __aexit__(self, *exc: object) -> None:
        await self._client.close()
        await self._http.aclose()


def message(text: str, *, task_id: str = "", context_id: str = "") -> Message:
    return Message(
        message_id=str(uuid.uuid4()),
        role=Role.ROLE_USER,
        parts=[Part(text=text)],
        task_id=task_id,
        context_id=context_id,
    )


async def send(
    world: World, client: A2AClient, text: str, *, immediately: bool = False, **ids: str
) -> list[StreamResponse]:
    world.sent.append(text)
    request = SendMessageRequest(
        message=message(text, **ids), configuration=SendMessageConfiguration(return_immediately=immediately)
    )
    return [response async for response in client.send_message(request)]


async def send_for_task(world: World, client: A2AClient, text: str, **options: Any) -> Task:
    responses = await send(world, client, text, **options)
    assert len(responses) == 1 and responses[0].HasField("task"), responses
    return responses[0].task


def state(task: Task) -> str:
    return TaskState.Name(task.status.state)


async def until(client: A2AClient, task_id: str, wanted: int, deadline_s: float = 30) -> Task:
    """Read a task until it is in state ``wanted``."""
    deadline = time.monotonic() + deadline_s
    while True:
        task = await client.get_task(GetTaskRequest(id=task_id))
        if task.status.state == wanted or time.monotonic() > deadline:
            return task
        time.sleep(0.1)


def test_each_exposed_agent_has_a_card_with_both_bindings(world: World) -> None:
    card = wait_for_card(world.url("backend") + "/.well-known/agent-card.json")
    assert card["name"] == "Backend"
    interfaces = {(i["protocolBinding"], i["url"], i["protocolVersion"]) for i in card["supportedInterfaces"]}
    assert interfaces == {
        (JSONRPC, world.url("backend"), "1.0"),
        (HTTP_JSON, world.url("backend"), "1.0"),
        (JSONRPC, world.url("backend"), "0.3"),  # for older clients, which read the card's url
    }
    assert card["capabilities"]["streaming"] is True
    assert card["skills"] and "securitySchemes" not in card  # loopback: no token
    helper = wait_for_card(world.url("helper") + "/.well-known/agent-card.json")
    assert helper["name"] == "Helper"
    # Two agents exposed: the root has no card (which one would it be?).
    assert httpx.get(world.bridge.url + "/.well-known/agent-card.json").status_code == 404


@pytest.mark.parametrize("binding", [JSONRPC, HTTP_JSON])
async def test_a_blocking_send_returns_the_agents_reply_as_a_completed_task(world: World, binding: str) -> None:
    word = secret_word()
    async with connect(world.url("backend"), binding) as client:
        task = await send_for_task(world, client, f"echo {word}")
    assert state(task) == "TASK_STATE_COMPLETED"
    assert get_message_text(task.status.message) == f"echo: {word}"
    [artifact] = task.artifacts
    assert artifact.name == "reply" and get_artifact_text(artifact) == f"echo: {word}"
    assert next(part.data for part in artifact.parts if part.HasField("data")).struct_value["length"] == len(word)
    # The agent got it as a request from the bridge's agent, the A2A ids in its (encrypted) metadata.
    got = next(m for m in world.backend.received if m.payload == f"echo {word}")
    assert got.from_ == "bridge" and got.type.value == "request" and got.topic == f"echo {word}"
    assert got.metadata["a2a"]["task_id"] == task.id and got.metadata["a2a"]["context_id"] == task.context_id


async def test_streaming_shows_every_status_as_it_happens(world: World) -> None:
    name = secret_word()
    gate = world.backend.gate(name)
    seen: list[str] = []
    async with connect(world.url("backend"), JSONRPC, streaming=True) as client:
        request = SendMessageRequest(message=message(f"slow {name}"))
        world.sent.append(f"slow {name}")
        async for response in client.send_message(request):
            kind = response.WhichOneof("payload")
            if kind == "task":
                seen.append(TaskState.Name(response.task.status.state))
            elif kind == "status_update":
                status = response.status_update.status
                text = get_message_text(status.message) if status.HasField("message") else ""
                seen.append(TaskState.Name(status.state) + (f" {text}" if text else ""))
                if text == "on it":
                    gate.set()  # the agent answers only once the test saw its progress
            elif kind == "artifact_update":
                seen.append("artifact " + get_artifact_text(response.artifact_update.artifact))
    assert seen == [
        "TASK_STATE_SUBMITTED",
        "TASK_STATE_WORKING",
        "TASK_STATE_WORKING on it",
        f"artifact done: {name}",
        f"TASK_STATE_COMPLETED done: {name}",
    ]


async def test_subscribe_to_task_follows_a_task_someone_else_started(world: World, rpc: A2AClient) -> None:
    name = secret_word()
    gate = world.backend.gate(name)
    task = await send_for_task(world, rpc, f"slow {name}", immediately=True)
    seen: list[str] = []
    async with connect(world.url("backend"), HTTP_JSON, streaming=True) as client:
        async for response in client.subscribe(SubscribeToTaskRequest(id=task.id)):
            kind = response.WhichOneof("payload")
            if kind == "task":
                seen.append("task " + TaskState.Name(response.task.status.state))
            elif kind == "status_update":
                status = response.status_update.status
                text = get_message_text(status.message) if status.HasField("message") else ""
                seen.append(TaskState.Name(status.state) + (f" {text}" if text else ""))
            elif kind == "artifact_update":
                seen.append("artifact " + get_artifact_text(response.artifact_update.artifact))
            gate.set()  # the agent finishes only once the subscriber is there
    assert seen[0].startswith("task TASK_STATE_")  # where the task was when the subscriber came
    assert seen[-2:] == [f"artifact done: {name}", f"TASK_STATE_COMPLETED done: {name}"]


async def test_get_task_and_list_tasks_page_through_everything(world: World, rpc: A2AClient) -> None:
    made = [await send_for_task(world, rpc, f"echo page {n}") for n in range(5)]
    again = await rpc.get_task(GetTaskRequest(id=made[0].id))
    assert again.id == made[0].id and state(again) == "TASK_STATE_COMPLETED"
    assert get_artifact_text(again.artifacts[0]) == "echo: page 0"
    listed: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await rpc.list_tasks(ListTasksRequest(page_size=2, page_token=token))
        assert len(page.tasks) <= 2
        listed += [task.id for task in page.tasks]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert len(listed) == len(set(listed)), "a task came twice"
    assert {task.id for task in made} <= set(listed)
    assert pages >= 3
    # Another exposed agent's tasks are its own.
    async with connect(world.url("helper"), JSONRPC) as helper:
        theirs = await helper.list_tasks(ListTasksRequest(page_size=100))
    assert not {task.id for task in made} & {task.id for task in theirs.tasks}


def cancel_notice(world: World, task_id: str) -> Any:
    """Return the one notice backend got that the task was canceled (it replies to the task's request)."""
    request = next(m for m in world.backend.received if m.metadata and m.metadata["a2a"]["task_id"] == task_id)
    deadline = time.monotonic() + 30
    while not any(m.reply_to == request.id for m in world.backend.received):
        assert time.monotonic() < deadline, "the agent was never told"
        time.sleep(0.1)
    [notice] = [m for m in world.backend.received if m.reply_to == request.id]
    # The bridge tells only while the task still waits on the agent, and stops waiting first: no second notice.
    bridge_file = world.project.workspaces["bridge"] / ".nexysync" / "a2a.db"
    with sqlite3.connect(bridge_file) as db:
        assert db.execute("SELECT count(*) FROM links WHERE task_id = ?", (task_id,)).fetchone() == (0,)
    return notice


async def test_cancel_tells_the_agent_and_ends_the_task(world: World, rpc: A2AClient) -> None:
    task = await send_for_task(world, rpc, "hold", immediately=True)
    working = await until(rpc, task.id, TaskState.TASK_STATE_WORKING)
    assert state(working) == "TASK_STATE_WORKING"  # the agent's copy was delivered
    canceled = await rpc.cancel_task(CancelTaskRequest(id=task.id))
    assert state(canceled) == "TASK_STATE_CANCELED"
    notice = cancel_notice(world, task.id)
    assert notice.type.value == "notification" and notice.metadata["a2a"]["state"] == "canceled"
    assert state(await rpc.get_task(GetTaskRequest(id=task.id))) == "TASK_STATE_CANCELED"


async def test_a_question_makes_the_task_input_required_and_the_answer_goes_back_to_it(
    world: World, rpc: A2AClient
) -> None:
    task = await send_for_task(world, rpc, "ask to deploy")
    assert state(task) == "TASK_STATE_INPUT_REQUIRED"
    assert get_message_text(task.status.message) == "Which environment?"
    # The follow-up names its task only: it stays in the task's context.
    answered = await send_for_task(world, rpc, "staging", task_id=task.id)
    assert answered.id == task.id and state(answered) == "TASK_STATE_COMPLETED"
    assert get_message_text(answered.status.message) == "deploying to staging"
    # On NexySync, the answer replied to the agent's question.
    question = next(m for m in world.backend.received if m.payload == "staging")
    thread = world.backend.client.messages.thread(question.id)
    asked = next(m for m in thread.data if m.payload == "Which environment?")
    assert question.reply_to == asked.id
    assert answered.context_id == task.context_id and question.metadata["a2a"]["context_id"] == task.context_id


async def test_one_context_is_one_thread_and_a_rejection_is_a_state(world: World, rpc: A2AClient) -> None:
    first = await send_for_task(world, rpc, "first in context")
    second = await send_for_task(world, rpc, "second in context", context_id=first.context_id)
    assert second.context_id == first.context_id and second.id != first.id
    got = next(m for m in world.backend.received if m.payload == "second in context")
    thread = world.backend.client.messages.thread(got.id)
    assert [m.payload for m in thread.data if m.from_ == "bridge"][:2] == ["first in context", "second in context"]
    rejected = await send_for_task(world, rpc, "reject")
    assert state(rejected) == "TASK_STATE_REJECTED"
    assert get_message_text(rejected.status.message) == "not mine to do"


async def test_bad_messages_and_versions_get_a2a_errors(world: World) -> None:
    url = world.url("backend")
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "SendMessage",
        "params": {"message": {"messageId": "m1", "role": "ROLE_USER", "parts": [{"raw": "aGk="}]}},
    }
    async with httpx.AsyncClient(timeout=30) as http:
        raw = (await http.post(url, json=body, headers={"A2A-Version": "1.0"})).json()
        assert raw["error"]["code"] == -32005, raw  # ContentTypeNotSupported
        body["params"]["message"]["parts"] = [{"text": "echo hi"}]
        wrong = (await http.post(url, json=body, headers={"A2A-Version": "9.0"})).json()
        assert wrong["error"]["code"] == -32009, wrong  # VersionNotSupported
        rest = await http.post(url + "/tasks/no-such-task", headers={"A2A-Version": "1.0"})
        assert rest.status_code == 404
        missing = (
            await http.post(
                url,
                json={"jsonrpc": "2.0", "id": 2, "method": "GetTask", "params": {"id": "nope"}},
                headers={"A2A-Version": "1.0"},
            )
        ).json()
        assert missing["error"]["code"] == -32001, missing  # TaskNotFound


async def test_an_a2a_0_3_client_gets_through_too(world: World) -> None:
    card = wait_for_card(world.url("backend") + "/.well-known/agent-card.json")
    assert card["url"] == world.url("backend") and card["protocolVersion"].startswith("0.3")  # 0.3's card fields
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "message/send",
        "params": {"message": {"messageId": "old-1", "role": "user", "parts": [{"kind": "text", "text": "echo old"}]}},
    }
    world.sent.append("echo old")
    async with httpx.AsyncClient(timeout=30) as http:
        answer = (await http.post(world.url("backend"), json=body)).json()  # no A2A-Version: 0.3
    task = answer["result"]
    assert task["kind"] == "task" and task["status"]["state"] == "completed", answer
    assert task["artifacts"][0]["parts"][0]["text"] == "echo: old"


async def test_a_bridge_stopped_mid_task_keeps_its_tasks_and_finishes_them(world: World, rpc: A2AClient) -> None:
    done = await send_for_task(world, rpc, "echo before the kill")
    name = secret_word()
    gate = world.backend.gate(name)
    pending = await send_for_task(world, rpc, f"slow {name}", immediately=True)
    held = await send_for_task(world, rpc, "hold", immediately=True)
    assert state(await until(rpc, pending.id, TaskState.TASK_STATE_WORKING)) == "TASK_STATE_WORKING"
    assert state(await until(rpc, held.id, TaskState.TASK_STATE_WORKING)) == "TASK_STATE_WORKING"
    # Ctrl-C with two tasks in flight: the bridge stops at once and leaves them in flight.
    assert world.bridge.interrupt() in (0, 1, 130)
    gate.set()  # the agent answers while the bridge is down
    deadline = time.monotonic() + 30
    while (
        not any(
            m.payload == f"done: {name}"
            for m in world.backend.client.messages.thread(
                next(m for m in world.backend.received if m.payload == f"slow {name}").id
            ).data
        )
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    world.restart_bridge()
    async with connect(world.url("backend"), HTTP_JSON) as client:
        kept = await client.get_task(GetTaskRequest(id=done.id))
        assert state(kept) == "TASK_STATE_COMPLETED" and get_artifact_text(kept.artifacts[0]) == "echo: before the kill"
        finished = await until(client, pending.id, TaskState.TASK_STATE_COMPLETED)
        # A task canceled after the restart (the SDK cancels it without the executor): the agent is told.
        canceled = await client.cancel_task(CancelTaskRequest(id=held.id))
        assert state(canceled) == "TASK_STATE_CANCELED"
    assert state(finished) == "TASK_STATE_COMPLETED"
    assert get_message_text(finished.status.message) == f"done: {name}"
    assert cancel_notice(world, held.id).metadata["a2a"]["state"] == "canceled"


def test_serve_refuses_what_it_cannot_expose(world: World) -> None:
    for expose, said in [
        ("backend,nobody", "no agent nobody in this project (its agents: backend, gate, helper)"),
        ("bridge", "bridge is the bridge's own agent"),
        (" , ", "name at least one agent to expose"),
    ]:
        done = run_cli(
            ["a2a", "serve", "--expose", expose, "--port", "9"],
            config_dir=world.project.config_dir,
            cwd=world.project.workspaces["bridge"],
        )
        assert done.returncode == 1 and said in done.stderr, (expose, done.stderr)


async def test_on_another_address_the_bridge_wants_its_token(world: World) -> None:
    bridge = BridgeProcess(
        ["--expose", "helper", "--host", "0.0.0.0"],
        config_dir=world.project.config_dir,
        workspace=world.project.workspaces["gate"],
    )
    try:
        said = bridge.process.wait_for_stderr("bearer token in")
        token = (world.project.workspaces["gate"] / ".nexysync" / "a2a-token").read_text().strip()
        assert str(world.project.workspaces["gate"]) in said and len(token) >= 32
        bridge.start("helper")
        root = wait_for_card(bridge.url + "/.well-known/agent-card.json")  # one agent: at the root too
        assert root["name"] == "Helper" and root["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]["scheme"]
        refused = httpx.post(bridge.url + "/helper/message:send", json={}, headers={"A2A-Version": "1.0"})
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        wrong = httpx.get(bridge.url + "/helper/tasks", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        tokenless = run_cli(
            ["a2a", "call", bridge.url + "/helper", "--text", "no token"],
            config_dir=world.project.config_dir,
            cwd=world.project.workspaces["gate"],
        )
        assert tokenless.returncode == 1 and "wants a bearer token" in tokenless.stderr, tokenless.stderr
        done = run_cli(
            ["--json", "a2a", "call", bridge.url + "/helper", "--text", "through the gate"],
            config_dir=world.project.config_dir,
            cwd=world.project.workspaces["gate"],
            env={"NEXYSYNC_A2A_TOKEN": token},
        )
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert answer["state"] == "completed" and answer["text"] == "noted: through the gate"
        # The AI's a2a action has no token: it says where one goes, then uses it from there.
        async with raw_mcp(world.project.workspaces["gate"], LEGACY) as mcp:
            refused = await mcp.call("ns_message", action="a2a", to=bridge.url + "/helper", payload="no token")
            assert refused.get("isError") and "a2a-tokens.json" in refused["content"][0]["text"]
            tokens = world.project.workspaces["gate"] / ".nexysync" / "a2a-tokens.json"
            tokens.write_text(json.dumps({bridge.url: token}))
            tokens.chmod(0o600)
            via_mcp = tool_answer(
                await mcp.call("ns_message", action="a2a", to=bridge.url + "/helper", payload="with the token file")
            )
        assert via_mcp["text"] == "noted: with the token file"
        # ...and so does the CLI when neither --token-file nor the variable gives one.
        done = run_cli(
            ["--json", "a2a", "call", bridge.url + "/helper", "--text", "from the file"],
            config_dir=world.project.config_dir,
            cwd=world.project.workspaces["gate"],
        )
        assert done.returncode == 0 and json.loads(done.stdout)["text"] == "noted: from the file", done.stderr
        tokens.unlink()
    finally:
        bridge.stop()


def tool_answer(result: dict[str, Any]) -> dict[str, Any]:
    """Return an ns_message answer, checked against the output schema the tool declares."""
    assert not result.get("isError"), result
    Draft202012Validator(MESSAGE_TOOL.output_schema()).validate(result["structuredContent"])
    parsed: dict[str, Any] = json.loads(result["content"][0]["text"])
    return parsed


async def test_an_mcp_agent_asks_an_a2a_agent_and_answers_its_question(world: World) -> None:
    # Round the world: an MCP agent's a2a call reaches the bridge, which asks backend over NexySync.
    async with raw_mcp(world.project.workspaces["gate"], LEGACY) as mcp:
        url = world.url("backend")
        echoed = tool_answer(await mcp.call("ns_message", action="a2a", to=url, payload="echo via mcp"))
        assert (echoed["state"], echoed["text"]) == ("completed", "echo: via mcp")
        asked = tool_answer(await mcp.call("ns_message", action="a2a", to=url, payload="ask from mcp"))
        assert asked["state"] == "input-required" and asked["text"] == "Which environment?"
        assert "reply_to" in asked["note"]
        answered = tool_answer(
            await mcp.call("ns_message", action="a2a", to=url, payload="prod", reply_to=asked["task_id"])
        )
        assert (answered["state"], answered["text"], answered["task_id"]) == (
            "completed",
            "deploying to prod",
            asked["task_id"],
        )
        refused = await mcp.call("ns_message", action="a2a", to="backend", payload="hi")
        assert refused.get("isError") and "URL" in refused["content"][0]["text"]
        nobody = await mcp.call("ns_message", action="a2a", to="http://127.0.0.1:9/x", payload="hi", timeout=5)
        assert nobody.get("isError") and "could not be asked" in nobody["content"][0]["text"]
    world.sent += ["echo via mcp", "ask from mcp"]


def test_a2a_call_reaches_an_external_a2a_agent(world: World) -> None:
    with echo_agent() as url:
        done = run_cli(
            ["a2a", "call", url, "--text", "hello from nexysync", "--stream"],
            config_dir=world.project.config_dir,
            cwd=world.project.workspaces["gate"],
        )
        assert done.returncode == 0, done.stderr
        assert "working" in done.stderr and "completed: echo: hello from nexysync" in done.stderr
        assert done.stdout.startswith("completed (task ") and "echo: hello from nexysync" in done.stdout
        blocking = run_cli(
            ["--json", "a2a", "call", url, "--text", "again"],
            config_dir=world.project.config_dir,
            cwd=world.project.workspaces["gate"],
        )
        assert blocking.returncode == 0, blocking.stderr
        assert json.loads(blocking.stdout)["text"] == "echo: again"
    nobody = run_cli(
        ["a2a", "call", url, "--text", "anyone?", "--timeout", "5"],
        config_dir=world.project.config_dir,
        cwd=world.project.workspaces["gate"],
    )
    assert nobody.returncode == 1 and url in nobody.stderr


# Last in the module: it scans for every text the other tests sent.
def test_the_server_never_sees_the_a2a_texts(world: World, dev_server: Any) -> None:
    assert world.sent, "the other tests sent nothing"
    texts = [text for text in world.sent if len(text) >= 12]
    needles = {f"{i} as {form}": value for i, text in enumerate(texts) for form, value in encodings(text).items()}
    bridge_file = world.project.workspaces["bridge"] / ".nexysync"
    assert files_holding(bridge_file, needles), "the scan must find the texts where they are (the bridge's file)"
    assert files_holding(Path(dev_server.data_dir), needles) == {}
