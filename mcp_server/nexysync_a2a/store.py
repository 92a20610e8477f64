"""The bridge's file: its A2A tasks, and what ties each to NexySync messages.

``.nexysync/a2a.db`` beside the key file (SQLite, ``0600`` in a ``0700`` folder). It holds the
plaintext of the A2A messages, as the search index does, on the agent's own machine; the
NexySync server sees only ciphertext. Tables:

- ``tasks``: every A2A task of every exposed agent, as the A2A SDK's protobuf bytes;
- ``links``: for a task in flight, the NexySync message it waits on (the bridge's request, whose
  replies move the task) and the agent's question when it is ``input-required``;
- ``contexts``: for each A2A context, the last NexySync message in it: the next task of the
  context replies to it, so that one A2A context is one NexySync thread;
- ``about``: whose file this is (the bridge's agent and project) and the stream's last event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from a2a.auth.user import User
from a2a.server.context import ServerCallContext
from a2a.server.owner_resolver import resolve_user_scope
from a2a.server.tasks import InMemoryTaskStore, TaskStore
from a2a.types.a2a_pb2 import ListTasksRequest, ListTasksResponse, Task, TaskState

from nexysync.keyfile import immediate_transaction, private_sqlite

__all__ = ["BRIDGE_FILE", "FINAL_STATES", "BridgeFile", "DiskTaskStore", "Link", "owner_context"]

BRIDGE_FILE = "a2a.db"

#: States a task never leaves.
FINAL_STATES = frozenset(
    {
        TaskState.TASK_STATE_COMPLETED,
        TaskState.TASK_STATE_CANCELED,
        TaskState.TASK_STATE_FAILED,
        TaskState.TASK_STATE_REJECTED,
    }
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    agent TEXT NOT NULL, id TEXT NOT NULL, owner TEXT NOT NULL, task BLOB NOT NULL,
    PRIMARY KEY (agent, id)
);
CREATE TABLE IF NOT EXISTS links (
    task_id TEXT PRIMARY KEY, agent TEXT NOT NULL, owner TEXT NOT NULL, context_id TEXT NOT NULL,
    waiting_on TEXT NOT NULL, question TEXT
);
CREATE TABLE IF NOT EXISTS contexts (
    agent TEXT NOT NULL, context_id TEXT NOT NULL, last TEXT NOT NULL,
    PRIMARY KEY (agent, context_id)
);
CREATE TABLE IF NOT EXISTS about (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Link:
    """What ties an A2A task in flight to NexySync.

    Attributes:
        task_id: The A2A task.
        agent: The exposed agent's slug.
        owner: The A2A caller the task belongs to (the SDK's owner scope).
        context_id: The A2A context.
        waiting_on: The bridge's NexySync message whose replies move the task.
        question: The agent's question, while the task is ``input-required``.
    """

    task_id: str
    agent: str
    owner: str
    context_id: str
    waiting_on: str
    question: str | None


#: The columns of ``links``, in the order of :class:`Link`'s fields.
_LINK_COLUMNS = "task_id, agent, owner, context_id, waiting_on, question"


class BridgeFile:
    """The bridge's SQLite file (see the module's docs).

    Args:
        path: The file; created ``0600`` when missing.
        identity: ``PROJECT/AGENT`` of the bridge's key.

    Raises:
        ValueError: the file belongs to another agent's bridge (its tasks wait on that agent's
            messages, which this key cannot follow).
    """

    def __init__(self, path: Path, identity: str) -> None:
        self.path = path
        self._db = private_sqlite(path)
        # In WAL mode NORMAL loses no commit when the bridge is killed, only on a power cut (the
        # last ones); FULL would cost an fsync on each of a task's four or five saves.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        held = self._about("identity")
        if held is None:
            self._set_about("identity", identity)
        elif held != identity:
            self._db.close()
            raise ValueError(
                f"{path} holds the A2A tasks of {held}, not of {identity}; "
                "run the bridge with that key, or move the file away to start afresh"
            )

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def _about(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM about WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_about(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO about (key, value) VALUES (?, ?)", (key, value))

    # -- the stream -----------------------------------------------------------------------------

    @property
    def last_event_id(self) -> int | None:
        """The ``seq`` of the last NexySync event the bridge handled (it resumes after it)."""
        value = self._about("last_event_id")
        return None if value is None else int(value)

    @last_event_id.setter
    def last_event_id(self, seq: int) -> None:
        self._set_about("last_event_id", str(seq))

    # -- tasks ----------------------------------------------------------------------------------

    def tasks(self, agent: str) -> list[tuple[str, Task]]:
        """Return ``(owner, task)`` for every task of ``agent``."""
        rows = self._db.execute("SELECT owner, task FROM tasks WHERE agent = ?", (agent,))
        return [(str(owner), Task.FromString(blob)) for owner, blob in rows]

    def put_task(self, agent: str, owner: str, task: Task) -> None:
        """Write a task (a new one, or its new state)."""
        self._db.execute(
            "INSERT OR REPLACE INTO tasks (agent, id, owner, task) VALUES (?, ?, ?, ?)",
            (agent, task.id, owner, task.SerializeToString()),
        )

    def delete_task(self, agent: str, task_id: str) -> None:
        """Forget a task."""
        with immediate_transaction(self._db):
            self._db.execute("DELETE FROM tasks WHERE agent = ? AND id = ?", (agent, task_id))
            self._db.execute("DELETE FROM links WHERE task_id = ?", (task_id,))

    # -- links and contexts ---------------------------------------------------------------------

    def link(self, task_id: str) -> Link | None:
        """Return what ties a task in flight to NexySync, if it is in flight."""
        row = self._db.execute(f"SELECT {_LINK_COLUMNS} FROM links WHERE task_id = ?", (task_id,)).fetchone()
        return None if row is None else Link(*row)

    def links(self) -> list[Link]:
        """Return every task in flight (the bridge resumes them when it starts)."""
        rows = self._db.execute(f"SELECT {_LINK_COLUMNS} FROM links")
        return [Link(*row) for row in rows]

    def wait_on(self, link: Link) -> None:
        """Record that a task waits on ``link.waiting_on`` (its question, if any, is answered)."""
        self._db.execute(
            f"INSERT OR REPLACE INTO links ({_LINK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            (link.task_id, link.agent, link.owner, link.context_id, link.waiting_on, link.question),
        )

    def asked(self, task_id: str, question: str) -> None:
        """Record the agent's question on a task (it is ``input-required``)."""
        self._db.execute("UPDATE links SET question = ? WHERE task_id = ?", (question, task_id))

    def settled(self, task_id: str) -> None:
        """Record that a task waits on nothing more (it reached a final state)."""
        self._db.execute("DELETE FROM links WHERE task_id = ?", (task_id,))

    def last_in_context(self, agent: str, context_id: str) -> str | None:
        """Return the last NexySync message of an A2A context, which its next message replies to."""
        row = self._db.execute(
            "SELECT last FROM contexts WHERE agent = ? AND context_id = ?", (agent, context_id)
        ).fetchone()
        return None if row is None else str(row[0])

    def extend_context(self, agent: str, context_id: str, message_id: str) -> None:
        """Record ``message_id`` as the last NexySync message of an A2A context."""
        self._db.execute(
            "INSERT OR REPLACE INTO contexts (agent, context_id, last) VALUES (?, ?, ?)",
            (agent, context_id, message_id),
        )


class _Owner(User):
    """The caller a stored task belongs to, to load it back under the same owner scope."""

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def is_authenticated(self) -> bool:
        return bool(self._name)

    @property
    def user_name(self) -> str:
        return self._name


def owner_context(owner: str) -> ServerCallContext:
    """Return a call context whose owner scope is ``owner`` (the bridge's own writes to a task)."""
    return ServerCallContext(user=_Owner(owner))


class DiskTaskStore(TaskStore):
    """The A2A tasks of one exposed agent, kept in the bridge's file.

    The A2A SDK's in-memory store answers every read (its owner scopes, filters and cursor
    paging, exactly as the SDK defines them); each save and delete is written through to the
    file first, and :meth:`load` fills the memory from the file when the bridge starts.
    ``on_final`` hears of each task saved in a final state (however it got there).
    """

    def __init__(self, file: BridgeFile, agent: str, on_final: Callable[[Task], None] | None = None) -> None:
        self._file = file
        self._agent = agent
        self._on_final = on_final
        self._frozen = False
        self._memory = InMemoryTaskStore()
        self._lock = asyncio.Lock()

    async def load(self) -> int:
        """Read the agent's tasks from the file; return how many."""
        rows = self._file.tasks(self._agent)
        for owner, task in rows:
            await self._memory.save(task, owner_context(owner))
        return len(rows)

    def freeze(self) -> None:
        """Write nothing more: the bridge is stopping, and what its stop does to tasks is not their end."""
        self._frozen = True

    async def save(self, task: Task, context: ServerCallContext) -> None:
        if self._frozen:
            return
        async with self._lock:
            self._file.put_task(self._agent, resolve_user_scope(context), task)
            await self._memory.save(task, context)
        if self._on_final is not None and task.status.state in FINAL_STATES:
            self._on_final(task)

    async def get(self, task_id: str, context: ServerCallContext) -> Task | None:
        return await self._memory.get(task_id, context)

    async def list(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        return await self._memory.list(params, context)

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        if self._frozen:
            return
        async with self._lock:
            if await self._memory.get(task_id, context) is None:
                return  # another owner's task, or none: nothing of theirs to delete
            self._file.delete_task(self._agent, task_id)
            await self._memory.delete(task_id, context)
