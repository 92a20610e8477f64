"""The A2A side of an exposed agent: each A2A message becomes a NexySync request, its replies the task's states.

A task is ``submitted`` when the bridge has it, ``working`` once the agent's copy of the request
is delivered (its receipt), then what the agent's reply says (see :mod:`~nexysync_a2a.mapping`).
A follow-up to an ``input-required`` task goes to the agent as a reply to its question; the first
message of a task in a known context replies to the context's last message, so one A2A context
is one NexySync thread. ``CancelTask`` tells the agent (a notification replying to what it was
working on), however the task was canceled.

A task in flight when the bridge stops is resumed when it starts: its watch is registered again,
and the agent's reply, when it comes, is written to the task in the store (nobody holds the A2A
request that started it any more; ``GetTask`` and ``ListTasks`` show the result).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Protocol

from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.owner_resolver import resolve_user_scope
from a2a.server.tasks import TaskUpdater
from a2a.types.a2a_pb2 import Artifact, Message, Part, Role, Task, TaskState, TaskStatus

from nexysync import AsyncClient, NexySyncError, new_ulid
from nexysync_a2a.mapping import reply_state, to_a2a, to_nexysync
from nexysync_a2a.relay import Relay, Watch
from nexysync_a2a.store import FINAL_STATES, BridgeFile, DiskTaskStore, Link, owner_context

__all__ = ["Bridge", "BridgeExecutor", "follow", "submitted"]

log = logging.getLogger("nexysync.a2a")


class Bridge:
    """What the exposed agents share: the bridge agent's client, its file and its stream.

    Args:
        client: The bridge agent's client.
        file: The bridge's file.
        me: The bridge agent's slug.
    """

    def __init__(self, client: AsyncClient, file: BridgeFile, me: str) -> None:
        self.client = client
        self.file = file
        self.relay = Relay(client, file, me)
        self.stores: dict[str, DiskTaskStore] = {}
        self._resumed: dict[str, asyncio.Task[None]] = {}
        self._notices: set[asyncio.Task[None]] = set()

    def store(self, agent: str) -> DiskTaskStore:
        """Return the task store of an exposed agent."""
        if agent not in self.stores:
            self.stores[agent] = DiskTaskStore(self.file, agent, on_final=self._ended)
        return self.stores[agent]

    async def resume(self) -> int:
        """Load every task, and follow again each one that was in flight; return how many were."""
        for store in self.stores.values():
            await store.load()
        links = [link for link in self.file.links() if link.question is None and link.agent in self.stores]
        for link in links:
            self._resumed[link.task_id] = asyncio.get_running_loop().create_task(self._resume(link))
        return len(links)

    async def _resume(self, link: Link) -> None:
        try:
            with self.relay.watching(link.waiting_on) as watch:
                await follow(self.file, link, watch, _StoredTask(self.stores[link.agent], link))
        except Exception:
            log.exception("could not follow task %s again", link.task_id)
        finally:
            self._resumed.pop(link.task_id, None)

    def _ended(self, task: Task) -> None:
        """A task was saved in a final state: if it still waited on the agent, it was canceled here."""
        link = self.file.link(task.id)
        if link is None:
            return  # the agent's own answer ended it, or the cancel was already told
        self.file.settled(task.id)
        following = self._resumed.pop(task.id, None)
        if following is not None:
            following.cancel()
        if task.status.state == TaskState.TASK_STATE_CANCELED:
            notice = asyncio.get_running_loop().create_task(self.tell_canceled(link))
            self._notices.add(notice)
            notice.add_done_callback(self._notices.discard)

    async def tell_canceled(self, link: Link) -> None:
        """Tell the agent that the A2A client canceled the task (it replies to what the agent works on)."""
        try:
            await self.client.messages.send(
                link.agent,
                topic="A2A task canceled",
                payload="The A2A client canceled this task: stop work on it; no answer is needed.",
                type="notification",
                reply_to=link.question or link.waiting_on,
                metadata={"a2a": {"task_id": link.task_id, "context_id": link.context_id, "state": "canceled"}},
            )
        except NexySyncError:
            log.exception("could not tell %s that task %s was canceled", link.agent, link.task_id)

    def stop_writing(self) -> None:
        """Freeze every task store: the bridge is stopping (see :meth:`DiskTaskStore.freeze`)."""
        for store in self.stores.values():
            store.freeze()

    async def aclose(self) -> None:
        """Stop following the resumed tasks (they are resumed again at the next start); finish the notices."""
        for task in self._resumed.values():
            task.cancel()
        await asyncio.gather(*self._resumed.values(), *self._notices, return_exceptions=True)


class _Sink(Protocol):
    async def working(self, message: Message | None) -> None: ...

    async def finish(self, state: TaskState, message: Message) -> None: ...


async def follow(file: BridgeFile, link: Link, watch: Watch, sink: _Sink) -> None:
    """Move a task as its NexySync request is delivered and answered, until a final or interrupted state."""
    await watch.delivered.wait()
    await sink.working(None)
    while True:
        reply = await watch.replies.get()
        file.extend_context(link.agent, link.context_id, reply.id)
        state = reply_state(reply)
        message = to_a2a(reply, task_id=link.task_id, context_id=link.context_id)
        if state == TaskState.TASK_STATE_WORKING:
            await sink.working(message)
            continue
        if state == TaskState.TASK_STATE_INPUT_REQUIRED:
            file.asked(link.task_id, reply.id)
        else:
            file.settled(link.task_id)
        await sink.finish(state, message)
        return


class _LiveTask:
    """A task someone's A2A request is running: its states go out as events (and to the store)."""

    def __init__(self, updater: TaskUpdater) -> None:
        self._updater = updater

    async def working(self, message: Message | None) -> None:
        await self._updater.start_work(message)

    async def finish(self, state: TaskState, message: Message) -> None:
        if state == TaskState.TASK_STATE_COMPLETED:
            await self._updater.add_artifact(list(message.parts), name="reply")
        await self._updater.update_status(state, message)


class _StoredTask:
    """A task resumed after a restart: its states are written to the store."""

    def __init__(self, store: DiskTaskStore, link: Link) -> None:
        self._store = store
        self._link = link

    async def working(self, message: Message | None) -> None:
        await self._write(TaskState.TASK_STATE_WORKING, message)

    async def finish(self, state: TaskState, message: Message) -> None:
        await self._write(state, message)

    async def _write(self, state: TaskState, message: Message | None) -> None:
        context = owner_context(self._link.owner)
        task = await self._store.get(self._link.task_id, context)
        if task is None or task.status.state in FINAL_STATES:
            return  # deleted, or canceled while the bridge was down: the reply changes nothing
        if message is None and task.status.state == state:
            return
        if task.status.HasField("message"):
            task.history.append(task.status.message)
        task.status.CopyFrom(TaskStatus(state=state, timestamp=datetime.now(UTC)))
        if message is not None:
            task.status.message.CopyFrom(message)
            if state == TaskState.TASK_STATE_COMPLETED:
                task.artifacts.append(Artifact(artifact_id=str(uuid.uuid4()), name="reply", parts=message.parts))
        await self._store.save(task, context)


def submitted(message: Message, *, task_id: str, context_id: str) -> Task:
    """Return a new task, ``submitted``, that holds the A2A message which made it."""
    return Task(
        id=task_id,
        context_id=context_id,
        status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED, timestamp=datetime.now(UTC)),
        history=[message],
    )


def _note(text: str, *, task_id: str, context_id: str) -> Message:
    """Return an agent message of the bridge's own (why a task failed)."""
    return Message(
        message_id=str(uuid.uuid4()),
        task_id=task_id,
        context_id=context_id,
        role=Role.ROLE_AGENT,
        parts=[Part(text=text)],
    )


class BridgeExecutor(AgentExecutor):
    """Run the A2A tasks of one exposed agent through NexySync (see the module's docs).

    Args:
        bridge: What the exposed agents share.
        agent: The exposed agent's slug.
    """

    def __init__(self, bridge: Bridge, agent: str) -> None:
        self._bridge = bridge
        self._agent = agent

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        current = context.current_task
        task_id = str(context.task_id)
        # A follow-up may name its task and no context: the SDK then makes up a new context id,
        # but the task keeps the one it has.
        context_id = current.context_id if current is not None else str(context.context_id)
        assert context.message is not None  # the SDK builds the context from a SendMessage request
        outgoing = to_nexysync(context.message, task_id=task_id, context_id=context_id)
        updater = TaskUpdater(event_queue, task_id, context_id)
        if current is None:
            await event_queue.enqueue_event(submitted(context.message, task_id=task_id, context_id=context_id))
        file = self._bridge.file
        earlier = file.link(task_id)
        question = earlier.question if earlier is not None else None
        reply_to = question or file.last_in_context(self._agent, context_id)
        link = Link(
            task_id=task_id,
            agent=self._agent,
            owner=resolve_user_scope(context.call_context),
            context_id=context_id,
            waiting_on=new_ulid(),
            question=None,
        )
        with self._bridge.relay.watching(link.waiting_on) as watch:
            file.wait_on(link)
            try:
                await self._bridge.client.messages.send(
                    self._agent,
                    topic=outgoing.topic,
                    payload=outgoing.payload,
                    type="request",
                    reply_to=reply_to,
                    metadata=outgoing.metadata,
                    id=link.waiting_on,
                )
            except NexySyncError as exc:
                file.settled(task_id)
                text = f"NexySync refused the message to {self._agent}: {exc}"
                await updater.failed(_note(text, task_id=task_id, context_id=context_id))
                return
            file.extend_context(self._agent, context_id, link.waiting_on)
            await follow(file, link, watch, _LiveTask(updater))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        # Saving the canceled task tells the agent (Bridge._ended), here as for a task the SDK
        # cancels without its executor (one resumed after a restart).
        await TaskUpdater(event_queue, str(context.task_id), str(context.context_id)).cancel()
