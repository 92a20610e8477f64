"""``ns_task``: the project's shared task board (titles, bodies and results end-to-end encrypted)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mcp_types import ToolAnnotations

from nexysync import ConflictError, NotFoundError
from nexysync_mcp.errors import ToolFailure
from nexysync_mcp.output import dumps, iso_time
from nexysync_mcp.tools.record import Answer, Call, Param, Tool

if TYPE_CHECKING:
    from nexysync.types import Task

__all__ = ["TOOL", "task_view"]

#: Tasks one ``list`` shows; past it the answer says there are more.
LIST_LIMIT = 100
_STATES = ("open", "claimed", "done", "cancelled")


def task_view(task: Task, *, whole: bool = True) -> dict[str, Any]:
    """Return a task as the AI sees it (with ``whole``: its body and result too)."""
    view: dict[str, Any] = {"id": task.id, "title": task.title, "state": task.state.value}
    if task.assignee:
        view["assignee"] = task.assignee
    if task.blocked_by:
        view["blocked_by"] = task.blocked_by
    if whole:
        view.update(body=task.body, created_by=task.created_by, updated_at=iso_time(task.updated_at))
        if task.result is not None:
            view["result"] = task.result.text
    return view


@contextmanager
def _on_task(task_id: str) -> Iterator[None]:
    """Say in words when the task is missing, or a change of it is refused (the code first)."""
    try:
        yield
    except NotFoundError as error:
        raise ToolFailure(f"No task {task_id} (ns_task action=list shows them).") from error
    except ConflictError as error:
        raise ToolFailure(f"{error.code}: {error.detail}") from error


async def add(call: Call) -> str:
    """Add a task; ``blocked_by`` tasks must be done before it can be claimed."""
    task = await call.client.tasks.create(
        call.args.required_text("title"),
        body=call.args.text("body"),
        blocked_by=call.args.strings("blocked_by") or None,
    )
    return dumps(task_view(task, whole=False))


async def list_tasks(call: Call) -> str:
    """The board (by state), oldest first, without bodies."""
    state = call.args.choice("state", _STATES)
    page = await call.client.tasks.list(state=state, limit=LIST_LIMIT).first_page()
    answer: dict[str, Any] = {"tasks": [task_view(task, whole=False) for task in page.data]}
    if page.next_cursor:
        answer["more"] = True
    return dumps(answer)


async def get(call: Call) -> str:
    """One task in full."""
    task_id = call.args.required_text("id")
    with _on_task(task_id):
        return dumps(task_view(await call.client.tasks.get(task_id)))


async def claim(call: Call) -> str:
    """Take an open task (one claimer wins)."""
    task_id = call.args.required_text("id")
    with _on_task(task_id):
        return dumps(task_view(await call.client.tasks.claim(task_id), whole=False))


async def release(call: Call) -> str:
    """Give a claimed task back."""
    task_id = call.args.required_text("id")
    with _on_task(task_id):
        return dumps(task_view(await call.client.tasks.release(task_id, force=call.args.flag("force")), whole=False))


async def done(call: Call) -> str:
    """Mark the caller's task done, with a result."""
    task_id = call.args.required_text("id")
    with _on_task(task_id):
        return dumps(task_view(await call.client.tasks.done(task_id, text=call.args.text("result")), whole=False))


async def cancel(call: Call) -> str:
    """Cancel a task the caller added."""
    task_id = call.args.required_text("id")
    with _on_task(task_id):
        return dumps(task_view(await call.client.tasks.cancel(task_id), whole=False))


TOOL = Tool(
    name="ns_task",
    description=(
        "The project's shared task board (encrypted). add: title, optional body, blocked_by; list: by state; "
        "get: id; claim: id (one agent wins; refused while a blocker is not done); release: id; "
        "done: id, optional result; cancel: id (yours)."
    ),
    annotations=ToolAnnotations(
        title="NexySync: task board", read_only_hint=False, destructive_hint=True, idempotent_hint=False,
        open_world_hint=True,
    ),
    params=(
        Param("id", "Task id (get, claim, release, done, cancel)."),
        Param("title", "What is to be done (add)."),
        Param("body", "Details (add)."),
        Param("blocked_by", "Task ids to be done first (add).", "array"),
        Param("state", "Only tasks in this state (list).", enum=_STATES),
        Param("result", "What came of it (done)."),
        Param("force", "Release another agent's claim once it is idle (release).", "boolean"),
    ),
    answers={
        "id": Answer("string", "the task"),
        "state": Answer("string", "open, claimed, done or cancelled"),
        "tasks": Answer("array", "the board"),
    },
    actions={
        "add": add, "list": list_tasks, "get": get, "claim": claim, "release": release, "done": done,
        "cancel": cancel,
    },
)  # fmt: skip
