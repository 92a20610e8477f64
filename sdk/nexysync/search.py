"""Search that never shows the server a word: a full-text index of what one agent can read, on its machine.

The server holds only ciphertext, so it cannot search; the agent's machine can. A
:class:`SearchIndex` is an SQLite FTS5 index (Python's own ``sqlite3``) of the decrypted records
the agent may read: the messages of its inbox (topic, payload, metadata), the project's code
references it is shown (title, content, source file) and the kv entries (key, value).

- **Where.** ``.nexysync/search.db`` beside the agent's key file (:meth:`SearchIndex.beside`),
  mode 0600 in a 0700 directory, like the key file: it holds plaintext.
- **Whose.** It remembers the agent and project it was filled for; opened for another agent
  (another key file in the same folder), it empties itself before taking anything.
- **Filled and kept current.** :meth:`SearchIndex.update` (or :meth:`~SearchIndex.aupdate` with an
  :class:`~nexysync.AsyncClient`) fills it from history on first use, a page at a time, then
  catches up: the messages stored since the newest one it holds, and the references and kv
  entries listed whole, so that a deleted reference or key leaves the index too. A process that
  follows the stream (the MCP server) adds each message as it arrives (:meth:`add_messages`).
- **Kept.** Messages stay after the server's retention has dropped them, and a key rotation
  changes nothing (what is indexed is already decrypted; the ring decrypts what comes later).
- **Listing is delivering.** Filling lists the inbox, which records each copy ``delivered``
  (not read), as any fetch of the inbox does.

Queries are words, all of which must match (``OR`` between two words relaxes that),
``"quoted phrases"`` and ``prefix*``; nothing in a query is FTS5 syntax, so no query is an error.
Words are matched by their stems (``authenticate`` finds ``authentication``), accents ignored.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sqlite3
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nexysync.keyfile import immediate_transaction, private_sqlite

if TYPE_CHECKING:
    from nexysync._client import AsyncClient, Client
    from nexysync_generated.models import KvEntry, Message, Ref

__all__ = ["INDEX_FILE", "KINDS", "Progress", "SearchHit", "SearchIndex", "fts_query", "parse_since"]

INDEX_FILE = "search.db"
#: What the index holds, in the order a fill takes them.
KINDS = ("message", "ref", "kv")
#: Told of a fill's progress: the kind being indexed and how many records of it so far.
Progress = Callable[[str, int], None]
#: A catch-up asks for the messages stored since the newest one held, less this much: a message
#: another server worker stored a moment earlier may become visible a moment later.
CATCH_UP_MARGIN = dt.timedelta(minutes=2)
PAGE = 100

_SCHEMA = """
CREATE TABLE IF NOT EXISTS about (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    record TEXT NOT NULL,
    sender TEXT,
    at INTEGER NOT NULL,
    version INTEGER,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    extra TEXT NOT NULL,
    UNIQUE (kind, record)
);
CREATE INDEX IF NOT EXISTS records_at ON records (kind, at);
CREATE VIRTUAL TABLE IF NOT EXISTS records_fts USING fts5(
    title, body, extra, content='records', content_rowid='id',
    tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS records_ai AFTER INSERT ON records BEGIN
    INSERT INTO records_fts (rowid, title, body, extra) VALUES (new.id, new.title, new.body, new.extra);
END;
CREATE TRIGGER IF NOT EXISTS records_ad AFTER DELETE ON records BEGIN
    INSERT INTO records_fts (records_fts, rowid, title, body, extra)
    VALUES ('delete', old.id, old.title, old.body, old.extra);
END;
CREATE TRIGGER IF NOT EXISTS records_au AFTER UPDATE ON records BEGIN
    INSERT INTO records_fts (records_fts, rowid, title, body, extra)
    VALUES ('delete', old.id, old.title, old.body, old.extra);
    INSERT INTO records_fts (rowid, title, body, extra) VALUES (new.id, new.title, new.body, new.extra);
END;
"""

_TERM = re.compile(r'"([^"]*)"?|(\S+)')


def fts_query(text: str) -> str:
    """Turn what a user typed into an FTS5 query that cannot be a syntax error.

    Every word and ``"phrase"`` is quoted (so ``-``, ``:``, ``(`` and FTS5's keywords are plain
    text); ``word*`` stays a prefix search, and ``OR`` between two terms stays an or.

    Raises:
        ValueError: nothing to search for.
    """
    parts: list[str] = []
    for phrase, word in _TERM.findall(text):
        if word == "OR":
            if parts and parts[-1] != "OR":
                parts.append("OR")
            continue
        term = word or phrase
        prefix = bool(word) and word.endswith("*") and len(word.rstrip("*")) > 0
        term = term.rstrip("*") if prefix else term
        if not re.search(r"\w", term):
            continue  # punctuation alone has no token to match
        parts.append('"' + term.replace('"', '""') + '"' + ("*" if prefix else ""))
    while parts and parts[-1] == "OR":
        parts.pop()
    if not parts:
        raise ValueError("give at least one word to search for")
    return " ".join(parts)


_AGO = re.compile(r"(\d+)\s*([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """Read a "since": an ISO 8601 date or time (UTC unless it says), an age (``7d``), ``today`` or ``yesterday``.

    Raises:
        ValueError: neither (the message says what is accepted).
    """
    text = text.strip()
    if text.lower() in ("today", "yesterday"):
        # Midnight where the user is (``now`` in its own zone when given).
        local = (now or dt.datetime.now(dt.UTC)).astimezone()
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight - dt.timedelta(days=1 if text.lower() == "yesterday" else 0)
    ago = _AGO.fullmatch(text)
    if ago:
        return (now or dt.datetime.now(dt.UTC)) - dt.timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"since {text!r}: give a date or time (2026-12-01, 2026-12-01T09:30), an age (30m, 12h, 7d, 2w), "
            "today or yesterday"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _ms(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


@dataclass(frozen=True)
class SearchHit:
    """One record a search found, with the matched words marked.

    Attributes:
        kind: ``message``, ``ref`` or ``kv``.
        id: The message's or reference's id, or the kv key.
        sender: Who wrote it: the sender, the reference's author, the kv entry's last writer.
        at: When it was stored (a kv entry: last set).
        title: The topic, the reference's title, the kv key: marked, whole.
        body: The payload, the reference's content, the kv value: whole and marked when short,
            else the passages around the matches (``cut`` is then true).
        extra: The message's metadata, the reference's source file and language: marked, bounded.
        cut: Whether ``body`` is an excerpt.
        version: A kv entry's version.
    """

    kind: str
    id: str
    sender: str | None
    at: dt.datetime
    title: str
    body: str
    extra: str
    cut: bool
    version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return it as JSON-ready values (``at`` in ISO 8601)."""
        values = asdict(self)
        values["at"] = self.at.isoformat(timespec="seconds")
        return values


class SearchIndex:
    """A local full-text index of the records one agent can read (see the module's docs).

    Args:
        path: The index file; created (mode 0600, its folder 0700) when missing.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        # A CLI search and the MCP server may share the file (WAL: one reads while one writes).
        self._db = private_sqlite(self.path)
        self._db.executescript(_SCHEMA)

    @classmethod
    def beside(cls, key_file: str | os.PathLike[str]) -> SearchIndex:
        """Open the index of the agent whose key file is ``key_file`` (``.nexysync/search.db``)."""
        return cls(Path(key_file).with_name(INDEX_FILE))

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def __enter__(self) -> SearchIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what it holds --------------------------------------------------------------------------

    def _about(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM about WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @property
    def filled(self) -> bool:
        """Whether a fill from history has finished at least once (since the last :meth:`clear`)."""
        return self._about("filled") == "1"

    @property
    def owner(self) -> tuple[str, str] | None:
        """The agent id and project id it holds the records of, once known."""
        agent, project = self._about("agent_id"), self._about("project_id")
        return None if agent is None or project is None else (agent, project)

    def bind(self, agent_id: str, project_id: str) -> None:
        """Say whose records it holds; for another agent than the one it holds, empty it first."""
        if self.owner == (agent_id, project_id):
            return
        with immediate_transaction(self._db) as db:
            self._clear(db)
            db.executemany(
                "INSERT INTO about (key, value) VALUES (?, ?)", [("agent_id", agent_id), ("project_id", project_id)]
            )

    def clear(self) -> None:
        """Forget everything (the next update fills it again from history)."""
        with immediate_transaction(self._db) as db:
            self._clear(db)

    @staticmethod
    def _clear(db: sqlite3.Connection) -> None:
        db.execute("DELETE FROM records")
        db.execute("DELETE FROM about")

    def count(self, kind: str | None = None) -> int:
        """Return how many records it holds (of one kind)."""
        if kind is None:
            return int(self._db.execute("SELECT count(*) FROM records").fetchone()[0])
        return int(self._db.execute("SELECT count(*) FROM records WHERE kind = ?", (kind,)).fetchone()[0])

    # -- taking records -------------------------------------------------------------------------

    def add_messages(self, messages: Iterable[Message]) -> int:
        """Index decrypted messages (again, if already held); return how many."""
        rows = [
            ("message", m.id, m.from_, _ms(m.created_at), None, m.topic, m.payload, m.metadata or "") for m in messages
        ]
        with immediate_transaction(self._db) as db:
            self._upsert(db, rows)
        return len(rows)

    def replace_refs(self, refs: Sequence[Ref]) -> None:
        """Hold exactly these references: new ones added, changed ones updated, the others dropped."""
        rows = [("ref", r.id, r.from_, _ms(r.created_at), None, r.title, r.content, _ref_extra(r)) for r in refs]
        self._replace("ref", rows)

    def replace_kv(self, entries: Sequence[KvEntry]) -> None:
        """Hold exactly these kv entries: set ones added or updated, deleted ones dropped."""
        rows = [("kv", e.key, e.updated_by, _ms(e.updated_at), e.version, e.key, e.value, "") for e in entries]
        self._replace("kv", rows)

    def _replace(self, kind: str, rows: list[tuple[Any, ...]]) -> None:
        with immediate_transaction(self._db) as db:
            db.execute("CREATE TEMP TABLE IF NOT EXISTS keep (record TEXT PRIMARY KEY)")
            db.execute("DELETE FROM keep")
            db.executemany("INSERT OR IGNORE INTO keep (record) VALUES (?)", [(row[1],) for row in rows])
            db.execute("DELETE FROM records WHERE kind = ? AND record NOT IN (SELECT record FROM keep)", (kind,))
            self._upsert(db, rows)

    @staticmethod
    def _upsert(db: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        # An unchanged record is left alone, so a catch-up that sees it again rewrites nothing.
        db.executemany(
            "INSERT INTO records (kind, record, sender, at, version, title, body, extra) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (kind, record) DO UPDATE SET sender = excluded.sender, at = excluded.at, "
            "version = excluded.version, title = excluded.title, body = excluded.body, extra = excluded.extra "
            "WHERE records.title IS NOT excluded.title OR records.body IS NOT excluded.body "
            "OR records.extra IS NOT excluded.extra OR records.version IS NOT excluded.version",
            rows,
        )

    def _catch_up_since(self) -> dt.datetime | None:
        """When a catch-up of the messages starts: None (all of them) before the first fill."""
        newest = self._db.execute("SELECT max(at) FROM records WHERE kind = 'message'").fetchone()[0]
        if not self.filled or newest is None:
            return None
        return dt.datetime.fromtimestamp(newest / 1000, dt.UTC) - CATCH_UP_MARGIN

    def _listings(self, client: Client | AsyncClient, kinds: Collection[str]) -> list[tuple[str, Any]]:
        """Return the listings to page through, by kind: every kind before the first fill."""
        # A pager fetches nothing until it is walked.
        pagers = {
            "message": client.messages.list(since=self._catch_up_since(), limit=PAGE),
            "ref": client.refs.list(limit=PAGE),
            "kv": client.kv.list(limit=PAGE),
        }
        return [(kind, pagers[kind]) for kind in KINDS if kind in kinds or not self.filled]

    def _finish(self, kinds: Collection[str]) -> None:
        if set(KINDS) <= set(kinds):
            with immediate_transaction(self._db) as db:
                db.execute("INSERT OR REPLACE INTO about (key, value) VALUES ('filled', '1')")

    # -- filling from the API -------------------------------------------------------------------

    def update(self, client: Client, *, kinds: Collection[str] = KINDS, progress: Progress | None = None) -> None:
        """Fill the index from history (first use), or catch up with what changed since.

        Args:
            client: The agent's client.
            kinds: What to catch up with (all by default; before the first fill, all anyway).
            progress: Told of the count of each kind as pages come in.
        """
        me = client.me.get()
        self.bind(me.agent.id, me.project_id)
        listings = self._listings(client, kinds)
        for kind, pager in listings:
            taking = _Taking(self, kind, progress)
            for page in pager.pages():
                taking.page(page.data)
            taking.end()
        self._finish([kind for kind, _ in listings])

    async def aupdate(
        self, client: AsyncClient, *, kinds: Collection[str] = KINDS, progress: Progress | None = None
    ) -> None:
        """:meth:`update` with an :class:`~nexysync.AsyncClient`."""
        me = await client.me.get()
        self.bind(me.agent.id, me.project_id)
        listings = self._listings(client, kinds)
        for kind, pager in listings:
            taking = _Taking(self, kind, progress)
            async for page in pager.pages():
                taking.page(page.data)
            taking.end()
        self._finish([kind for kind, _ in listings])

    # -- searching ------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        sender: str | None = None,
        since: dt.datetime | None = None,
        kind: str | None = None,
        limit: int = 10,
        body_chars: int = 1500,
        mark: tuple[str, str] = ("**", "**"),
    ) -> list[SearchHit]:
        """Return the records that match ``query``, best first, with the matched words between ``mark``.

        Args:
            query: Words (see the module's docs for phrases, ``OR`` and prefixes).
            sender: Only records written by this agent slug.
            since: Only records stored (kv: set) at or after this time.
            kind: Only ``message``, ``ref`` or ``kv`` records.
            limit: At most this many hits.
            body_chars: A body longer than this is shown as the passages around its matches.
            mark: What goes before and after each matched word.

        Raises:
            ValueError: a query with no word in it, or an unknown kind.
        """
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        where = ["records_fts MATCH ?"]
        values: list[Any] = [fts_query(query)]
        for clause, value in (("r.kind = ?", kind), ("r.sender = ?", sender)):
            if value is not None:
                where.append(clause)
                values.append(value)
        if since is not None:
            where.append("r.at >= ?")
            values.append(_ms(since))
        # Rank first, then mark only the hits: highlight() and snippet() on every match of a
        # common word would cost more than the ranking itself.
        ranked = self._db.execute(
            "SELECT r.id FROM records_fts JOIN records r ON r.id = records_fts.rowid "
            f"WHERE {' AND '.join(where)} ORDER BY bm25(records_fts, 4.0, 1.0, 1.0), r.at DESC LIMIT ?",
            [*values, max(1, limit)],
        ).fetchall()
        left, right = mark
        marked = (
            "SELECT r.kind, r.record, r.sender, r.at, r.version, length(r.body), length(r.extra), "
            "highlight(records_fts, 0, ?, ?), highlight(records_fts, 1, ?, ?), "
            "snippet(records_fts, 1, ?, ?, '…', 40), snippet(records_fts, 2, ?, ?, '…', 24), "
            "highlight(records_fts, 2, ?, ?) "
            "FROM records_fts JOIN records r ON r.id = records_fts.rowid "
            "WHERE records_fts MATCH ? AND records_fts.rowid = ?"
        )
        rows = [self._db.execute(marked, [left, right] * 5 + [values[0], rowid]).fetchone() for (rowid,) in ranked]
        hits = []
        for kind_, record, author, at, version, body_len, extra_len, title, body, body_cut, extra_cut, extra in rows:
            cut = body_len > body_chars
            hits.append(
                SearchHit(
                    kind=kind_,
                    id=record,
                    sender=author,
                    at=dt.datetime.fromtimestamp(at / 1000, dt.UTC),
                    title=title,
                    body=body_cut if cut else body,
                    extra=extra_cut if extra_len > body_chars else extra,
                    cut=cut,
                    version=version,
                )
            )
        return hits


def _ref_extra(ref: Ref) -> str:
    return " ".join(part for part in (ref.source_file, ref.language) if part)


class _Taking:
    """One kind's records as the pages of its listing come in.

    Messages are indexed page by page; references and kv entries are held until the listing
    ends, and the index then holds exactly those (so deleted ones leave it).
    """

    def __init__(self, index: SearchIndex, kind: str, progress: Progress | None) -> None:
        self._index, self._kind, self._progress = index, kind, progress
        self._held: list[Any] = []
        self._count = 0

    def page(self, records: list[Any]) -> None:
        if self._kind == "message":
            self._count += self._index.add_messages(records)
        else:
            self._held.extend(records)
            self._count = len(self._held)
        if self._progress is not None:
            self._progress(self._kind, self._count)

    def end(self) -> None:
        if self._kind == "ref":
            self._index.replace_refs(self._held)
        elif self._kind == "kv":
            self._index.replace_kv(self._held)
