"""Code references: encrypted fields, idempotent shares, visibility, new_ref events, the storage quota."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from realtime_support import EventStream, Team

from nexysync import AsyncClient, Client, ConflictError, NotFoundError, PermissionDeniedError
from nexysync_server.ids import new_id
from nexysync_server.settings import Settings
from nexysync_server.store import Store

pytestmark = pytest.mark.e2e

ENCRYPTED = ("title", "content", "source_file")


@pytest.fixture
def team(dev_server: Any) -> Team:
    return Team(dev_server.base_url, ["alice", "bob", "carol"])


def _http(team: Team, slug: str) -> httpx.Client:
    return httpx.Client(base_url=team.base_url, headers={"Authorization": f"Bearer {team.keys[slug]}"}, timeout=30)


@pytest.fixture
def sdk(team: Team) -> Iterator[Callable[[str], Client]]:
    """Make SDK clients of the team's agents; close them at the end."""
    made: list[Client] = []

    def make(slug: str) -> Client:
        client = Client(base_url=team.base_url, api_key=team.keys[slug], key_ring=team.ring, project_id=team.project_id)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def _body(
    team: Team, *, title: str = "t", content: str = "c", ref_id: str | None = None, **plain: Any
) -> dict[str, Any]:
    """Return a RefCreate body with fresh envelopes (``plain`` adds source_file, language, to)."""
    ref_id = ref_id or new_id()
    source_file = plain.pop("source_file", None)

    def seal(field: str, text: str) -> str:
        return team.ring.encrypt(text.encode(), project_id=team.project_id, kind="ref", record_id=ref_id, field=field)

    body: dict[str, Any] = {"id": ref_id, "title": seal("title", title), "content": seal("content", content), **plain}
    if source_file is not None:
        body["source_file"] = seal("source_file", source_file)
    return body


def _ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [ref["id"] for ref in response.json()["data"]]


def test_sdk_round_trip_in_plaintext_while_the_server_holds_envelopes(team: Team, sdk: Callable[[str], Client]) -> None:
    alice, bob = sdk("alice"), sdk("bob")
    code = "def add(a: int, b: int) -> int:\n    return a + b\n" * 20
    shared = alice.refs.share("add() helper", code, source_file="src/maths.py:1-40", language="python", to="bob")
    assert (shared.title, shared.content, shared.source_file, shared.language) == (
        "add() helper",
        code,
        "src/maths.py:1-40",
        "python",
    )
    assert (shared.from_, shared.to, shared.project_id) == ("alice", "bob", team.project_id)
    got = bob.refs.get(shared.id)
    assert (got.title, got.content, got.source_file) == ("add() helper", code, "src/maths.py:1-40")
    assert [ref.content for ref in bob.refs.list()] == [code]

    # Without the SDK: only envelopes, and the stored size is their length.
    raw = _http(team, "bob").get(f"/v1/refs/{shared.id}").json()
    assert all(raw[field].startswith("v2.") for field in ENCRYPTED), raw
    assert code not in str(raw) and "add() helper" not in str(raw)
    assert raw["size_bytes"] == sum(len(raw[field]) for field in ENCRYPTED) == shared.size_bytes
    assert raw["language"] == "python" and raw["to"] == "bob"

    # Optional fields may be left out: to the whole project, no source file, no language.
    loose = alice.refs.share("note", "x = 1")
    assert (loose.to, loose.source_file, loose.language) == (None, None, None)
    assert bob.refs.get(loose.id).content == "x = 1"


async def test_async_client_shares_lists_and_deletes(team: Team) -> None:
    options = {"base_url": team.base_url, "key_ring": team.ring, "project_id": team.project_id}
    async with (
        AsyncClient(api_key=team.keys["alice"], **options) as alice,
        AsyncClient(api_key=team.keys["bob"], **options) as bob,
    ):
        shared = await alice.refs.share("async", "print('hi')", language="python", to="bob")
        assert (await bob.refs.get(shared.id)).content == "print('hi')"
        assert [ref.title async for ref in bob.refs.list(language="python")] == ["async"]
        with pytest.raises(PermissionDeniedError):
            await bob.refs.delete(shared.id)
        await alice.refs.delete(shared.id)
        with pytest.raises(NotFoundError):
            await bob.refs.get(shared.id)


def test_the_same_id_is_idempotent_and_a_different_body_conflicts(team: Team, sdk: Callable[[str], Client]) -> None:
    alice = _http(team, "alice")
    body = _body(team, title="plan", content="step 1", language="markdown")
    first = alice.post("/v1/refs", json=body)
    assert first.status_code == 201, first.text
    assert first.headers["Location"] == f"/v1/refs/{body['id']}"
    again = alice.post("/v1/refs", json=body)
    assert again.status_code == 200 and again.json() == first.json()
    other = alice.post("/v1/refs", json=_body(team, title="plan", content="step 2", ref_id=body["id"]))
    assert other.status_code == 409 and other.json()["code"] == "ID_CONFLICT"
    # Another agent may not claim the id either, even with the same bytes.
    assert _http(team, "bob").post("/v1/refs", json=body).status_code == 409
    assert _ids(alice.get("/v1/refs")) == [body["id"]]

    # Through the SDK: repeating a share with the same plaintext (fresh envelopes) is no error.
    sdk_alice = sdk("alice")
    ref_id = new_id()
    made = sdk_alice.refs.share("x", "same", id=ref_id)
    assert sdk_alice.refs.share("x", "same", id=ref_id).created_at == made.created_at
    with pytest.raises(ConflictError):
        sdk_alice.refs.share("x", "changed", id=ref_id)


def test_a_ref_to_one_agent_is_seen_by_it_and_its_author_only(team: Team) -> None:
    alice, bob, carol = _http(team, "alice"), _http(team, "bob"), _http(team, "carol")
    direct = _body(team, to="bob")
    everyone = _body(team)
    to_self = _body(team, to="carol")
    assert alice.post("/v1/refs", json=direct).status_code == 201
    assert alice.post("/v1/refs", json=everyone).status_code == 201
    assert carol.post("/v1/refs", json=to_self).status_code == 201
    assert _ids(alice.get("/v1/refs")) == [direct["id"], everyone["id"]]
    assert _ids(bob.get("/v1/refs")) == [direct["id"], everyone["id"]]
    assert _ids(carol.get("/v1/refs")) == [everyone["id"], to_self["id"]]
    hidden = carol.get(f"/v1/refs/{direct['id']}")
    assert hidden.status_code == 404 and hidden.json()["code"] == "REF_NOT_FOUND"
    assert carol.delete(f"/v1/refs/{direct['id']}").status_code == 404
    assert bob.get(f"/v1/refs/{direct['id']}").status_code == 200
    # An agent that joins later sees what was shared with the whole project.
    created = team.owner.post(f"/v1/projects/{team.project_id}/agents", json={"slug": "dave", "name": "dave"})
    dave = httpx.Client(base_url=team.base_url, headers={"Authorization": f"Bearer {created.json()['api_key']}"})
    assert _ids(dave.get("/v1/refs")) == [everyone["id"]]
    unknown = alice.post("/v1/refs", json=_body(team, to="nobody"))
    assert unknown.status_code == 404 and unknown.json()["code"] == "RECIPIENT_NOT_FOUND"


def test_filters_and_pagination(team: Team, sdk: Callable[[str], Client]) -> None:
    alice, bob = _http(team, "alice"), _http(team, "bob")
    made = []
    for index, (author, language) in enumerate(
        [(alice, "python"), (bob, "go"), (alice, "python"), (alice, "c++"), (bob, "python"), (alice, None)]
    ):
        body = _body(team, title=f"ref {index}", **({"language": language} if language else {}))
        assert author.post("/v1/refs", json=body).status_code == 201
        made.append(body["id"])
    assert _ids(bob.get("/v1/refs", params={"from": "alice"})) == [made[0], made[2], made[3], made[5]]
    assert _ids(bob.get("/v1/refs", params={"language": "python"})) == [made[0], made[2], made[4]]
    assert _ids(bob.get("/v1/refs", params={"language": "c++"})) == [made[3]]
    assert _ids(bob.get("/v1/refs", params={"from": "bob", "language": "python"})) == [made[4]]
    assert bob.get("/v1/refs", params={"language": "Python!"}).status_code == 400
    assert bob.get("/v1/refs", params={"from": "Not A Slug"}).status_code == 400

    seen: list[str] = []
    cursor = None
    while True:
        page = bob.get("/v1/refs", params={"limit": 4, **({"cursor": cursor} if cursor else {})}).json()
        assert len(page["data"]) <= 4
        seen += [ref["id"] for ref in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made
    # The SDK pages by itself and decrypts every item.
    assert [ref.title for ref in sdk("carol").refs.list(limit=2)] == [f"ref {index}" for index in range(6)]
    assert [ref.id for ref in sdk("carol").refs.list(from_="bob", limit=1)] == [made[1], made[4]]


def test_only_the_author_deletes(team: Team) -> None:
    alice, bob = _http(team, "alice"), _http(team, "bob")
    body = _body(team)
    alice.post("/v1/refs", json=body)
    refused = bob.delete(f"/v1/refs/{body['id']}")
    assert refused.status_code == 403 and refused.json()["code"] == "NOT_REF_AUTHOR"
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert bob.get(f"/v1/refs/{body['id']}").status_code == 200
    assert alice.delete(f"/v1/refs/{body['id']}").status_code == 204
    assert bob.get(f"/v1/refs/{body['id']}").status_code == 404
    assert alice.delete(f"/v1/refs/{body['id']}").status_code == 404
    assert alice.get("/v1/refs/not-a-ulid").status_code == 404


def test_plaintext_bad_languages_and_oversized_content_are_refused(team: Team) -> None:
    alice = _http(team, "alice")
    plain = {**_body(team), "title": "in clear"}
    refused = alice.post("/v1/refs", json=plain)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "title"
    assert alice.post("/v1/refs", json=_body(team, language="Python 3")).status_code == 422
    no_id = _body(team)
    del no_id["id"]
    assert alice.post("/v1/refs", json=no_id).status_code == 422
    # 256 KiB of envelope at most: about 192 KiB of code.
    too_big = alice.post("/v1/refs", json=_body(team, content="x" * 200_000))
    assert too_big.status_code == 422 and too_big.json()["errors"][0]["field"] == "content"
    assert alice.post("/v1/refs", json=_body(team, content="x" * 190_000)).status_code == 201
    assert alice.get(f"/v1/refs/{plain['id']}").status_code == 404


def test_another_project_sees_none_of_the_refs(team: Team, dev_server: Any) -> None:
    alice = _http(team, "alice")
    body = _body(team)
    alice.post("/v1/refs", json=body)
    other = Team(dev_server.base_url, ["mallory"])
    mallory = _http(other, "mallory")
    assert mallory.get(f"/v1/refs/{body['id']}").status_code == 404
    assert mallory.delete(f"/v1/refs/{body['id']}").status_code == 404
    assert mallory.get("/v1/refs").json()["data"] == []
    # The same client-made id in another project is another record.
    theirs = _body(other, ref_id=body["id"])
    assert mallory.post("/v1/refs", json=theirs).status_code == 201
    assert alice.get(f"/v1/refs/{body['id']}").json()["content"] == body["content"]


async def test_new_ref_events_reach_the_addressees(team: Team) -> None:
    alice, carol = _http(team, "alice"), _http(team, "carol")
    async with EventStream(team.base_url, team.keys["bob"]) as bob_stream:
        direct = _body(team, to="bob", language="rust")
        everyone = _body(team)
        assert alice.post("/v1/refs", json=direct).status_code == 201
        assert alice.post("/v1/refs", json=everyone).status_code == 201
        seen = []
        while len(seen) < 2:
            frame = await bob_stream.event()
            if frame.event == "new_ref":
                seen.append(frame.data["data"])  # type: ignore[index]
    assert [(data["id"], data["from"], data["to"], data["language"]) for data in seen] == [
        (direct["id"], "alice", "bob", "rust"),
        (everyone["id"], "alice", None, None),
    ]
    assert set(seen[0]) == {"id", "from", "to", "language", "created_at"}  # routing only, no content

    # The polling fallback has them too; carol hears only of the one for everyone.
    def new_refs(client: httpx.Client) -> list[str]:
        events = client.get("/v1/events", params={"after": 0, "limit": 200}).json()["data"]
        return [event["data"]["id"] for event in events if event["type"] == "new_ref"]

    assert new_refs(_http(team, "bob")) == [direct["id"], everyone["id"]]
    assert new_refs(carol) == [everyone["id"]]


def test_refs_count_toward_the_storage_quota(dev_servers: Callable[..., Any], tmp_path: Path) -> None:
    server = dev_servers(tmp_path / "data", {"NEXYSYNC_QUOTA_STORAGE_MB": "1"})
    team = Team(server.base_url, ["alice", "bob"])
    alice, bob = _http(team, "alice"), _http(team, "bob")
    quota = alice.get("/v1/quota").json()
    assert (quota["storage_bytes"], quota["storage_limit_bytes"]) == (0, 1024 * 1024)

    stored: list[dict[str, Any]] = []
    while True:
        response = alice.post("/v1/refs", json=_body(team, content="y" * 150_000))
        if response.status_code != 201:
            break
        stored.append(response.json())
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "QUOTA_EXCEEDED" and "storage" in response.json()["detail"]
    assert len(stored) == 1024 * 1024 // stored[0]["size_bytes"]
    total = sum(ref["size_bytes"] for ref in stored)
    assert bob.get("/v1/quota").json()["storage_bytes"] == total
    assert team.owner.get(f"/v1/projects/{team.project_id}/usage").json()["storage_bytes"] == total
    # A refused share stored nothing.
    assert len(_ids(bob.get("/v1/refs"))) == len(stored)

    assert alice.delete(f"/v1/refs/{stored[0]['id']}").status_code == 204
    assert alice.get("/v1/quota").json()["storage_bytes"] == total - stored[0]["size_bytes"]
    body = _body(team, content="y" * 150_000)
    assert alice.post("/v1/refs", json=body).status_code == 201
    assert alice.get("/v1/quota").json()["storage_bytes"] == total
    # Full again; an idempotent repeat is still answered, and counts nothing twice.
    assert alice.post("/v1/refs", json=_body(team, content="y" * 150_000)).status_code == 403
    assert alice.post("/v1/refs", json=body).status_code == 200
    assert alice.get("/v1/quota").json()["storage_bytes"] == total


async def test_deleting_a_project_removes_its_refs_and_storage(mongo_uri: str) -> None:
    store = Store(Settings(mongodb_uri=mongo_uri, db_name=f"nexysync_refs_{secrets.token_hex(4)}"))
    try:
        await store.ensure_indexes()
        project_id, other_id = new_id(), new_id()
        author = {"_id": new_id(), "slug": "alice"}
        envelope = "v1.0123abcd." + "A" * 60
        for project in (project_id, other_id):
            body = {"id": new_id(), "title": envelope, "content": envelope}
            assert await store.usage.reserve_storage(project, 120, 10_000)
            await store.refs.insert(project_id=project, author=author, body=body, recipient_id=None)
        await store.delete_project_data(project_id)
        assert await store.refs.col.count_documents({"project_id": project_id}) == 0
        assert await store.usage.storage_bytes(project_id) == 0
        assert await store.refs.col.count_documents({"project_id": other_id}) == 1
        assert await store.usage.storage_bytes(other_id) == 120
    finally:
        await store.close()


def test_the_stored_size_is_what_the_quota_counts(team: Team) -> None:
    alice = _http(team, "alice")
    before = alice.get("/v1/quota").json()["storage_bytes"]
    body = _body(team, content="z" * 1000, source_file="a.py")
    created = alice.post("/v1/refs", json=body).json()
    assert created["size_bytes"] == len(body["title"]) + len(body["content"]) + len(body["source_file"])
    assert alice.get("/v1/quota").json()["storage_bytes"] == before + created["size_bytes"]
