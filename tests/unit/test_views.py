"""What the API shows of stored records (nexysync_server.views)."""

from __future__ import annotations

from nexysync_server.views import status_for


def test_status_for_each_party() -> None:
    message = {"recipients": ["bob", "carol", "dave"], "read_by": ["carol", "dave"], "acked_by": ["dave"]}

    assert status_for(message, "bob") == "unread"
    assert status_for(message, "carol") == "read"
    assert status_for(message, "dave") == "acked"
    assert status_for(message, "alice") == "sent"
