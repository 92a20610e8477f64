"""How an A2A message becomes a NexySync message, and a NexySync reply an A2A message and task state.

**Inbound.** The text parts become the payload (joined by a blank line); each data part is added
to the payload as a JSON block, so that an agent reading the payload sees it, and is kept whole in
the encrypted metadata under ``a2a.data``. A URL part becomes a line ``file: NAME <URL>``. Raw
bytes are refused (``ContentTypeNotSupportedError``): a file belongs in NexySync's files, and the
caller can send its URL. The topic is the first line of the text, cut at 60 characters.

**Replies.** The NexySync agent answers the bridge's request with a message whose ``reply_to`` is
that request. Its type says what the task becomes:

- ``response``: the task is ``completed``; the reply is the task's message and its ``reply`` artifact;
- ``request`` (the agent asks back): the task is ``input-required``; the A2A client's next
  message on the task goes to the agent as a reply to that question;
- ``notification``: progress; the task stays ``working`` with the reply as its status message.

A reply's metadata may name the state instead: ``{"a2a": {"state": "rejected"}}`` (or
``failed``, ``completed``, ``input-required``, ``working``). ``a2a.data`` in a reply's metadata
(a list of JSON values) comes back as data parts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from a2a.helpers.proto_helpers import new_data_part
from a2a.types.a2a_pb2 import Message as A2AMessage
from a2a.types.a2a_pb2 import Part, Role, TaskState
from a2a.utils.errors import ContentTypeNotSupportedError, InvalidParamsError
from google.protobuf.json_format import MessageToDict

from nexysync.types import Message

__all__ = ["NAMED_STATES", "Outgoing", "reply_state", "to_a2a", "to_nexysync"]

#: The states a reply's ``a2a.state`` may name.
NAMED_STATES = {
    "working": TaskState.TASK_STATE_WORKING,
    "input-required": TaskState.TASK_STATE_INPUT_REQUIRED,
    "completed": TaskState.TASK_STATE_COMPLETED,
    "rejected": TaskState.TASK_STATE_REJECTED,
    "failed": TaskState.TASK_STATE_FAILED,
}
_BY_TYPE = {
    "response": TaskState.TASK_STATE_COMPLETED,
    "request": TaskState.TASK_STATE_INPUT_REQUIRED,
    "notification": TaskState.TASK_STATE_WORKING,
}
_TOPIC_LENGTH = 60


@dataclass(frozen=True)
class Outgoing:
    """A NexySync message made from an A2A one.

    Attributes:
        topic: The first line of the text (or ``A2A request``), at most 60 characters.
        payload: The text, data and URL parts, readable as one text.
        metadata: ``{"a2a": {...}}``: the A2A ids and the data parts whole.
    """

    topic: str
    payload: str
    metadata: dict[str, Any]


def to_nexysync(message: A2AMessage, *, task_id: str, context_id: str) -> Outgoing:
    """Return the NexySync message an A2A message becomes (see the module's docs).

    Raises:
        ContentTypeNotSupportedError: a part holds raw bytes.
        InvalidParamsError: no part holds anything to send.
    """
    texts: list[str] = []
    data: list[Any] = []
    for part in message.parts:
        kind = part.WhichOneof("content")
        if kind == "text":
            texts.append(part.text)
        elif kind == "data":
            value = MessageToDict(part).get("data")
            data.append(value)
            texts.append("```json\n" + json.dumps(value, indent=2, ensure_ascii=False) + "\n```")
        elif kind == "url":
            texts.append(f"file: {part.filename or 'unnamed'} <{part.url}>")
        elif kind == "raw":
            raise ContentTypeNotSupportedError(
                message="the bridge does not carry raw file bytes; share the file and send its URL"
            )
    if not any(text.strip() for text in texts):
        raise InvalidParamsError(message="the message has no text, data or URL part")
    payload = "\n\n".join(texts)
    first = next((line.strip() for line in payload.splitlines() if line.strip()), "")
    if first.startswith("```"):
        first = "A2A request"
    topic = first if len(first) <= _TOPIC_LENGTH else first[: _TOPIC_LENGTH - 1] + "…"
    about: dict[str, Any] = {"task_id": task_id, "context_id": context_id, "message_id": message.message_id}
    if data:
        about["data"] = data
    return Outgoing(topic, payload, {"a2a": about})


def _a2a_of(reply: Message) -> Mapping[str, Any]:
    metadata = reply.metadata
    about = metadata.get("a2a") if isinstance(metadata, Mapping) else None
    return about if isinstance(about, Mapping) else {}


def reply_state(reply: Message) -> TaskState:
    """Return the task state a NexySync reply moves the task to: its ``a2a.state``, else by its type."""
    named = _a2a_of(reply).get("state")
    if isinstance(named, str) and named in NAMED_STATES:
        return NAMED_STATES[named]
    return _BY_TYPE.get(str(reply.type), TaskState.TASK_STATE_COMPLETED)


def to_a2a(reply: Message, *, task_id: str, context_id: str) -> A2AMessage:
    """Return a NexySync reply as the agent's A2A message: its payload as text, ``a2a.data`` as data parts."""
    parts = [Part(text=reply.payload)]
    data = _a2a_of(reply).get("data")
    if isinstance(data, list):
        parts += [new_data_part(value) for value in data]
    return A2AMessage(
        message_id=reply.id,
        task_id=task_id,
        context_id=context_id,
        role=Role.ROLE_AGENT,
        parts=parts,
    )
