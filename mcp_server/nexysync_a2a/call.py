"""Call an external A2A agent (``nexysync a2a call``, and the MCP server's ``a2a`` action).

The A2A SDK's client does the protocol: it reads the agent's card, picks JSON-RPC or HTTP+JSON
from its interfaces, sends the message and follows the task (streaming when asked and offered).
:func:`call` gives back where the task ended, and its text, in plain terms.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from a2a.client import ClientConfig, create_client
from a2a.helpers.proto_helpers import get_artifact_text, get_message_text
from a2a.types.a2a_pb2 import (
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    StreamResponse,
    Task,
    TaskState,
)

from nexysync.keyfile import check_key_file_private

__all__ = ["TOKENS_FILE", "CallResult", "call", "http_status", "state_name", "token_for"]

#: Bearer tokens for the A2A agents this workspace calls: ``{"URL prefix": "token", ...}``, in ``.nexysync/``.
TOKENS_FILE = "a2a-tokens.json"

#: States after which the caller has something to read (the task is over, or waits for them).
_ENDED = {"completed", "failed", "canceled", "rejected", "input-required", "auth-required"}


def token_for(url: str, folder: Path) -> str | None:
    """Return the bearer token for the A2A agent at ``url`` from ``folder/a2a-tokens.json``, if it names one.

    The file maps URL prefixes to tokens; the longest prefix that ``url`` starts with wins, and a
    prefix matches only up to a ``/`` (``https://a.example`` is not a prefix of
    ``https://a.example.evil.test``). Like a key file, it must be private to its owner.

    Raises:
        KeyFileError: the file is not private.
        ValueError: the file is not a JSON object of strings.
    """
    path = folder / TOKENS_FILE
    try:
        with path.open("rb") as handle:
            check_key_file_private(path, os.fstat(handle.fileno()))
            tokens = json.load(handle)
    except FileNotFoundError:
        return None
    if not isinstance(tokens, dict) or not all(isinstance(v, str) for v in [*tokens, *tokens.values()]):
        raise ValueError(f"{path} must be a JSON object of URL prefix to token")
    matching = [prefix for prefix in tokens if url == prefix.rstrip("/") or url.startswith(prefix.rstrip("/") + "/")]
    return str(tokens[max(matching, key=len)]) if matching else None


def http_status(error: BaseException) -> int | None:
    """Return the HTTP status behind an A2A client error (the SDK chains the ``httpx`` error), if any."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, httpx.HTTPStatusError):
            return seen.response.status_code
        status = getattr(seen, "status_code", None)  # AgentCardResolutionError
        if isinstance(status, int):
            return status
        seen = seen.__cause__
    return None


def state_name(state: TaskState) -> str:
    """Return a task state as the A2A spec writes it (``input-required``, ``completed``, ...)."""
    name: str = TaskState.Name(state)
    return name.removeprefix("TASK_STATE_").lower().replace("_", "-")


@dataclass
class CallResult:
    """Where an A2A call ended.

    Attributes:
        state: The task's state (``completed``, ``input-required``, ``failed``, ...), or
            ``message`` when the agent answered with a message and no task.
        text: The agent's answer: its last status message, else its artifacts, as text.
        task_id: The task (give it back with the next text to answer an ``input-required``).
        context_id: The conversation (give it back to stay in it).
        updates: Every state the task went through, in order.
    """

    state: str
    text: str
    task_id: str | None
    context_id: str | None
    updates: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the result as plain JSON values."""
        return asdict(self)


def _task_text(task: Task) -> str:
    if task.status.HasField("message") and get_message_text(task.status.message):
        return get_message_text(task.status.message)
    return "\n\n".join(get_artifact_text(artifact) for artifact in task.artifacts)


class _Following:
    """What the responses of one call told so far."""

    def __init__(self, on_update: Callable[[str, str], None] | None) -> None:
        self.result = CallResult(state="submitted", text="", task_id=None, context_id=None)
        self._on_update = on_update
        self._artifacts: list[str] = []

    def _moved(self, state: str, text: str) -> None:
        result = self.result
        if text:
            result.text = text
        if not result.updates or result.updates[-1] != state or text:
            result.updates.append(state)
            if self._on_update is not None:
                self._on_update(state, text)
        result.state = state

    def take(self, response: StreamResponse) -> None:
        kind = response.WhichOneof("payload")
        if kind == "message":
            message = response.message
            self.result.context_id = message.context_id or self.result.context_id
            self._moved("message", get_message_text(message))
        elif kind == "task":
            task = response.task
            self.result.task_id, self.result.context_id = task.id, task.context_id
            self._moved(state_name(task.status.state), _task_text(task))
        elif kind == "status_update":
            update = response.status_update
            self.result.task_id, self.result.context_id = update.task_id, update.context_id
            text = get_message_text(update.status.message) if update.status.HasField("message") else ""
            self._moved(state_name(update.status.state), text)
        elif kind == "artifact_update":
            self._artifacts.append(get_artifact_text(response.artifact_update.artifact))
            if not self.result.text:
                self.result.text = "\n\n".join(self._artifacts)


async def call(
    url: str,
    text: str,
    *,
    token: str | None = None,
    stream: bool = False,
    task_id: str | None = None,
    context_id: str | None = None,
    timeout: float = 300.0,
    on_update: Callable[[str, str], None] | None = None,
) -> CallResult:
    """Send ``text`` to the A2A agent at ``url`` and wait until its task ends or asks back.

    Args:
        url: The agent's base URL (its card is at ``URL/.well-known/agent-card.json``).
        text: What to ask.
        token: A bearer token, when the agent's card requires one.
        stream: Follow the task's updates as they happen (when the agent offers streaming).
        task_id: Answer this task (it asked back: ``input-required``).
        context_id: Stay in this conversation.
        timeout: Seconds to wait for the answer at most.
        on_update: Called with ``(state, text)`` at each update of the task.

    Raises:
        A2AClientError: the agent refused the request or could not be reached (the SDK's errors).
        httpx.HTTPError: the card could not be read.
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(headers=headers, timeout=timeout) as http:
        client = await create_client(url, ClientConfig(streaming=stream, httpx_client=http))
        message = Message(
            message_id=str(uuid.uuid4()),
            role=Role.ROLE_USER,
            parts=[Part(text=text)],
            task_id=task_id or "",
            context_id=context_id or "",
        )
        following = _Following(on_update)
        try:
            request = SendMessageRequest(message=message, configuration=SendMessageConfiguration())
            async for response in client.send_message(request):
                following.take(response)
                if following.result.state in _ENDED:
                    break
        finally:
            await client.close()
    return following.result
