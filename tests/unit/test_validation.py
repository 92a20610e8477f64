"""Request bodies checked against the real contract (nexysync_server.validation)."""

from __future__ import annotations

from typing import Any

import pytest
from message_bodies import envelope, message_create

from nexysync_generated import load_spec
from nexysync_server.errors import Problem
from nexysync_server.validation import SchemaValidator


@pytest.fixture(scope="module")
def validator() -> SchemaValidator:
    """A validator over the contract the server ships."""
    return SchemaValidator(load_spec())


def _problem(validator: SchemaValidator, schema: str, document: Any) -> Problem:
    with pytest.raises(Problem) as raised:
        validator.check(schema, document)
    problem = raised.value
    assert problem.status_code == 422
    assert problem.code == "VALIDATION_FAILED"
    assert problem.errors
    return problem


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"to": None, "broadcast": True},
        {"broadcast": False},
        {"priority": "urgent", "reply_to": "01J0000000000000000000000R", "metadata": envelope("metadata")},
    ],
    ids=["direct", "broadcast", "direct-broadcast-false", "all-fields"],
)
def test_valid_message_create_passes(validator: SchemaValidator, changes: dict[str, Any]) -> None:
    validator.check("MessageCreate", message_create(**changes))


def test_plaintext_topic_is_a_422_naming_topic(validator: SchemaValidator) -> None:
    problem = _problem(validator, "MessageCreate", message_create(topic="hello in clear"))

    assert [error["field"] for error in problem.errors or []] == ["topic"]
    assert "topic" in problem.description
    # The message tells what to send, not the contract's regular expression.
    assert "ciphertext made by the client" in (problem.errors or [{}])[0]["message"]
    assert "[0-9a-f]" not in (problem.errors or [{}])[0]["message"]


def test_extra_property_is_rejected(validator: SchemaValidator) -> None:
    problem = _problem(validator, "MessageCreate", message_create(sneaky="value"))

    assert any("sneaky" in error["message"] for error in problem.errors or [])


@pytest.mark.parametrize(
    "changes",
    [{"to": None}, {"broadcast": True}, {"to": None, "broadcast": False}],
    ids=["neither", "both", "broadcast-false-alone"],
)
def test_exactly_one_of_to_and_broadcast(validator: SchemaValidator, changes: dict[str, Any]) -> None:
    _problem(validator, "MessageCreate", message_create(**changes))


def test_unknown_schema_name_is_a_programming_error(validator: SchemaValidator) -> None:
    with pytest.raises(KeyError):
        validator.check("NoSuchSchema", {})
