"""Query terms the embedded database answers through an index.

nx-27017 (neosqlite) turns a bare equality, ``{"project_id": p}``, into "equals ``p``, or is an
array that holds ``p``": SQLite cannot answer that from the field's index and reads every
document, so such a query slows as the collection grows (2 ms at 1,000 documents, 20 ms at
15,000). ``{"$eq": p}`` it turns into a plain comparison, which the index answers in the same time
at any size. For a field that is never an array, MongoDB matches both forms alike.

Other shapes it reads whole, measured: ``$in`` on any field but ``_id``, ``$or``, and a range on
``_id``. ``_id`` equality and a short ``_id`` ``$in`` stay flat; a range on an indexed field
other than ``_id`` stays flat when the terms before it in the index are ``$eq``. The hot queries
keep to these shapes; ``tests/e2e/test_query_plans.py`` asks SQLite for each one's plan.
"""

from __future__ import annotations

from typing import Any


def eq(value: Any) -> dict[str, Any]:
    """Match a scalar field equal to ``value`` through its index (see the module's docstring)."""
    return {"$eq": value}
