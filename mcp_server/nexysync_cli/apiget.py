"""One ``GET`` of the NexySync API with the standard library: for commands that must start fast.

The hooks (:mod:`.hooks`) and the git guard (:mod:`.guard`) run on every prompt or commit, so
they do not load the SDK's HTTP client; this is the request both make. Each words its own failure.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

TYPE_CHECKING = False
if TYPE_CHECKING:  # ``typing`` costs a hook run a few ms; only checkers need it
    from typing import Any

__all__ = ["get_json"]


def get_json(base_url: str, api_key: str, path: str, query: dict[str, str] | None, timeout_s: float) -> Any:
    """Return the JSON answer of ``GET {base_url}{path}?{query}`` made with the agent's key.

    Raises:
        urllib.error.HTTPError: the API answered with an error status.
        urllib.error.URLError, OSError: it could not be reached.
        ValueError: the answer is not JSON.
    """
    url = f"{base_url}{path}?{urllib.parse.urlencode(query)}" if query else f"{base_url}{path}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return json.loads(response.read())
