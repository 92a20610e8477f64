"""Unit tests of what the ``nexysync`` CLI prints of other agents' text: no terminal control reaches the screen."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from nexysync import DecryptionError
from nexysync_cli.commands.messaging import _Tail
from nexysync_cli.context import Context
from nexysync_cli.main import build_parser
from nexysync_cli.output import Output
from nexysync_cli.terminal import escape_c1, strip_controls
from nexysync_generated.models import Message

pytestmark = pytest.mark.usefixtures("isolated")

#: What a hostile teammate might put in a payload: colours, a window title (OSC 0, BEL), a
#: hyperlink (OSC 8, ST), clear screen, cursor moves, a carriage return that overwrites the line,
#: backspaces, a device status query (answered into the input), a DCS string, and 8-bit C1 forms.
HOSTILE = (
    "\x1b[31mred\x1b[0m \x1b]0;pwned\x07title \x1b]8;;https://evil.test\x1b\\link\x1b]8;;\x1b\\ "
    "\x1b[2J\x1b[Hclear \x1b[6n\x1bPq#0;2;0;0;0\x1b\\dcs \rover\x08\x08 \x9b31mc1\x9d2;t\x9c \x1bcreset"
)
CLEAN = "red title link clear dcs over c1 reset"


def controls(text: str) -> list[str]:
    """Return the control characters in ``text`` other than newline and tab."""
    return [ch for ch in text if (ord(ch) < 0x20 and ch not in "\n\t") or 0x7F <= ord(ch) <= 0x9F]


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (HOSTILE, CLEAN),
        ("keep\ttabs\nand lines, héllo ✓", "keep\ttabs\nand lines, héllo ✓"),
        ("\x1b]2;never terminated title", ""),
        ("bell\x07 nul\x00 del\x7f esc\x1b", "bell nul del esc"),
    ],
)
def test_control_sequences_are_removed_whole_and_text_kept(raw: str, shown: str) -> None:
    assert strip_controls(raw) == shown


def test_json_output_escapes_c1_controls_and_stays_the_same_json() -> None:
    line = escape_c1(json.dumps({"p": "a\x9b31mb\x7f"}, ensure_ascii=False))
    assert not controls(line) and json.loads(line) == {"p": "a\x9b31mb\x7f"}


def hostile_message() -> Message:
    return Message.model_validate(
        {
            "id": "01JAAAAAAAAAAAAAAAAAAAAAAA",
            "project_id": "01JBBBBBBBBBBBBBBBBBBBBBBB",
            "from": "alice",
            "to": "bob",
            "broadcast": False,
            "type": "request",
            "priority": "normal",
            "reply_to": None,
            "topic": "deploy \x1b]0;topic title\x07now",
            "payload": HOSTILE + "\nsecond line",
            "metadata": None,
            "status": "unread",
            "pinned": False,
            "reactions": [],
            "created_at": datetime(2026, 1, 2, tzinfo=UTC),
            "expires_at": datetime(2026, 1, 9, tzinfo=UTC),
        }
    )


def tail_output(tmp_path: Path, *argv: str) -> tuple[str, str]:
    """Run one tail over a hostile message, then a hostile kv event; return stdout and stderr."""
    stdout, stderr = io.StringIO(), io.StringIO()
    args = build_parser().parse_args(["tail", "--events", *argv])
    ctx = Context(
        args=args,
        output=Output(json_mode=getattr(args, "json", False), stdout=stdout, stderr=stderr),
        directory=tmp_path,
    )
    message = hostile_message()

    async def fetch(mark_read: bool = True) -> Message:
        return message

    async def unreadable(mark_read: bool = True) -> Any:
        raise DecryptionError("bad \x1b[2J key", record="message/x", field="payload")

    tail = _Tail(ctx, tmp_path / "tail.json")
    when = datetime(2026, 1, 2, tzinfo=UTC)
    for event in (
        SimpleNamespace(type="new_message", seq=1, data={"id": message.id}, message=fetch),
        SimpleNamespace(type="new_message", seq=2, data={"id": "x\x1b]0;id\x07"}, message=unreadable),
        SimpleNamespace(type="kv_update", seq=3, data={"key": "k\x1b[2J", "updated_by": "eve\r"}, created_at=when),
    ):
        asyncio.run(tail.handle(event))
    return stdout.getvalue(), stderr.getvalue()


def test_tail_prints_other_agents_text_without_terminal_controls(tmp_path: Path) -> None:
    out, err = tail_output(tmp_path)
    assert not controls(out) and not controls(err), (out, err)
    # The carriage return cannot overwrite the line: the payload's lines are each indented.
    assert "    red title link clear dcs \n    over c1 reset\n    second line\n" in out
    assert "deploy now" in out and "key=k updated_by=eve" in out
    assert "message x does not decrypt" in err


def test_tail_json_lines_carry_the_text_escaped(tmp_path: Path) -> None:
    out, _ = tail_output(tmp_path, "--json")
    assert not controls(out)
    first = json.loads(out.splitlines()[0])
    assert first["message"]["payload"] == HOSTILE + "\nsecond line", "JSON keeps the exact text, escaped"


def test_tables_align_names_once_cleaned() -> None:
    output = Output(json_mode=False)
    text = output.table([["\x1b[31mred\x1b[0m", "x"], ["plain", "y"]], ["NAME", "V"])
    assert text.splitlines() == ["NAME   V", "red    x", "plain  y"]
