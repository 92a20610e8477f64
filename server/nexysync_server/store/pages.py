"""Cursor pagination shared by every list: ascending by a sortable key, cursor = last key."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection


async def page(
    col: AsyncCollection, query: dict[str, Any], key: str, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Return up to ``limit`` documents after ``cursor`` in ascending ``key`` order, and the next cursor.

    Nothing comes twice. Where keys only grow (ULIDs made by the server), a document stored
    while a client pages also appears after the pages already read, so nothing is skipped.
    ``query`` may already bound ``key`` (a prefix range); the cursor is added to those bounds.
    """
    if cursor is not None:
        bounds = query.get(key, {})
        query = {**query, key: {**bounds, "$gt": cursor}}
    docs = [doc async for doc in col.find(query).sort(key, 1).limit(limit + 1)]
    if len(docs) > limit:
        docs = docs[:limit]
        return docs, docs[-1][key]
    return docs, None
