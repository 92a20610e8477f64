"""The ``nexysync`` command: hooks start without the provisioning CLI, everything else goes to it.

AI tools run ``nexysync hook ...`` on every prompt and every stop, so a hook must start fast:
it loads only :mod:`nexysync_cli.hooks` (the standard library and :mod:`nexysync.keyfile`), never
the CLI and the rest of the SDK it imports.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nexysync``: ``hook ...`` here, any other command through the provisioning CLI."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["hook"] and not {"-h", "--help"} & set(args):
        from nexysync_cli.hooks import main as run_hook

        return run_hook(args[1:])
    from nexysync_cli.main import main as run_cli

    return run_cli(args)


if __name__ == "__main__":
    sys.exit(main())
