"""Benchmark: the hot queries at 1,000 and at 100,000 documents, on the embedded database.

Each hot query is timed through the server's own stores (median of ``--repeat`` calls) while
one project holds 1,000 documents in each collection (messages, receipts, events, agents,
presence states), then again once the same collections hold ``--large`` (100,000). The
documents are copies of ones the stores wrote, with fresh ids. Alice sends to bob and carol in
turn, one message a second (the newest now); bob has read all but his last ten, the case where a
listing of his unread messages would read every message before them, had it no unread floor.

Prints one row per query: the time at each size and the ratio (the goal: within 1.5x).
``tests/e2e/test_query_plans.py`` checks the same queries' plans in the normal suite.

Run: ``python tests/bench/bench_lookups.py [--large 100000] [--repeat 30]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from bench_realtime import _cpu_model
from pymongo import AsyncMongoClient

from nexysync_server.ids import new_id, ulid_floor, utcnow
from nexysync_server.store.agents import AgentStore
from nexysync_server.store.embedded import EmbeddedMongo
from nexysync_server.store.events import EventStore, event_key
from nexysync_server.store.messages import MessageStore, raised_unread_floor
from nexysync_server.store.presence import PresenceStore
from nexysync_server.store.receipts import ReceiptStore, receipt_key

BODY = {"type": "notification", "topic": "t", "payload": "p"}
BATCH = 5_000
UNREAD = 10


class Project:
    """One project and the stores, grown to a size by copies of real documents."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.agents, self.events, self.receipts = AgentStore(db, cache_ttl_s=0), EventStore(db, 1), ReceiptStore(db)
        self.messages, self.presence = MessageStore(self.db, self.events), PresenceStore(db, cache_ttl_s=0)
        self.project_id = f"project-{new_id()}"
        self.size = 0
        self.sent: list[dict[str, Any]] = []

    async def start(self) -> None:
        for store in (self.agents, self.events, self.receipts, self.messages, self.presence):
            await store.ensure_indexes()
        self.alice, _ = await self.agents.create(self.project_id, "alice", "Alice", "dev", [])
        self.bob, self.bob_key = await self.agents.create(self.project_id, "bob", "Bob", "dev", [])
        self.carol, _ = await self.agents.create(self.project_id, "carol", "Carol", "dev", [])
        message, _, event = await self.messages.insert(
            project_id=self.project_id,
            sender=self.alice,
            body=BODY | {"to": "bob"},
            recipients=[self.bob["_id"]],
            ttl_hours=24,
        )
        await self.receipts.advance([message], self.bob, "read")
        self.message, self.event = message, event
        self.receipt = await self.receipts.col.find_one(
            {"_id": receipt_key(self.project_id, message["id"], self.bob["_id"])}
        )
        self.agent = await self.agents.col.find_one({"_id": self.bob["_id"]})
        self.size = 1
        self.now = utcnow()

    async def grow(self, size: int) -> None:
        """Add copies until each collection holds ``size`` documents of the project (agents: of the server)."""
        while self.size < size:
            count = min(BATCH, size - self.size)
            messages, receipts, events, agents, states = [], [], [], [], []
            for n in range(self.size, self.size + count):
                message_id = new_id()
                sk = ulid_floor(self.now - timedelta(seconds=size - n))[:10] + new_id()[10:]
                to = self.bob if n % 2 else self.carol
                read = [to["_id"]] if to is not self.bob or n < size - UNREAD else []
                messages.append(
                    self.message
                    | {
                        "_id": f"{self.project_id}:{message_id}",
                        "id": message_id,
                        "sk": sk,
                        "seq": n + 1,
                        "to": to["slug"],
                        "recipients": [to["_id"]],
                        "read_by": read,
                    }
                )
                receipts.append(
                    self.receipt
                    | {
                        "_id": receipt_key(self.project_id, message_id, to["_id"]),
                        "message_id": message_id,
                        "agent_id": to["_id"],
                    }
                )
                events.append(self.event | {"_id": event_key(self.project_id, n + 1), "seq": n + 1})
                agent_id = new_id()
                agents.append(
                    self.agent
                    | {"_id": agent_id, "project_id": f"other-{n // 100}", "slug": f"a{n}", "key_hash": new_id()}
                )
                states.append({"_id": agent_id, "project_id": f"other-{n // 100}", "online": n % 3 == 0})
            for col, docs in (
                (self.messages.col, messages),
                (self.receipts.col, receipts),
                (self.events.col, events[1:] if self.size == 1 else events),
                (self.agents.col, agents),
                (self.presence.states, states),
            ):
                await col.insert_many(docs, ordered=False)
            self.sent += messages[-100:]
            self.size += count
        await self.events.counters.update_one(
            {"_id": f"events:{self.project_id}"}, {"$set": {"seq": self.size}}, upsert=True
        )

    def queries(self) -> dict[str, Callable[[], Awaitable[Any]]]:
        p, bob = self.project_id, self.bob["_id"]
        page = {"since": None, "sender_slug": None, "message_type": None, "pinned": None, "limit": 50}
        recent = self.sent[-50:]
        middle = self.size // 2
        return {
            "agent by key (every request)": lambda: self.agents.by_key(self.bob_key),
            "message by id": lambda: self.messages.get(p, recent[7]["id"]),
            "inbox page, first": lambda: self.messages.inbox(p, bob, status=None, cursor=None, **page),
            "inbox page, after a cursor": lambda: self.messages.inbox(
                p, bob, status=None, cursor=recent[0]["sk"], **page
            ),
            "inbox, unread (all else read)": lambda: self.messages.inbox(
                p, bob, status="unread", cursor=None, unread_floor=self.floor, **page
            ),
            "receipts of a message": lambda: self.receipts.of_message(recent[9]),
            "receipts of a page (50)": lambda: self.receipts.of_messages(p, [doc["id"] for doc in recent]),
            "event log resume (100)": lambda: self.events.after(p, middle, 100),
            "presence of 1,000 recipients": lambda: self.presence.streaming_among(self.recipients),
        }


async def timed(call: Callable[[], Awaitable[Any]], repeat: int) -> float:
    await call()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        await call()
        times.append(1000 * (time.perf_counter() - began))
    return statistics.median(times)


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedMongo(tmp, private=True) as mongo:
        client: AsyncMongoClient[Any] = AsyncMongoClient(mongo.uri, tz_aware=True)
        project = Project(client["lookups"])
        await project.start()
        results: dict[int, dict[str, float]] = {}
        for size in (args.small, args.large):
            began = time.perf_counter()
            await project.grow(size)
            grown = time.perf_counter() - began
            ids = [doc["_id"] async for doc in project.presence.states.find({}, {"_id": 1}).limit(1000)]
            project.recipients = ids
            # Bob's floor, as the first listing of his unread messages leaves it.
            first, _ = await project.messages.inbox(
                project.project_id,
                project.bob["_id"],
                status="unread",
                cursor=None,
                since=None,
                sender_slug=None,
                message_type=None,
                pinned=None,
                limit=1,
            )
            project.floor = raised_unread_floor(None, first[0] if first else None)
            results[size] = {name: await timed(call, args.repeat) for name, call in project.queries().items()}
            print(f"{size:,} documents per collection (grown in {grown:.0f} s)", flush=True)
        await client.close()
    small, large = results[args.small], results[args.large]
    print(f"\n| query | {args.small:,} docs | {args.large:,} docs | ratio |")
    print("|---|---|---|---|")
    for name in small:
        print(f"| {name} | {small[name]:.2f} ms | {large[name]:.2f} ms | {large[name] / small[name]:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    print(f"bench_lookups: {_cpu_model()}; median of {args.repeat} calls each")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
