"""nexysync.framing: an agent's words, shown to another agent's AI, stay inert, in their frame and bounded."""

from __future__ import annotations

import pytest

from hostile_text import CORPUS, FAKE_FRAME, FORBIDDEN_CHARACTERS, FORBIDDEN_TAGS
from nexysync.framing import QUOTE, clean, one_line, quoted, utf8_len


def assert_inert(text: str) -> None:
    assert not FORBIDDEN_CHARACTERS & set(text), [c for c in text if c in FORBIDDEN_CHARACTERS]
    for tag in FORBIDDEN_TAGS:
        assert tag not in text, tag


@pytest.mark.parametrize("text", CORPUS)
def test_every_hostile_text_is_made_inert(text: str) -> None:
    assert_inert(clean(text))
    assert_inert(one_line(text))
    assert_inert(quoted(text, 4096)[0])


@pytest.mark.parametrize("text", CORPUS)
def test_one_line_is_one_line(text: str) -> None:
    line = one_line(text)
    assert "\n" not in line and "\r" not in line
    assert not line.startswith("- ") or text.startswith("- ")


def test_a_huge_topic_is_one_short_line_saying_its_size() -> None:
    topic = "t" * 280_000 + "\n" + FAKE_FRAME
    assert one_line(topic, 200) == "t" * 200 + f"… [{len(topic):,} characters in all]"


@pytest.mark.parametrize("text", CORPUS)
def test_every_quoted_line_starts_with_the_quote(text: str) -> None:
    body, cut = quoted(text, 4096)
    assert not cut
    assert all(line.startswith(QUOTE) for line in body.splitlines())
    assert FAKE_FRAME not in [line.lstrip() for line in body.splitlines() if not line.startswith(QUOTE)]


def test_a_quote_is_cut_to_its_bytes_on_a_whole_character_and_says_so() -> None:
    text = "é" * 10_000  # two bytes each
    body, cut = quoted(text, 1000)
    quote, note = body.rsplit("\n", 1)
    assert cut and utf8_len(quote) <= 1000
    assert quote.startswith(QUOTE) and set(quote.removeprefix(QUOTE)) == {"é"}
    assert note == f"[cut: {len(quote.removeprefix(QUOTE)):,} of 10,000 characters shown]"


def test_plain_comparisons_and_text_are_left_alone() -> None:
    assert clean("if a < b and b > c: return a<=b") == "if a < b and b > c: return a<=b"
    assert one_line("Schema v2: add users.email") == "Schema v2: add users.email"
