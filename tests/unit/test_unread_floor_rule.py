"""Where an agent's unread messages begin (``messages.raised_unread_floor``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from nexysync_server.ids import new_id, ulid_floor, ulid_time, utcnow
from nexysync_server.store.messages import raised_unread_floor


def sent_ago(seconds: float) -> Any:
    return {"sk": ulid_floor(utcnow() - timedelta(seconds=seconds))[:10] + new_id()[10:]}


def age(floor: str) -> float:
    return (utcnow() - ulid_time(floor)).total_seconds()


def test_with_nothing_unread_the_floor_is_the_settled_horizon() -> None:
    floor = raised_unread_floor(None, None)
    assert floor is not None and 59 <= age(floor) <= 61


def test_an_old_unread_message_holds_the_floor_at_it() -> None:
    old = sent_ago(3600)
    assert raised_unread_floor(None, old) == old["sk"]


def test_a_recent_unread_message_does_not_pull_the_floor_past_the_horizon() -> None:
    floor = raised_unread_floor(None, sent_ago(5))
    assert floor is not None and 59 <= age(floor) <= 61


def test_the_floor_never_drops_and_small_moves_are_not_written() -> None:
    current = ulid_floor(utcnow() - timedelta(seconds=90))
    assert raised_unread_floor(current, sent_ago(3600)) is None  # lower: never
    assert raised_unread_floor(current, None) is None  # 30 s higher: not worth a write
    much_older = ulid_floor(utcnow() - timedelta(minutes=10))
    assert raised_unread_floor(much_older, None) is not None
