"""The message store's pure logic: the body fingerprint that tells a retry from a conflict."""

from __future__ import annotations

from message_bodies import envelope, message_create

from nexysync_server.store.messages import body_fingerprint


def test_body_fingerprint_is_stable_and_sensitive_to_content() -> None:
    body = message_create()

    assert body_fingerprint(body) == body_fingerprint(dict(reversed(list(body.items()))))
    assert body_fingerprint(body) == body_fingerprint({**body, "priority": "normal"})
    assert body_fingerprint(body) == body_fingerprint({**body, "broadcast": False})
    assert body_fingerprint(body) != body_fingerprint({**body, "payload": envelope("payload", "y")})
    assert body_fingerprint(body) != body_fingerprint({**body, "priority": "urgent"})
    assert body_fingerprint(body) != body_fingerprint({**body, "to": "carol"})
    assert body_fingerprint(body) != body_fingerprint({**body, "metadata": envelope("metadata")})
