"""Client-made ids make writes idempotent: a retry of the same request gets the stored record, a reused id a conflict.

A record keeps the ``fingerprint`` of the request that made it and the id of the agent that sent
it (``from_id``); a later request with the same id is a retry only if both match.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def fingerprint(defining: dict[str, Any]) -> str:
    """Hash the fields that define a record (as canonical JSON), to tell a retry from a reused id."""
    return hashlib.sha256(json.dumps(defining, sort_keys=True).encode()).hexdigest()


def is_retry(stored: Mapping[str, Any], sender_id: str, request_fingerprint: str) -> bool:
    """Tell whether a stored record is what this sender's request with this fingerprint would store."""
    return bool(stored["from_id"] == sender_id and stored["fingerprint"] == request_fingerprint)
