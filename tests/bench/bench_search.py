"""Benchmark: the local search index (nexysync.search) at 10,000 and 100,000 messages.

Fills a fresh index with decrypted messages of made-up prose (a 5,000-word vocabulary, 40 to 400
words each), a page of 100 at a time as a fill from history does, then times queries (median of
``--repeat``): one common word, two words, a phrase, a prefix, and one word from one sender. The
index is local SQLite, so these are the costs on the agent's machine; the API's listing cost is
the server's ordinary paging (``bench_lookups.py``).

Run: ``python tests/bench/bench_search.py [--sizes 10000,100000] [--repeat 20]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import tempfile
import time
from pathlib import Path

from nexysync.search import SearchIndex
from nexysync_generated.models import Message

PAGE = 100


def _vocabulary(rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnoprstuvwy"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 10))) for _ in range(5_000)]


def _message(n: int, rng: random.Random, words: list[str]) -> Message:
    # A Zipf-like draw: a few words are common, most are rare, as in prose.
    body = " ".join(words[min(int(rng.paretovariate(1.1)) - 1, len(words) - 1)] for _ in range(rng.randint(40, 400)))
    when = (dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=n)).isoformat()
    return Message.model_validate(
        {
            "id": f"01J{n:023d}",
            "project_id": "01J00000000000000000000000",
            "from": f"agent-{n % 8}",
            "to": "me",
            "broadcast": False,
            "type": "notification",
            "priority": "normal",
            "reply_to": None,
            "topic": " ".join(rng.sample(words[:500], 4)),
            "payload": body,
            "metadata": None,
            "status": "read",
            "pinned": False,
            "reactions": [],
            "created_at": when,
            "expires_at": when,
        }
    )


def _median_ms(index: SearchIndex, query: str, repeat: int, **filters: str) -> tuple[float, int]:
    times, hits = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        hits = len(index.search(query, limit=12, **filters))  # type: ignore[arg-type]
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="message counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=20)
    options, _ = parser.parse_known_args()
    rng = random.Random(7)
    words = _vocabulary(rng)
    common, second, rare = words[0], words[1], words[3000]
    queries = {
        "one common word": (common, {}),
        "two words": (f"{common} {second}", {}),
        "a phrase": (f'"{common} {second}"', {}),
        "a prefix": (f"{common[:3]}*", {}),
        "a rare word": (rare, {}),
        "a word, one sender": (common, {"sender": "agent-3"}),
    }
    print("search index (SQLite FTS5, porter stemming); median of", options.repeat, "queries, 12 hits asked")
    for size in (int(s) for s in options.sizes.split(",")):
        with tempfile.TemporaryDirectory() as folder:
            index = SearchIndex(Path(folder) / ".nexysync" / "search.db")
            index.bind("me", "project")
            started = time.perf_counter()
            for first in range(0, size, PAGE):
                index.add_messages([_message(n, rng, words) for n in range(first, min(first + PAGE, size))])
            fill_s = time.perf_counter() - started
            megabytes = sum(p.stat().st_size for p in index.path.parent.iterdir()) / 1e6
            print(
                f"\n{size:,} messages: filled in {fill_s:.1f} s ({size / fill_s:,.0f}/s, model building included); "
                f"index {megabytes:.0f} MB"
            )
            for name, (query, filters) in queries.items():
                ms, hits = _median_ms(index, query, options.repeat, **filters)
                print(f"  {name:<20} {ms:8.2f} ms  ({hits} hits)")
            index.close()


if __name__ == "__main__":
    main()
