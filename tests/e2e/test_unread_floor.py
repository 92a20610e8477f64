"""An agent's unread listing starts at its unread floor, which follows its reads and never drops."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import httpx
from pymongo import MongoClient
from realtime_support import Team

from nexysync_server.ids import ulid_floor, ulid_time, utcnow


def unread(http: httpx.Client, team: Team, slug: str, **params: str) -> list[str]:
    reply = http.get("/v1/messages", params={"status": "unread", **params}, headers=team.auth(slug))
    assert reply.status_code == 200, reply.text
    return [m["id"] for m in reply.json()["data"]]


async def test_the_unread_listing_starts_at_the_floor(server_processes: Callable[..., str], mongo_uri: str) -> None:
    base = server_processes(["serve", "--workers", "1"], {"NEXYSYNC_CACHE_TTL_S": "0"})
    team = Team(base, ["alice", "bob"])
    db = MongoClient(mongo_uri)["nexysync"]
    async with httpx.AsyncClient() as sender:
        sent = [await team.send(sender, "alice", "bob") for _ in range(3)]
    with httpx.Client(base_url=base) as http:
        bob_id = http.get("/v1/me", headers=team.auth("bob")).json()["agent"]["id"]

        def floor() -> str | None:
            return db.agents.find_one({"_id": bob_id}).get("unread_floor")  # type: ignore[union-attr]

        assert unread(http, team, "bob") == sent
        # All three are from the last minute: the floor stops at the settled horizon before them.
        first = floor()
        assert first is not None and first < min(m["sk"] for m in db.messages.find({"id": {"$in": sent}}))
        assert utcnow() - ulid_time(first) >= timedelta(minutes=1)

        # A floor is where the listing starts: planted past the first message, it hides it (the
        # server never puts it past an unread one), and only from the unread listing.
        second_sk = db.messages.find_one({"id": sent[1]})["sk"]  # type: ignore[index]
        db.agents.update_one({"_id": bob_id}, {"$set": {"unread_floor": second_sk}})
        assert unread(http, team, "bob") == sent[1:]
        everything = http.get("/v1/messages", headers=team.auth("bob")).json()["data"]
        assert [m["id"] for m in everything] == sent
        assert floor() == second_sk  # a lower floor found by a listing never lowers it

        # An old floor rises to the horizon on the next unfiltered listing; a filtered one leaves it.
        old = ulid_floor(utcnow() - timedelta(minutes=30))
        db.agents.update_one({"_id": bob_id}, {"$set": {"unread_floor": old}})
        assert unread(http, team, "bob", **{"from": "alice"}) == sent
        assert floor() == old
        assert unread(http, team, "bob") == sent
        raised = floor()
        assert raised is not None and old < raised < second_sk
