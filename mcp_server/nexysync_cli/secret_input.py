"""Secrets the CLI is given: from a prompt, an env var, stdin or a file, never from the command line.

Anything on a command line is visible to every user of the machine (``ps``, ``/proc/<pid>/cmdline``)
and is kept in the shell's history. So the options that once took a secret (``--password``,
``--enc-key``, the line of ``keys import``) are still recognised, but only to fail with a usage
error that says what to use instead; a script that relied on them stops instead of silently
prompting or going on without the secret.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nexysync_cli.errors import CliError

__all__ = ["STDIN", "RefusedOnCommandLine", "StdinOnly", "read_secret"]

#: The file name that means "read it from stdin" (or ask, when stdin is a terminal).
STDIN = "-"
_WHY = "where `ps` and the shell history would keep it"


class RefusedOnCommandLine(argparse.Action):
    """An option that used to take a secret: giving it is a usage error naming what to use instead.

    Args:
        option_strings: The option's names.
        dest: Where argparse would store it (never stored).
        instead: What the message tells the user to do instead.
        **kwargs: The rest of argparse's action arguments.
    """

    def __init__(self, option_strings: Sequence[str], dest: str, *, instead: str, **kwargs: Any) -> None:
        kwargs.setdefault("help", argparse.SUPPRESS)
        super().__init__(option_strings, dest, nargs="?", **kwargs)
        self.instead = instead

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        """Stop with the usage error (exit code 2), before anything is done."""
        parser.error(f"{option_string} no longer takes a secret on the command line, {_WHY}: {self.instead}")


class StdinOnly(argparse.Action):
    """A positional that once took a secret and now accepts only ``-`` (read it from stdin).

    Args:
        option_strings: Empty (a positional).
        dest: Where the ``-`` (or None) is stored.
        what: What the secret is, for the message ("the key export line").
        instead: What the message tells the user to do instead of passing the secret.
        **kwargs: The rest of argparse's action arguments.
    """

    def __init__(self, option_strings: Sequence[str], dest: str, *, what: str, instead: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.what = what
        self.instead = instead

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        """Store ``-`` or nothing; stop with a usage error (exit code 2) for anything else."""
        if values not in (None, STDIN):
            parser.error(f"{self.what} is no longer taken as an argument, {_WHY}: {self.instead}")
        setattr(namespace, self.dest, values)


def read_secret(source: str, what: str, *, prompt: str, strip: bool = True) -> str:
    """Return a secret read from a file, or from stdin when ``source`` is ``-`` (asked for on a terminal).

    Only the first line counts, without its line ending, so ``printf '%s\\n' ... >file`` and a
    pasted line both work.

    Args:
        source: A file path, or ``-``.
        what: What the secret is, for the errors ("password").
        prompt: What a terminal is asked (the answer is not echoed).
        strip: Whether surrounding whitespace is removed too (not for passwords, where it may count).

    Raises:
        CliError: the file cannot be read, or it (or stdin) holds nothing.
    """
    if source == STDIN:
        # Not echoed, and so kept out of the terminal's scrollback too.
        text = getpass.getpass(prompt) if sys.stdin.isatty() else sys.stdin.readline()
        where = "stdin"
    else:
        path = Path(source).expanduser()
        try:
            with path.open(encoding="utf-8") as handle:
                text = handle.readline()
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read {what} from {path}: {exc}", code="SECRET_UNREADABLE") from exc
        where = str(path)
    text = text.removesuffix("\n").removesuffix("\r")
    if strip:
        text = text.strip()
    if not text:
        raise CliError(f"no {what} in {where}", code="NO_SECRET")
    return text
