"""One record per tool: what it declares to the client and which handler serves each action.

A :class:`Tool` holds everything about one tool: its name and description, its parameters (the
input schema), its hints (annotations), the keys its answers carry (the output schema), and its
action → handler map. The ``action`` parameter's values are the map's keys, so what the client
is offered and what is served cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import mcp_types

from nexysync_mcp.arguments import Arguments, required_action

if TYPE_CHECKING:
    from nexysync import AsyncClient
    from nexysync_mcp.agent import AgentLink

__all__ = ["Answer", "Call", "Handler", "Param", "Progress", "Tool"]

#: Reports progress of the current tool call: ``(progress, total, message)``.
Progress = Callable[[float, float | None, str | None], Awaitable[None]]


@dataclass(frozen=True)
class Param:
    """One tool parameter.

    Attributes:
        name: The argument's name on the wire.
        description: What it is, in a few words (it is read by the AI on every request).
        type: Its JSON type: ``string``, ``number``, ``integer``, ``boolean`` or ``array`` (of strings).
        enum: The allowed values of a string, if fixed.
    """

    name: str
    description: str
    type: str = "string"
    enum: tuple[str, ...] = ()

    def schema(self) -> dict[str, Any]:
        """Return its JSON schema."""
        schema: dict[str, Any] = {"type": self.type}
        if self.enum:
            schema["enum"] = list(self.enum)
        if self.type == "array":
            schema["items"] = {"type": "string"}
        schema["description"] = self.description
        return schema


@dataclass(frozen=True)
class Answer:
    """One key worth knowing in a tool's answers (a property of its output schema).

    Attributes:
        type: Its JSON type, the same in every action's answer that carries it.
        description: What it holds, in a few words.
    """

    type: str
    description: str = ""

    def schema(self) -> dict[str, Any]:
        """Return its JSON schema: typed, so that a strict client can check it."""
        return {"type": self.type, "description": self.description} if self.description else {"type": self.type}


#: Every tool's answer may be a list (``items``) or a sentence (``text``): see ``structured``.
_ANY_TOOL = {"items": Answer("array"), "text": Answer("string")}


@dataclass(frozen=True)
class Call:
    """One call of one action, as its handler sees it.

    Attributes:
        link: The agent's client and inbox.
        args: The call's arguments, read with the checks each action needs.
        progress: Reports progress to the client, or None when the client asked for none.
    """

    link: AgentLink
    args: Arguments
    progress: Progress | None = None

    @property
    def client(self) -> AsyncClient:
        """The agent's client.

        Raises:
            ToolFailure: no keys are configured yet.
        """
        return self.link.require()


#: Serves one action: returns the text the AI reads (compact JSON or a sentence), or raises.
Handler = Callable[[Call], Awaitable[str]]


@dataclass(frozen=True)
class Tool:
    """One MCP tool.

    Attributes:
        name: The tool's name.
        description: One short paragraph: what each action does and which parameters it takes.
        annotations: Its hints; a tool serves several actions, so each hint holds for all of them.
        params: Its parameters besides ``action`` (which the record adds from ``actions``).
        answers: The keys worth knowing in its answers, typed and described (its output schema).
        actions: Action → handler, for a tool called with an ``action``.
        handler: The one handler of a tool without actions.
        required: The parameters every call must give (``action`` is added for an action tool).
    """

    name: str
    description: str
    annotations: mcp_types.ToolAnnotations
    params: tuple[Param, ...]
    answers: Mapping[str, Answer] = field(default_factory=dict)
    actions: Mapping[str, Handler] = field(default_factory=dict)
    handler: Handler | None = None
    required: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.handler is None) == (not self.actions):
            raise ValueError(f"tool {self.name}: give either actions or one handler")

    @property
    def all_params(self) -> tuple[Param, ...]:
        """Its parameters as the client sees them: ``action`` first for an action tool."""
        if not self.actions:
            return self.params
        return (Param("action", "What to do.", enum=tuple(self.actions)), *self.params)

    def input_schema(self) -> dict[str, Any]:
        """Return its JSON schema: flat, no titles, no ``anyOf`` for optional values."""
        required = ("action", *self.required) if self.actions else self.required
        return {
            "type": "object",
            "properties": {param.name: param.schema() for param in self.all_params},
            "required": list(required),
        }

    def output_schema(self) -> dict[str, Any]:
        """Return its output schema: an object, with the keys worth knowing typed and described.

        Other keys are allowed (an answer carries more than its schema names). A list answer
        goes out as ``items``, a sentence as ``text`` (see ``structured``).
        """
        answers = {**self.answers, **_ANY_TOOL}
        return {"type": "object", "properties": {name: answer.schema() for name, answer in answers.items()}}

    def declaration(self) -> mcp_types.Tool:
        """Return what ``tools/list`` says of it."""
        return mcp_types.Tool(
            name=self.name,
            # At the top level too: clients that show a tool's title read it there, not in the hints.
            title=self.annotations.title if self.annotations is not None else None,
            description=self.description,
            input_schema=self.input_schema(),
            output_schema=self.output_schema(),
            annotations=self.annotations,
        )

    async def run(self, link: AgentLink, values: Mapping[str, Any], progress: Progress | None = None) -> str:
        """Serve one call: pick the action's handler and run it.

        Raises:
            ToolFailure: no or an unknown ``action``, no keys configured; or whatever the handler raises.
        """
        if self.handler is not None:
            return await self.handler(Call(link, Arguments(self.name, values), progress))
        action = required_action(self.name, values, tuple(self.actions))
        link.require()  # every action talks to the API: say first how to configure keys
        return await self.actions[action](Call(link, Arguments(action, values), progress))
