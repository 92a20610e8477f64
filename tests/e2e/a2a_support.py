"""What the A2A tests share: a scripted NexySync agent, the bridge as a process, and a small A2A agent.

The scripted agent answers the bridge's requests by the payload's first word:

- ``echo TEXT``: a ``response`` ``echo: TEXT``, with ``{"length": N}`` as a data part;
- ``ask TEXT``: a ``request`` (a question: the task becomes ``input-required``), ``Which environment?``;
  the answer to it gets a ``response`` ``deploying to ANSWER``;
- ``slow NAME``: a ``notification`` ``on it``, then, once the test opens the gate ``NAME``, a
  ``response`` ``done: NAME``;
- ``hold``: no answer (a task to cancel);
- ``reject``: a ``response`` whose metadata names the state ``rejected``;
- anything else: a ``response`` ``noted: PAYLOAD``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from a2a.helpers.proto_helpers import get_message_text, new_text_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import AgentCapabilities, AgentCard, AgentInterface, AgentSkill, Part
from cli_support import CliProcess
from starlette.applications import Starlette

from nexysync import Client
from nexysync.types import Message
from nexysync_a2a.executor import submitted

__all__ = ["BridgeProcess", "ScriptedAgent", "echo_agent", "free_port", "wait_for_card"]


def free_port() -> int:
    """Return a loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_card(url: str, deadline_s: float = 30.0) -> dict[str, Any]:
    """Return the agent card at ``url`` once it is served; fail after ``deadline_s``."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                card: dict[str, Any] = json.load(response)
                return card
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class ScriptedAgent:
    """A NexySync agent, in a thread of the test, that answers as the module's docs say.

    Attributes:
        received: Every message it got, in order.
        gates: The gates ``slow NAME`` waits on (set one to let its answer go).
    """

    def __init__(self, key_file: Path) -> None:
        self.client = Client.from_key_file(key_file)
        self.received: list[Message] = []
        self.gates: dict[str, threading.Event] = {}
        self._questions: set[str] = set()
        self._ready = threading.Event()
        self._stream: Any = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(30), "the scripted agent's stream did not open"

    def gate(self, name: str) -> threading.Event:
        """Return the gate ``slow NAME`` waits on."""
        return self.gates.setdefault(name, threading.Event())

    def _run(self) -> None:
        with self.client.stream() as events:
            self._stream = events
            events.open()
            self._ready.set()
            for event in events:
                if event.type == "new_message":
                    message = event.message()
                    self.received.append(message)
                    threading.Thread(target=self._answer, args=(message,), daemon=True).start()

    def _reply(self, to: Message, kind: str, payload: str, metadata: Any = None) -> Message:
        return self.client.messages.send(
            to.from_, topic=f"re: {to.topic}", payload=payload, type=kind, reply_to=to.id, metadata=metadata
        )

    def _answer(self, message: Message) -> None:
        if message.type.value != "request":
            return  # a cancellation notice: nothing to answer
        word, _, rest = message.payload.partition(" ")
        if message.reply_to in self._questions:
            self._reply(message, "response", f"deploying to {message.payload}")
        elif word == "echo":
            self._reply(message, "response", f"echo: {rest}", {"a2a": {"data": [{"length": len(rest)}]}})
        elif word == "ask":
            self._questions.add(self._reply(message, "request", "Which environment?").id)
        elif word == "slow":
            self._reply(message, "notification", "on it")
            self.gate(rest).wait(60)
            self._reply(message, "response", f"done: {rest}")
        elif word == "reject":
            self._reply(message, "response", "not mine to do", {"a2a": {"state": "rejected"}})
        elif word != "hold":
            self._reply(message, "response", f"noted: {message.payload}")

    def close(self) -> None:
        """Stop answering."""
        if self._stream is not None:
            self._stream.close()
        self.client.close()


class BridgeProcess:
    """``nexysync a2a serve`` in a workspace, as a real process.

    Args:
        args: The serve options (``--expose``, ``--host``, ...); ``--port`` is added.
        config_dir: The CLI's config dir.
        workspace: The bridge agent's workspace.
        port: The port (a free one by default).
        env: Extra environment.
    """

    def __init__(
        self,
        args: list[str],
        *,
        config_dir: Path,
        workspace: Path,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = CliProcess(
            ["a2a", "serve", *args, "--port", str(self.port)], config_dir=config_dir, cwd=workspace, env=env
        )

    def start(self, first_slug: str) -> BridgeProcess:
        """Wait until the card of ``first_slug`` is served."""
        self.process.wait_for_stderr("tasks are kept in")
        wait_for_card(f"{self.url}/{first_slug}/.well-known/agent-card.json")
        return self

    def stop(self) -> None:
        """Kill it (no goodbye: what it holds must already be on disk)."""
        self.process.kill()

    def interrupt(self, deadline_s: float = 15.0) -> int:
        """Stop it as Ctrl-C does; return its exit code (fail if it does not stop within ``deadline_s``)."""
        self.process.process.send_signal(signal.SIGINT)
        return self.process.process.wait(timeout=deadline_s)


class _Echo(AgentExecutor):
    """A plain A2A agent: ``working``, then ``completed`` with ``echo: TEXT`` as its message and artifact."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id is not None and context.context_id is not None and context.message is not None
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        if context.current_task is None:
            await event_queue.enqueue_event(
                submitted(context.message, task_id=context.task_id, context_id=context.context_id)
            )
        await updater.start_work()
        text = f"echo: {get_message_text(context.message)}"
        await updater.add_artifact([Part(text=text)], name="echo")
        await updater.complete(new_text_message(text, context_id=context.context_id, task_id=context.task_id))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError


@contextmanager
def echo_agent() -> Iterator[str]:
    """Run a small A2A agent (the A2A SDK's own server) on a free port; yield its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    card = AgentCard(
        name="Echo",
        description="Says back what it is told.",
        supported_interfaces=[AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0")],
        version="1.0.0",
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="echo", name="echo", description="echoes", tags=["echo"])],
    )
    handler = DefaultRequestHandler(agent_executor=_Echo(), task_store=InMemoryTaskStore(), agent_card=card)
    app = Starlette(routes=[*create_agent_card_routes(card), *create_jsonrpc_routes(handler, "/")])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    try:
        wait_for_card(url + "/.well-known/agent-card.json")
        yield url
    finally:
        server.should_exit = True
        thread.join(10)
