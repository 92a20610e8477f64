"""The task board: add, claim (one winner), release (forced only when the assignee is idle), done, cancel.

Each change is a conditional write on the version read (see :mod:`..store.tasks`); a writer that
loses a race reads the task again and decides again, so a refusal always describes the task as it
is. Each change is announced on the project's stream (``task_created``, ``task_claimed``,
``task_released``, ``task_done``, ``task_cancelled``) with ids and states only, never content.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..ids import epoch_ms, iso_ms
from ..realtime.hub import Hub
from ..settings import Settings
from ..store import Store
from ..store import tasks as store_tasks
from ..store.documents import AgentDoc, TaskDoc
from ..store.events import EVERYONE
from ..store.idempotency import is_retry
from .activity import idle_s
from .errors import Busy, Conflict, Forbidden, NotFound
from .quotas import Quotas

#: How many times a change is decided again after losing a race, before the caller is told to retry.
_ATTEMPTS = 8

#: A decision on a task as read: the fields to set, or ``None`` to answer the task as it is.
Decision = Callable[[TaskDoc], dict[str, Any] | None]


def _missing() -> NotFound:
    return NotFound("Task", "TASK_NOT_FOUND")


def _id_conflict(task_id: str) -> Conflict:
    return Conflict("ID_CONFLICT", f"Task {task_id} was already added with a different body.")


def _closed(task: TaskDoc) -> Conflict:
    return Conflict("TASK_CLOSED", f"Task {task['id']} is {task['state']}; that is final.")


class Tasks:
    """Add, list, read and move tasks; announce each change.

    Args:
        store: The database.
        hub: Where changes are announced.
        settings: The task limit and the force-release rule.
        quotas: The storage quota sealed fields count toward.
    """

    def __init__(self, store: Store, hub: Hub, settings: Settings, quotas: Quotas) -> None:
        self._store = store
        self._tasks = store.tasks
        self._hub = hub
        self._settings = settings
        self._quotas = quotas

    async def create(self, creator: AgentDoc, body: dict[str, Any]) -> tuple[TaskDoc, bool]:
        """Add an open task; return it and whether this call added it.

        Raises:
            ServiceError: ``ID_CONFLICT``, ``BLOCKER_NOT_FOUND`` (409); ``TASK_LIMIT``,
                ``QUOTA_EXCEEDED`` (403).
        """
        project_id = creator["project_id"]
        # A retry is answered before the limits are asked: repeating a stored call must not be refused.
        stored = await self._tasks.get(project_id, body["id"])
        if stored is not None:
            if not is_retry(stored, creator["_id"], store_tasks.body_fingerprint(body)):
                raise _id_conflict(body["id"])
            await self._announce("task_created", stored, creator)  # unless the first try did
            return stored, False
        blockers = list(body.get("blocked_by") or [])
        found = {doc["id"] for doc in await self._tasks.many(project_id, blockers)}
        unknown = [task_id for task_id in blockers if task_id not in found]
        if unknown:
            raise Conflict("BLOCKER_NOT_FOUND", f"No task {', '.join(unknown)} in this project to be blocked by.")
        limit = self._settings.max_tasks_per_project
        if await self._tasks.count(project_id) >= limit:
            raise Forbidden("TASK_LIMIT", f"A project holds at most {limit} tasks (NEXYSYNC_MAX_TASKS_PER_PROJECT).")
        try:
            task, created = await self._quotas.store_within_storage(
                project_id,
                store_tasks.stored_size(body["title"], body.get("body")),
                lambda: self._tasks.insert(project_id, creator, body),
            )
        except store_tasks.IdConflict as exc:
            raise _id_conflict(body["id"]) from exc
        await self._announce("task_created", task, creator)
        return task, created

    async def get(self, reader: AgentDoc, task_id: str) -> TaskDoc:
        """Return a task of the reader's project.

        Raises:
            NotFound: ``TASK_NOT_FOUND``, also for another project's id.
        """
        task = await self._tasks.get(reader["project_id"], task_id)
        if task is None:
            raise _missing()
        return task

    async def list(
        self, project_id: str, *, state: str | None, assignee: str | None, limit: int, cursor: str | None
    ) -> tuple[list[TaskDoc], str | None]:
        """Return a page of the project's tasks, oldest first."""
        return await self._tasks.list(project_id, state=state, assignee=assignee, limit=limit, cursor=cursor)

    async def claim(self, agent: AgentDoc, task_id: str) -> TaskDoc:
        """Give an open task whose blockers are all done to the agent (its own claim is answered again).

        Raises:
            ServiceError: ``TASK_NOT_FOUND`` (404); ``TASK_TAKEN``, ``TASK_BLOCKED``, ``TASK_CLOSED`` (409).
        """
        blockers_done: dict[str, bool] = {}

        def decide(task: TaskDoc) -> dict[str, Any] | None:
            if task["state"] == "claimed" and task["assignee_id"] == agent["_id"]:
                return None
            if task["state"] == "claimed":
                raise Conflict(
                    "TASK_TAKEN",
                    f"Task {task['id']} is claimed by {task['assignee']} (since {iso_ms(task['claimed_ms'] or 0)}).",
                    {"assignee": task["assignee"]},
                )
            if task["state"] in store_tasks.FINAL_STATES:
                raise _closed(task)
            if not all(blockers_done.values()):
                waiting = [task_id for task_id, done in blockers_done.items() if not done]
                raise Conflict(
                    "TASK_BLOCKED",
                    f"Task {task['id']} waits for {', '.join(waiting)} to be done "
                    "(a cancelled blocker blocks for good).",
                    {"blocked_by": waiting},
                )
            return {
                "state": "claimed",
                "assignee_id": agent["_id"],
                "assignee": agent["slug"],
                "claimed_ms": epoch_ms(),
            }

        task = await self.get(agent, task_id)
        # Done is final, so blockers seen done stay done: they are read once, before the claim.
        blockers_done.update({blocker: False for blocker in task["blocked_by"]})
        for blocker in await self._tasks.many(agent["project_id"], task["blocked_by"]):
            blockers_done[blocker["id"]] = blocker["state"] == "done"
        moved, _ = await self._move(agent, task, decide, "task_claimed")
        return moved

    async def release(self, agent: AgentDoc, task_id: str, force: bool) -> TaskDoc:
        """Open the agent's claimed task again; another agent's with ``force`` once its assignee is idle.

        Raises:
            ServiceError: ``TASK_NOT_FOUND`` (404); ``TASK_NOT_CLAIMED``, ``TASK_NOT_YOURS``,
                ``TASK_HOLDER_ACTIVE`` (409).
        """

        async def check_idle(task: TaskDoc) -> None:
            if task["state"] != "claimed" or task["assignee_id"] == agent["_id"] or not force:
                return
            idle = await idle_s(
                self._store.agents, task["project_id"], str(task["assignee_id"]), task["claimed_ms"] or 0, epoch_ms()
            )
            wait_s = self._settings.lease_force_after_s - idle
            if wait_s > 0:
                raise Conflict(
                    "TASK_HOLDER_ACTIVE",
                    f"{task['assignee']} was active {idle:.0f} s ago; its claim may be released after "
                    f"{self._settings.lease_force_after_s:.0f} s of inactivity ({wait_s:.0f} s from now).",
                )

        def decide(task: TaskDoc) -> dict[str, Any] | None:
            if task["state"] != "claimed":
                raise Conflict("TASK_NOT_CLAIMED", f"Task {task['id']} is {task['state']}, not claimed.")
            if task["assignee_id"] != agent["_id"] and not force:
                raise Conflict(
                    "TASK_NOT_YOURS", f"Task {task['id']} is {task['assignee']}'s; release it with force=true."
                )
            return {"state": "open", "assignee_id": None, "assignee": None, "claimed_ms": None}

        task = await self.get(agent, task_id)
        moved, _ = await self._move(agent, task, decide, "task_released", before=check_idle)
        return moved

    async def done(self, agent: AgentDoc, task_id: str, text: str | None) -> TaskDoc:
        """Mark the agent's claimed task done with its result (the same call again answers it).

        Raises:
            ServiceError: ``TASK_NOT_FOUND`` (404); ``TASK_NOT_CLAIMED``, ``TASK_NOT_YOURS``,
                ``TASK_CLOSED`` (409); ``QUOTA_EXCEEDED`` (403).
        """

        def decide(task: TaskDoc) -> dict[str, Any] | None:
            if task["state"] == "done" and task["assignee_id"] == agent["_id"] and task["result"] == text:
                return None
            if task["state"] in store_tasks.FINAL_STATES:
                raise _closed(task)
            if task["state"] != "claimed":
                raise Conflict("TASK_NOT_CLAIMED", f"Task {task['id']} is open: claim it first.")
            if task["assignee_id"] != agent["_id"]:
                raise Conflict("TASK_NOT_YOURS", f"Task {task['id']} is claimed by {task['assignee']}.")
            return {"state": "done", "result": text, "result_by": agent["slug"]}

        task = await self.get(agent, task_id)
        size = store_tasks.stored_size(text)
        await self._quotas.reserve_storage(agent["project_id"], size)
        wrote = False
        try:
            done, wrote = await self._move(agent, task, decide, "task_done")
        finally:
            if not wrote:  # refused, or answered again: the result's bytes were counted by the first call
                await self._quotas.release_storage(agent["project_id"], size)
        return done

    async def cancel(self, agent: AgentDoc, task_id: str) -> TaskDoc:
        """Cancel the creator's task that is not done (a cancelled one is answered again).

        Raises:
            ServiceError: ``TASK_NOT_FOUND`` (404); ``TASK_NOT_YOURS``, ``TASK_CLOSED`` (409).
        """

        def decide(task: TaskDoc) -> dict[str, Any] | None:
            if task["from_id"] != agent["_id"]:
                raise Conflict("TASK_NOT_YOURS", f"Only {task['created_by']}, who added task {task['id']}, cancels it.")
            if task["state"] == "cancelled":
                return None
            if task["state"] == "done":
                raise _closed(task)
            return {"state": "cancelled"}

        task = await self.get(agent, task_id)
        moved, _ = await self._move(agent, task, decide, "task_cancelled")
        return moved

    async def _move(
        self,
        agent: AgentDoc,
        task: TaskDoc,
        decide: Decision,
        event: str,
        *,
        before: Callable[[TaskDoc], Awaitable[None]] | None = None,
    ) -> tuple[TaskDoc, bool]:
        """Apply ``decide`` to the task as stored until one conditional write lands; announce the change.

        Returns:
            The task as it now is, and whether this call changed it (False: ``decide`` answered it as it was).

        Raises:
            ServiceError: what ``decide`` or ``before`` raises; ``TASK_NOT_FOUND``; ``TASKS_BUSY``
                (503) when every attempt lost a race.
        """
        for _ in range(_ATTEMPTS):
            if before is not None:
                await before(task)
            fields = decide(task)
            if fields is None:
                return task, False
            moved = await self._tasks.change(task, fields)
            if moved is not None:
                await self._announce(event, moved, agent, was=task)
                return moved, True
            again = await self._tasks.get(agent["project_id"], task["id"])
            if again is None:
                raise _missing()
            task = again
        raise Busy("TASKS_BUSY", f"Task {task['id']} is being changed by many agents at once; retry.")

    async def _announce(self, event: str, task: TaskDoc, by: AgentDoc, was: TaskDoc | None = None) -> None:
        """Announce a change ``by`` made to ``task`` (``was``: the task before it)."""
        data: dict[str, Any] = {
            "id": task["id"],
            "state": task["state"],
            "created_by": task["created_by"],
            "assignee": task["assignee"],
            "by": by["slug"],
        }
        if event == "task_released":
            # Releasing another agent's claim is forcing it: the assignee is told who did.
            forced = was is not None and was["assignee_id"] != by["_id"]
            data["forced_by"] = by["slug"] if forced else None
        await self._hub.emit(task["project_id"], event, [EVERYONE], data)
