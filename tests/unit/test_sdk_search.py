"""The local search index (nexysync.search): what it finds, how it bounds answers, whose records it keeps."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from nexysync.search import SearchIndex, fts_query, parse_since
from nexysync_generated.models import KvEntry, Message, Ref

ULID = "01J0000000000000000000{:04d}"
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def message(
    n: int, topic: str, payload: str, *, sender: str = "backend", metadata: str | None = None, days_ago: int = 0
) -> Message:
    when = (NOW - dt.timedelta(days=days_ago)).isoformat()
    return Message.model_validate(
        {
            "id": ULID.format(n),
            "project_id": ULID.format(0),
            "from": sender,
            "to": "web",
            "broadcast": False,
            "type": "notification",
            "priority": "normal",
            "reply_to": None,
            "topic": topic,
            "payload": payload,
            "metadata": metadata,
            "status": "unread",
            "pinned": False,
            "reactions": [],
            "created_at": when,
            "expires_at": when,
        }
    )


def ref(n: int, title: str, content: str, *, source_file: str | None = None, sender: str = "backend") -> Ref:
    return Ref.model_validate(
        {
            "id": ULID.format(n),
            "project_id": ULID.format(0),
            "from": sender,
            "to": None,
            "title": title,
            "content": content,
            "source_file": source_file,
            "language": "python",
            "size_bytes": 10,
            "created_at": NOW.isoformat(),
        }
    )


def kv(key: str, value: str, version: int = 1, *, by: str = "ops") -> KvEntry:
    return KvEntry.model_validate(
        {"key": key, "value": value, "version": version, "updated_by": by, "updated_at": NOW.isoformat()}
    )


@pytest.fixture
def index(tmp_path: Path) -> SearchIndex:
    opened = SearchIndex(tmp_path / ".nexysync" / "search.db")
    opened.bind("agent-web", "project-1")
    return opened


def found(index: SearchIndex, query: str, **filters: object) -> list[str]:
    return [hit.id for hit in index.search(query, **filters)]  # type: ignore[arg-type]


def test_finds_words_in_topics_payloads_metadata_refs_and_kv_values(index: SearchIndex) -> None:
    index.add_messages(
        [
            message(1, "Auth API", "The login endpoint now takes a refresh token."),
            message(2, "Deploy", "Friday at noon", metadata='{"ticket": "OPS-17 rollback plan"}'),
        ]
    )
    index.replace_refs([ref(3, "Token check", "def verify_signature(token): ...", source_file="src/auth/jwt.py")])
    index.replace_kv([kv("release:freeze", "no merges after thursday")])

    assert found(index, "auth") == [ULID.format(1), ULID.format(3)]  # a topic word (best), a source file
    assert found(index, "refresh token") == [ULID.format(1)]  # payload words, all of them
    assert found(index, "rollback") == [ULID.format(2)]  # metadata
    assert found(index, "verify_signature") == [ULID.format(3)]  # a reference's content
    assert found(index, "jwt") == [ULID.format(3)]  # its source file
    assert found(index, "merges thursday") == ["release:freeze"]  # a kv value
    assert found(index, "freeze") == ["release:freeze"]  # a kv key
    # Words match by their stem, and accents do not matter.
    index.add_messages([message(4, "Café", "We authenticated every caller")])
    assert found(index, "authentication") == [ULID.format(4)]
    assert found(index, "cafe") == [ULID.format(4)]
    assert found(index, "nothing-like-this") == []


def test_matches_are_marked_and_filters_narrow_by_sender_time_and_kind(index: SearchIndex) -> None:
    index.add_messages(
        [
            message(1, "auth notes", "old auth plan", sender="backend", days_ago=10),
            message(2, "auth notes", "new auth plan", sender="backend"),
            message(3, "auth", "auth from web", sender="mobile"),
        ]
    )
    index.replace_kv([kv("auth:mode", "oauth auth")])
    (hit,) = index.search("new plan")
    assert (hit.kind, hit.sender, hit.title, hit.body) == ("message", "backend", "auth notes", "**new** auth **plan**")
    assert hit.at == NOW and not hit.cut
    assert found(index, "auth", sender="mobile") == [ULID.format(3)]
    assert set(found(index, "auth", since=NOW - dt.timedelta(days=1))) == {ULID.format(2), ULID.format(3), "auth:mode"}
    assert found(index, "auth", kind="kv") == ["auth:mode"]
    assert index.search("auth", kind="kv")[0].version == 1
    assert len(index.search("auth", limit=2)) == 2
    with pytest.raises(ValueError, match="kind must be one of"):
        index.search("auth", kind="file")


def test_a_long_body_comes_back_as_marked_passages_not_whole(index: SearchIndex) -> None:
    long = " ".join(["filler"] * 3000) + " the needle is here " + " ".join(["filler"] * 3000)
    index.add_messages([message(1, "haystack", long)])
    (hit,) = index.search("needle", body_chars=500)
    assert hit.cut and "**needle**" in hit.body and len(hit.body) < 500
    (whole,) = index.search("needle", body_chars=100_000)
    assert not whole.cut and len(whole.body) == len(long) + 4


def test_refs_and_kv_are_held_as_listed_so_deleted_ones_leave_and_changed_ones_are_reindexed(
    index: SearchIndex,
) -> None:
    index.replace_refs([ref(1, "first", "alpha"), ref(2, "second", "beta")])
    index.replace_kv([kv("plan", "draft one", 1), kv("gone", "ephemeral", 1)])
    index.replace_refs([ref(2, "second", "beta")])
    index.replace_kv([kv("plan", "final two", 2)])
    assert found(index, "alpha") == [] and found(index, "beta") == [ULID.format(2)]
    assert found(index, "ephemeral") == [] and found(index, "draft") == []
    assert found(index, "final") == ["plan"] and index.search("final")[0].version == 2
    assert index.count() == 2


def test_it_is_kept_on_disk_and_emptied_when_opened_for_another_agent(tmp_path: Path) -> None:
    path = tmp_path / ".nexysync" / "search.db"
    with SearchIndex(path) as first:
        first.bind("agent-web", "project-1")
        first.add_messages([message(1, "kept", "across restarts")])
    with SearchIndex(path) as again:
        again.bind("agent-web", "project-1")
        assert found(again, "restarts") == [ULID.format(1)]
        # Another agent's key file in the same folder: nothing of the first agent is shown to it.
        again.bind("agent-api", "project-1")
        assert found(again, "restarts") == [] and again.count() == 0 and not again.filled


def test_the_index_and_its_journal_are_private(tmp_path: Path) -> None:
    folder = tmp_path / ".nexysync"
    folder.mkdir(mode=0o755)
    old_umask = os.umask(0o022)
    try:
        index = SearchIndex.beside(folder / "key")
        index.bind("a", "p")
        index.add_messages([message(1, "x", "y")])
        assert index.path == folder / "search.db"
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
        index.close()
    finally:
        os.umask(old_umask)
    assert modes == {"search.db": 0o600, "search.db-wal": 0o600, "search.db-shm": 0o600}
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    ("typed", "query"),
    [
        ("auth api", '"auth" "api"'),
        ('"refresh token" flow', '"refresh token" "flow"'),
        ("auth OR login", '"auth" OR "login"'),
        ("OR auth OR", '"auth"'),
        ("tok*", '"tok"*'),
        ('say "hi', '"say" "hi"'),
        ("a-b c:d NOT (x)", '"a-b" "c:d" "NOT" "(x)"'),
        ('he said ""quoted""', '"he" "said" "quoted"""""'),
    ],
)
def test_what_a_user_types_becomes_a_query_that_cannot_be_a_syntax_error(typed: str, query: str) -> None:
    assert fts_query(typed) == query


@pytest.mark.parametrize("typed", ["", "   ", "* - : ()", '""', "OR", "***"])
def test_a_query_with_no_word_is_refused_in_words(typed: str) -> None:
    with pytest.raises(ValueError, match="at least one word"):
        fts_query(typed)


def test_no_typed_query_reaches_sqlite_as_syntax(index: SearchIndex) -> None:
    index.add_messages([message(1, "col:on", 'a "quote" and NEAR(x y) and {braces} ^caret')])
    for typed in ['"', "NEAR(x y)", "title:on", "^caret", "{braces}", "a AND", "x OR OR y", "quote\"'", "-x", "*x"]:
        try:
            index.search(typed)
        except ValueError:
            continue
        except sqlite3.Error as error:  # pragma: no cover - the failure this test exists for
            pytest.fail(f"{typed!r} reached SQLite as syntax: {error}")
    assert found(index, "NEAR(x y)") == [ULID.format(1)]


def test_since_reads_dates_ages_and_today_or_yesterday() -> None:
    now = dt.datetime(2026, 12, 7, 15, 30, tzinfo=dt.UTC)
    assert parse_since("2026-12-01", now) == dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    assert parse_since("2026-12-01T09:30+01:00", now) == dt.datetime(2026, 12, 1, 8, 30, tzinfo=dt.UTC)
    assert parse_since("7d", now) == now - dt.timedelta(days=7)
    assert parse_since(" 90m ", now) == now - dt.timedelta(minutes=90)
    today = parse_since("today", now)
    assert today.astimezone().time() == dt.time(0, 0) and now - dt.timedelta(days=1) < today <= now
    assert parse_since("Yesterday", now) == today - dt.timedelta(days=1)
    with pytest.raises(ValueError, match="today or yesterday"):
        parse_since("last week", now)
