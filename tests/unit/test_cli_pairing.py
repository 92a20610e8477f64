"""The pairing exchange: what the two sides agree on, and what a wrong code or a meddling relay gets."""

from __future__ import annotations

import pytest

from nexysync_cli.errors import CliError
from nexysync_cli.pairing import WORDS, Accepting, Code, Offering, b64, parse_code

PUBLIC = "A" * 43


def exchange(offer_words: tuple[str, ...], typed: tuple[str, ...], *, public_key: str = PUBLIC, relayed: str = PUBLIC):
    """Run both sides; ``relayed`` is the public key the offering side sees (a relay may swap it)."""
    offering = Offering(offer_words)
    accepting = Accepting(Code("42", typed), offering.message, public_key, "laptop")
    answer = offering.answer("42", accepting.message, relayed, "laptop", accepting.exchange.confirmation("accept"))
    return offering, accepting, answer


def test_the_same_code_gives_both_sides_the_same_keys_and_verification() -> None:
    words = ("apple", "river", "stone")
    _, accepting, answer = exchange(words, words)
    assert answer is not None
    assert answer.verification == accepting.exchange.verification
    assert accepting.exchange.confirms("offer", answer.confirmation("offer"))
    sealed = answer.seal({"keys": ["k"], "device": {"id": "d"}})
    assert accepting.exchange.open(sealed) == {"keys": ["k"], "device": {"id": "d"}}
    tampered = sealed[:-1] + ("A" if sealed[-1] != "A" else "B")
    with pytest.raises(CliError, match="changed on the way"):
        accepting.exchange.open(tampered)


def test_a_wrong_code_fails_the_confirmation_and_nothing_opens() -> None:
    _, accepting, answer = exchange(("apple", "river", "stone"), ("apple", "river", "stove"))
    assert answer is None
    # Its own confirmation of the other side fails too: it never accepts a bundle.
    assert not accepting.exchange.confirms("offer", "x" * 43)


def test_a_relay_that_swaps_the_public_key_breaks_the_confirmation() -> None:
    words = ("apple", "river", "stone")
    assert exchange(words, words, relayed="B" * 43)[2] is None


def test_a_message_that_is_no_group_element_is_refused() -> None:
    offering = Offering(("apple", "river", "stone"))
    assert offering.answer("42", b"\x00" * 33, PUBLIC, "laptop", "c") is None
    with pytest.raises(CliError):
        Accepting(Code("42", ("apple", "river", "stone")), b"\x41" * 33, PUBLIC, "laptop")


def test_codes_are_read_as_typed_and_typos_are_caught_before_anything_is_sent() -> None:
    assert parse_code("  4821 Apple-RIVER  stone ") == Code("4821", ("apple", "river", "stone"))
    assert str(Code("4821", ("apple", "river", "stone"))) == "4821-apple-river-stone"
    with pytest.raises(CliError, match="'stonne' is not a pairing word"):
        parse_code("4821-apple-river-stonne")
    for bad in ("apple-river-stone", "0482-apple-river-stone", "4821-apple-river", "48211-a-b-c"):
        with pytest.raises(CliError, match="not a pairing code"):
            parse_code(bad)
    assert len(WORDS) == 2048 and len(set(WORDS)) == 2048  # 11 bits a word, 33 bits a code
    assert len(Offering().words) == 3 and b64(b"\xff") == "_w"
