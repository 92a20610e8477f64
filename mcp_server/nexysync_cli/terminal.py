"""Make text from other agents safe to print on a terminal.

Message payloads, topics, names and roles come from other agents (or whoever holds their keys).
Printed raw, an escape sequence among them could retitle the window, rewrite what is on screen,
hide lines, plant hyperlinks (OSC 8) or, on some terminals, answer back into the input (a device
status query, or the old title report). The CLI therefore removes every terminal control sequence
and control character from what it prints for a person, keeping only newline and tab, and its
``--json`` output escapes the C1 controls that JSON would otherwise leave raw.
"""

from __future__ import annotations

import re

__all__ = ["escape_c1", "strip_controls"]

# Whole sequences first, so their parameters do not remain as visible junk:
# - CSI (ESC [ or 8-bit 0x9B): parameters, intermediates, one final byte;
# - strings (OSC, DCS, SOS, PM, APC: ESC ] P X ^ _, or 0x9D 0x90 0x98 0x9E 0x9F) up to their
#   terminator (BEL, ESC \\ or ST 0x9C), or to the end of the text when it never comes;
# - any other escape sequence: ESC, intermediates, one final byte.
_SEQUENCE_RE = re.compile(
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c|\Z)"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?",
    re.DOTALL,
)
# What is left: C0 controls but tab and newline (carriage return, backspace and form feed
# included, since they too rewrite what is shown), DEL, and the C1 controls.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_C1_RE = re.compile(r"[\x7f-\x9f]")


def strip_controls(text: str) -> str:
    """Return ``text`` without terminal control sequences or control characters, except newline and tab."""
    return _CONTROL_RE.sub("", _SEQUENCE_RE.sub("", text))


def escape_c1(json_text: str) -> str:
    r"""Return JSON text with DEL and the C1 controls written as ``\u`` escapes.

    ``json.dumps(..., ensure_ascii=False)`` escapes C0 controls but leaves U+007F to U+009F raw,
    and some terminals act on U+009B (CSI) and U+009D (OSC). The escaped form is the same JSON.
    """
    return _C1_RE.sub(lambda match: f"\\u{ord(match.group()):04x}", json_text)
