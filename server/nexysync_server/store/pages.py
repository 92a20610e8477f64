"""Cursor pagination shared by every list: ascending by a sortable key, cursor = last key."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pymongo.asynchronous.collection import AsyncCollection

_Doc = TypeVar("_Doc", bound=Mapping[str, Any])

#: Documents fetched per round trip of a budgeted page: what may be held beyond the budget.
_BUDGET_BATCH = 8


async def page(
    col: AsyncCollection[_Doc],
    query: dict[str, Any],
    key: str,
    limit: int,
    cursor: str | None,
    *,
    size: Callable[[_Doc], int] | None = None,
    budget: int = 0,
) -> tuple[list[_Doc], str | None]:
    """Return up to ``limit`` documents after ``cursor`` in ascending ``key`` order, and the next cursor.

    Nothing comes twice. Where keys only grow (ULIDs made by the server), a document stored
    while a client pages also appears after the pages already read, so nothing is skipped.
    ``query`` may already bound ``key`` (a prefix range); the cursor is added to those bounds.

    With ``size`` and ``budget``, a page also ends before the document that would take the
    documents' ``size`` past ``budget`` bytes (a page holds at least one), so a page of large
    documents is held in memory a few at a time and never whole.
    """
    if cursor is not None:
        bounds = query.get(key, {})
        query = {**query, key: {**bounds, "$gt": cursor}}
    found = col.find(query).sort(key, 1).limit(limit + 1)
    if size is not None and budget:
        found = found.batch_size(_BUDGET_BATCH)
    docs: list[_Doc] = []
    spent = 0
    more = False
    async for doc in found:
        if len(docs) == limit:
            more = True
            break
        if size is not None and budget:
            spent += size(doc)
            if docs and spent > budget:
                more = True
                break
        docs.append(doc)
    await found.close()
    return docs, (docs[-1][key] if more else None)
