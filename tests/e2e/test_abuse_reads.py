"""Reads bounded in memory and naming nothing hidden; pins that are each agent's own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from realtime_support import Team

from nexysync import AsyncClient, Client

pytestmark = pytest.mark.e2e

BIG = 280_000  # plaintext; its envelope is about 373 KB
BUDGET = 800_000  # two big messages a page, not three


@pytest.fixture(scope="module")
def server(module_dev_servers: Callable[..., Any]) -> Any:
    return module_dev_servers({"NEXYSYNC_READ_BUDGET_BYTES": str(BUDGET)})


def _agent(team: Team, slug: str) -> httpx.Client:
    return httpx.Client(base_url=team.base_url, headers={"Authorization": f"Bearer {team.keys[slug]}"}, timeout=30)


def _send(team: Team, sender: str, to: str | None, reply_to: str | None = None, size: int = 10) -> str:
    body = team.body(to)
    body["payload"] = team.ring.encrypt(
        b"p" * size, project_id=team.project_id, kind="message", record_id=body["id"], field="payload"
    )
    if reply_to:
        body["reply_to"] = reply_to
    sent = _agent(team, sender).post("/v1/messages", json=body)
    assert sent.status_code == 201, sent.text
    return body["id"]


def _pages(client: httpx.Client, path: str, **params: str) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        body = client.get(path, params=query).json()
        pages.append([item["id"] for item in body["data"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def test_a_thread_of_big_messages_comes_in_pages_within_the_byte_budget(server: Any) -> None:
    team = Team(server.base_url, ["alice", "bob"])
    root = _send(team, "alice", "bob", size=BIG)
    replies = [_send(team, "bob", "alice", reply_to=root, size=BIG) for _ in range(4)]
    bob = _agent(team, "bob")

    first = bob.get(f"/v1/messages/{replies[-1]}/thread").json()
    assert first["root_id"] == root and len(first["data"]) == 2 and first["next_cursor"]
    pages = _pages(bob, f"/v1/messages/{replies[-1]}/thread")
    assert all(len(page) <= 2 for page in pages)
    assert [message for page in pages for message in page] == [root, *replies]


async def test_the_sdk_reads_a_paged_thread_whole_sync_and_async(server: Any) -> None:
    # The server pages a long thread by its read budget; the SDK's thread() must not stop at
    # the first page, or a long thread would silently lose its later messages.
    team = Team(server.base_url, ["alice", "bob"])
    root = _send(team, "alice", "bob", size=BIG)
    replies = [_send(team, "bob", "alice", reply_to=root, size=BIG) for _ in range(4)]
    with Client(base_url=team.base_url, api_key=team.keys["bob"], key_ring=team.ring) as client:
        thread = await asyncio.to_thread(client.messages.thread, replies[-1])
    assert [message.id for message in thread.data] == [root, *replies] and thread.next_cursor is None
    assert thread.data[-1].payload == "p" * BIG and thread.undecryptable == []
    async with AsyncClient(base_url=team.base_url, api_key=team.keys["bob"], key_ring=team.ring) as client:
        athread = await client.messages.thread(replies[-1])
    assert [message.id for message in athread.data] == [root, *replies]


def test_an_inbox_page_of_big_messages_stays_within_the_byte_budget(server: Any) -> None:
    team = Team(server.base_url, ["alice", "bob"])
    sent = [_send(team, "alice", "bob", size=BIG) for _ in range(5)]
    pages = _pages(_agent(team, "bob"), "/v1/messages", limit="200")
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [message for page in pages for message in page] == sent


def test_the_thread_root_is_the_earliest_message_the_caller_may_see(server: Any) -> None:
    team = Team(server.base_url, ["alice", "bob", "carol"])
    private = _send(team, "alice", "bob")  # carol may not see it, nor learn its id
    broadcast = _send(team, "bob", None, reply_to=private)
    answer = _send(team, "carol", None, reply_to=broadcast)

    thread = _agent(team, "carol").get(f"/v1/messages/{answer}/thread").json()
    assert thread["root_id"] == broadcast
    assert [message["id"] for message in thread["data"]] == [broadcast, answer]
    assert _agent(team, "bob").get(f"/v1/messages/{answer}/thread").json()["root_id"] == private


def test_a_broadcast_pinned_by_one_recipient_is_pinned_for_that_recipient_only(server: Any) -> None:
    team = Team(server.base_url, ["alice", "bob", "carol"])
    message = _send(team, "alice", None)
    bob, carol = _agent(team, "bob"), _agent(team, "carol")
    assert bob.put(f"/v1/messages/{message}/pin").json()["pinned"] is True
    assert carol.get(f"/v1/messages/{message}").json()["pinned"] is False
    assert carol.delete(f"/v1/messages/{message}/pin").json()["pinned"] is False
    assert bob.get(f"/v1/messages/{message}").json()["pinned"] is True
    assert [m["id"] for m in bob.get("/v1/messages", params={"pinned": "true"}).json()["data"]] == [message]
    assert carol.get("/v1/messages", params={"pinned": "true"}).json()["data"] == []
