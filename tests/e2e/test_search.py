"""Search on the agent's machine: the CLI, the MCP tool and the index, against a real server.

Each searched word is made up for the test, so a find is this test's record and a miss in the
server's files means the word is not there in any form.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from cli_support import CliProject, provision_project, run_cli
from jsonschema import Draft202012Validator
from mcp_raw import LEGACY, raw_mcp
from scan_support import encodings, files_holding

from nexysync import Client
from nexysync.keyfile import load_key_file
from nexysync_mcp.tools.messages import SEARCH_ANSWER_CHARS, SEARCH_HITS, TOOL

pytestmark = pytest.mark.e2e


def word(name: str) -> str:
    """A word no other record holds: letters only, so the tokenizer keeps it whole."""
    return name + "".join(secrets.choice("bcdfghjklmnpqrstvwxz") for _ in range(10))


def search(project: CliProject, slug: str, *args: str) -> tuple[list[dict[str, Any]], str]:
    """Run ``nexysync search`` in a workspace; return its hits and what it said on stderr."""
    done = run_cli(["--json", "search", *args], config_dir=project.config_dir, cwd=project.workspaces[slug])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def search_text(project: CliProject, slug: str, *args: str) -> tuple[str, str]:
    """Run ``nexysync search`` for a person (progress shows); return its stdout and stderr."""
    done = run_cli(["search", *args], config_dir=project.config_dir, cwd=project.workspaces[slug])
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


def ids(hits: list[dict[str, Any]]) -> list[str]:
    return [hit["id"] for hit in hits]


def answer(result: dict[str, Any]) -> dict[str, Any]:
    """Return a tool call's answer, checked against the output schema the tool declares."""
    assert not result.get("isError"), result
    Draft202012Validator(TOOL.output_schema()).validate(result["structuredContent"])
    parsed: dict[str, Any] = json.loads(result["content"][0]["text"])
    return parsed


def test_search_finds_what_the_agent_may_read_and_the_server_never_sees_a_word(dev_server: Any, tmp_path: Path) -> None:
    project = provision_project(dev_server.base_url, tmp_path, ("backend", "web", "mobile"))
    words = {name: word(name) for name in ("topic", "payload", "meta", "ref", "source", "kv", "private", "later")}
    with Client.from_key_file(project.workspaces["backend"] / ".nexysync" / "key") as backend:
        first = backend.messages.send(
            "web",
            topic=f"Auth API {words['topic']}",
            payload=f"The login endpoint takes a refresh token now ({words['payload']}).",
            metadata=json.dumps({"ticket": words["meta"]}),
        )
        # A message to another agent: web's search must never find it.
        backend.messages.send("mobile", topic="for mobile only", payload=f"secret plan {words['private']}")
        shared = backend.refs.share(
            title="Token check", content=f"def verify({words['ref']}): ...", source_file=f"src/{words['source']}.py"
        )
        backend.kv.put("release:freeze", f"no merges after thursday {words['kv']}")

    # The first search fills the index from history, with progress on stderr.
    shown, said = search_text(project, "web", words["payload"])
    assert "indexing this agent's history" in said and "1 messages" in said and "1 kv entries" in said
    assert shown.startswith(f"message {first.id} from backend, ") and f"(**{words['payload']}**)" in shown
    hits, _ = search(project, "web", words["payload"])
    assert ids(hits) == [first.id] and hits[0]["sender"] == "backend"
    assert ids(search(project, "web", words["topic"])[0]) == [first.id]
    assert ids(search(project, "web", words["meta"])[0]) == [first.id]
    assert ids(search(project, "web", words["ref"])[0]) == [shared.id]
    assert ids(search(project, "web", words["source"])[0]) == [shared.id]
    assert ids(search(project, "web", words["kv"])[0]) == ["release:freeze"]
    assert search(project, "web", words["private"])[0] == []
    # Filters: by writer, by kind, by time.
    assert search(project, "web", words["kv"], "--from", "mobile")[0] == []
    assert ids(search(project, "web", words["kv"], "--kind", "kv", "--from", "backend")[0]) == ["release:freeze"]
    assert search(project, "web", words["topic"], "--kind", "ref")[0] == []
    assert search(project, "web", words["topic"], "--since", "2099-01-01")[0] == []
    # Mobile, the recipient, finds its own message; it was never in web's index.
    assert len(search(project, "mobile", words["private"])[0]) == 1
    index = project.workspaces["web"] / ".nexysync" / "search.db"
    assert index.stat().st_mode & 0o777 == 0o600
    assert not _rows_holding(index, words["private"])

    # A restart (a new process) keeps the index: no refill; a rotation keeps it, and what is sent
    # with the new key is found too.
    shown, said = search_text(project, "web", words["payload"])
    assert first.id in shown and "indexing" not in said
    before = len(load_key_file(project.workspaces["web"] / ".nexysync" / "key").keys)
    run_cli(["keys", "rotate", "--project", project.project_name], config_dir=project.config_dir).check_returncode()
    assert len(load_key_file(project.workspaces["web"] / ".nexysync" / "key").keys) == before + 1
    with Client.from_key_file(project.workspaces["backend"] / ".nexysync" / "key") as backend:
        later = backend.messages.send("web", topic="after the rotation", payload=f"new key {words['later']}")
    assert ids(search(project, "web", words["later"])[0]) == [later.id]
    assert ids(search(project, "web", words["payload"])[0]) == [first.id]

    # --reindex rebuilds from history and finds the same.
    shown, said = search_text(project, "web", words["topic"], "--reindex")
    assert first.id in shown and "indexing" in said

    # The server's database files hold none of the searched words, in any form.
    needles = {f"{name} as {form}": value for name, text in words.items() for form, value in encodings(text).items()}
    assert files_holding(project.workspaces["web"], needles), "the scan must find the words where they are"
    deadline = time.monotonic() + 30
    marker = {"project id": project.project_id.encode()}
    while not files_holding(Path(dev_server.data_dir), marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert files_holding(Path(dev_server.data_dir), marker), "the project never reached the data files"
    assert files_holding(Path(dev_server.data_dir), needles) == {}


def _rows_holding(index: Path, text: str) -> list[Any]:
    with sqlite3.connect(index) as db:
        return db.execute(
            "SELECT kind, record FROM records WHERE body LIKE ? OR title LIKE ?", (f"%{text}%",) * 2
        ).fetchall()


def test_the_mcp_tool_searches_keeps_current_from_the_stream_and_bounds_its_answer(
    dev_server: Any, tmp_path: Path
) -> None:
    project = provision_project(dev_server.base_url, tmp_path, ("backend", "web"))
    asyncio.run(_mcp_search(project))


async def _mcp_search(project: CliProject) -> None:
    old, streamed, value, bulk = word("old"), word("streamed"), word("value"), word("bulk")
    backend = Client.from_key_file(project.workspaces["backend"] / ".nexysync" / "key")
    first = backend.messages.send("web", topic="history", payload=f"from before {old}")
    index = project.workspaces["web"] / ".nexysync" / "search.db"
    async with raw_mcp(project.workspaces["web"], LEGACY) as mcp:
        await mcp.live()
        found = answer(await mcp.call("ns_message", action="search", query=old))
        assert [(hit["kind"], hit["id"], hit["from"]) for hit in found["hits"]] == [("message", first.id, "backend")]
        assert found["hits"][0]["payload"] == f"from before **{old}**"

        # A new message reaches the index from the stream, before any search asks the API.
        sent = await asyncio.to_thread(backend.messages.send, "web", topic="live", payload=f"pushed {streamed}")
        deadline = time.monotonic() + 15
        while not _rows_holding(index, streamed):
            assert time.monotonic() < deadline, "the streamed message never reached the index"
            await asyncio.sleep(0.1)
        assert [hit["id"] for hit in answer(await mcp.call("ns_message", action="search", query=streamed))["hits"]] == [
            sent.id
        ]
        # A kv update (another agent's) makes the next search refresh the kv entries.
        await asyncio.to_thread(backend.kv.put, "plan", f"the plan is {value}")
        deadline = time.monotonic() + 15
        while not any("“plan”" in str(note.params.get("data")) for note in mcp.notifications):
            assert time.monotonic() < deadline, "the kv update was never announced"
            await asyncio.sleep(0.1)
        (hit,) = answer(await mcp.call("ns_message", action="search", query=value, kind="kv"))["hits"]
        assert (hit["key"], hit["value"]) == ("plan", f"the plan is **{value}**")

        # A reference this agent shares is found at once; once deleted it is not (no event tells).
        code = word("code")
        shared = json.loads(
            (await mcp.call("ns_ref", action="share", title="snippet", content=f"x = {code}"))["content"][0]["text"]
        )
        assert [h["id"] for h in answer(await mcp.call("ns_message", action="search", query=code))["hits"]] == [
            shared["id"]
        ]
        await mcp.call("ns_ref", action="delete", id=shared["id"])
        assert answer(await mcp.call("ns_message", action="search", query=code))["hits"] == []

        # Bounded: a long body comes back as passages; many hits stop at the limit and the size budget.
        long = " ".join(["filler"] * 15_000) + f" {bulk} " + " ".join(["filler"] * 15_000)
        await asyncio.to_thread(backend.messages.send, "web", topic="big", payload=long)
        for n in range(30):
            await asyncio.to_thread(backend.messages.send, "web", topic=f"many {n}", payload=f"{bulk} " + "y " * 650)
        deadline = time.monotonic() + 30
        while len(_rows_holding(index, bulk)) < 31:
            assert time.monotonic() < deadline, "the bulk messages never all reached the index"
            await asyncio.sleep(0.2)
        result = await mcp.call("ns_message", action="search", query=bulk)
        many = answer(result)
        # Each hit is about 1,400 characters: the size budget stops the answer before the hit cap.
        assert SEARCH_ANSWER_CHARS - 2000 < len(result["content"][0]["text"]) < SEARCH_ANSWER_CHARS + 500
        assert 5 < len(many["hits"]) < SEARCH_HITS and "more" in many
        assert all(f"**{bulk}**" in hit["payload"] for hit in many["hits"])
        (big,) = answer(await mcp.call("ns_message", action="search", query=f"{bulk} filler"))["hits"]
        assert "cut" in big and len(big["payload"]) < 2000
        refused = await mcp.call("ns_message", action="search", query="  ")
        assert refused.get("isError")
    backend.close()
