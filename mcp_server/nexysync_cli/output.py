"""Write results for people (progress lines, tables) or for scripts (``--json``).

Everything goes through :class:`Output`, which is also where other agents' text is made safe for a
terminal (see :mod:`nexysync_cli.terminal`): a payload can never carry an escape sequence to
the screen, whichever command prints it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from pydantic import BaseModel

from nexysync_cli.errors import Failure
from nexysync_cli.terminal import escape_c1, strip_controls

__all__ = ["Output", "to_json"]


def _json_line(data: Any) -> str:
    """Return one JSON document on one line, with nothing a terminal would act on."""
    return escape_c1(json.dumps(to_json(data), ensure_ascii=False))


def to_json(value: Any) -> Any:
    """Return ``value`` as plain JSON data (models dumped by their wire names)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, dict):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    return value


class Output:
    """Where a command reports: the result on stdout, progress and errors on stderr.

    In JSON mode the result is one JSON document on stdout (or one per line for streams) and
    progress lines are silent, so a script can parse stdout as it is.

    Args:
        json_mode: Whether ``--json`` was given.
        stdout: The stream for results.
        stderr: The stream for progress and errors.
    """

    def __init__(self, *, json_mode: bool, stdout: TextIO | None = None, stderr: TextIO | None = None) -> None:
        self.json_mode = json_mode
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr

    def progress(self, text: str) -> None:
        """Tell a person what is happening (nothing in JSON mode)."""
        if not self.json_mode:
            print(strip_controls(text), file=self.stderr, flush=True)

    def warn(self, text: str) -> None:
        """Warn about something worth knowing even when it succeeded (also in JSON mode, on stderr)."""
        print(f"warning: {strip_controls(text)}", file=self.stderr, flush=True)

    def result(self, data: Any, text: str | None = None) -> None:
        """Give the command's result: ``data`` as JSON, or ``text`` for a person."""
        if self.json_mode:
            print(_json_line(data), file=self.stdout, flush=True)
        elif text is not None:
            print(strip_controls(text), file=self.stdout, flush=True)

    def table(self, rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
        """Return rows as left-aligned columns under a header (for the ``text`` of :meth:`result`)."""
        # Cleaned before measuring, so an escape sequence in a name cannot skew the columns.
        rows = [[strip_controls(cell) for cell in row] for row in rows]
        widths = [len(name) for name in header]
        for row in rows:
            widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
        lines = [
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
            for line in [header, *rows]
        ]
        return "\n".join(lines)

    def failure(self, command: str, failure: Failure) -> None:
        """Report a failed command as one line on stderr (a JSON object in JSON mode)."""
        if self.json_mode:
            error: dict[str, str | int] = {"message": failure.message, "code": failure.code}
            if failure.status is not None:
                error["status"] = failure.status
            if failure.request_id:
                error["request_id"] = failure.request_id
            print(_json_line({"error": error}), file=self.stderr, flush=True)
            return
        suffix = f" (request id {failure.request_id})" if failure.request_id else ""
        print(strip_controls(f"nexysync {command}: {failure.message}{suffix}"), file=self.stderr, flush=True)
