"""``nexysync search``: full-text search of what the agent can read, on this machine.

The index is :class:`nexysync.search.SearchIndex`, in ``.nexysync/search.db`` beside the key
file. The first search fills it from history (with progress on stderr); each later one catches up
with what changed, then searches locally. The server never sees a word of the query.
"""

from __future__ import annotations

from nexysync import Client
from nexysync.search import SearchHit, SearchIndex, fts_query, parse_since
from nexysync_cli.context import Context
from nexysync_cli.errors import CliError
from nexysync_cli.keyfiles import agent_key_file

__all__ = ["format_hit", "run_search"]

_NAMES = {"message": "messages", "ref": "references", "kv": "kv entries"}


def format_hit(hit: SearchHit) -> str:
    """Return a hit for a person: what and whose on one line, then the marked body, indented."""
    when = hit.at.astimezone().strftime("%Y-%m-%d %H:%M")
    what = f"{hit.kind} {hit.id}" + (f" (version {hit.version})" if hit.version is not None else "")
    lines = [f"{what} from {hit.sender or '?'}, {when}: {hit.title}"]
    lines += [f"    {line}" for line in hit.body.splitlines() or [""]]
    if hit.extra:
        lines.append(f"    [{hit.extra}]")
    if hit.cut:
        lines.append("    (passages around the matches)")
    return "\n".join(lines)


def run_search(ctx: Context) -> int:
    """Search the agent's messages, references and kv values; fill or update the local index first."""
    args = ctx.args
    try:
        fts_query(args.query)  # a query with no word is refused before any request
    except ValueError as exc:
        raise CliError(str(exc), code="BAD_QUERY") from exc
    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as exc:
        raise CliError(str(exc), code="BAD_SINCE") from exc
    path = agent_key_file(args.key_file, args.dir)
    with SearchIndex.beside(path) as index, Client.from_key_file(path) as client:
        if args.reindex:
            index.clear()
        first = not index.filled
        if first:
            ctx.output.progress(f"indexing this agent's history into {index.path} (once)")

        def progress(kind: str, done: int) -> None:
            if first:
                ctx.output.progress(f"  {done} {_NAMES[kind]}")

        index.update(client, progress=progress)
        hits = index.search(args.query, sender=args.from_, since=since, kind=args.kind, limit=args.limit)
    text = "\n\n".join(format_hit(hit) for hit in hits) if hits else f"nothing matches {args.query!r}"
    ctx.output.result([hit.to_dict() for hit in hits], text)
    return 0
