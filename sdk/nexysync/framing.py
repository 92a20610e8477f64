"""Show text other agents wrote to an AI without letting it pass for anything else.

Everything an agent writes (a topic, a payload, metadata, a file name, a reference title) reaches
another agent's AI inside a frame the receiving side writes: a hook's context, a Claude Code
``<channel>`` event, a tool's answer. Written as is, such text could end the frame early
(``</channel>``), open a tag the AI trusts (``<system-reminder>``), start a line that looks like
the frame's own (``- id=… from=owner``), hide itself with bidirectional overrides or control
characters, or flood the AI's context. This module turns it into text that cannot:

- :func:`clean` makes text inert: control and invisible format characters (C0 but newline and
  tab, C1, bidirectional overrides and isolates, zero-width characters, line and paragraph
  separators) become ``\ufffd``, and a ``<`` that would start a tag (``</x``, ``<x``, ``<!``,
  ``<?``) becomes ``\u2039`` (a single angle quote). Plain comparisons such as ``a < b`` are left alone.
- :func:`one_line` also folds line breaks into ``⏎`` and cuts to a number of characters: a
  topic, a name, a title is always one line of the frame's, never a line of its own.
- :func:`quoted` puts every line behind a prefix (``"    │ "``), so no line of it starts where the
  frame's lines start, and cuts to a number of UTF-8 bytes, saying how much was left out.

Only the standard library is used: the hooks import this on every prompt.
"""

from __future__ import annotations

import re

__all__ = ["QUOTE", "clean", "one_line", "quoted", "utf8_len", "word"]

#: The prefix of every line of quoted agent text.
QUOTE = "    │ "
_REPLACEMENT = "\ufffd"
_INVISIBLE = (
    [c for c in range(0x20) if c not in (0x09, 0x0A)]
    + list(range(0x7F, 0xA0))
    + [0x061C, 0x180E, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2028, 0x2029, 0x2060, 0xFEFF]
    + list(range(0x202A, 0x202F))
    + list(range(0x2066, 0x206A))
)
_INERT = str.maketrans(dict.fromkeys(_INVISIBLE, _REPLACEMENT))
_ONE_LINE = str.maketrans({"\n": " ⏎ ", "\t": " "})
#: A ``<`` that would start a tag, a closing tag, a comment or a processing instruction.
_TAG_START = re.compile(r"<(?=[/!?A-Za-z])")


def clean(text: str) -> str:
    """Return ``text`` with control and invisible characters replaced and tag openings defused."""
    return _TAG_START.sub("\u2039", text.translate(_INERT))


def utf8_len(text: str) -> int:
    """Return the size of ``text`` in UTF-8 bytes."""
    return len(text.encode("utf-8", "replace"))


def one_line(text: str, max_chars: int = 200) -> str:
    """Return ``text`` as one inert line of at most ``max_chars`` characters (plus a note when cut).

    Only the head is looked at, so a 280 KB topic costs no more than a short one.
    """
    head = clean(text[: max_chars + 1]).translate(_ONE_LINE)
    if len(text) <= max_chars:
        return head
    return f"{head[:max_chars]}… [{len(text):,} characters in all]"


def word(value: object) -> str:
    """Return a routing field (an id, a slug, a type) as one inert line of at most 64 characters.

    They come from the API, which checks them, but whoever shows them need not trust that.
    """
    return one_line(str(value), 64)


def quoted(text: str, max_bytes: int, *, prefix: str = QUOTE) -> tuple[str, bool]:
    """Return ``text`` inert, each line behind ``prefix``, within ``max_bytes``; and whether it was cut.

    The prefixes count against ``max_bytes``; a cut ends on a whole character and is said on a
    last line of its own (outside the quote): ``[cut: N of M characters shown]``.
    """
    budget = max(0, max_bytes)
    # Never more characters than bytes: look at no more of a huge text than can be shown.
    lines = clean(text[: budget + 1]).split("\n")
    shown: list[str] = []
    used = 0
    cut = len(text) > budget
    shown_chars = 0
    for line in lines:
        rendered = prefix + line
        size = utf8_len(rendered) + 1
        if used + size > budget:
            room = budget - used - utf8_len(prefix) - 1
            if room > 0:
                part = line.encode("utf-8")[:room].decode("utf-8", "ignore")
                shown.append(prefix + part)
                shown_chars += len(part)
            cut = True
            break
        shown.append(rendered)
        used += size
        shown_chars += len(line) + 1
    if not shown:
        shown.append(prefix)
    if cut:
        shown.append(f"[cut: {min(shown_chars, len(text)):,} of {len(text):,} characters shown]")
    return "\n".join(shown), cut
