"""What every command gets: where it writes, the config directory, and the signed-in session."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nexysync import Client
from nexysync_cli.credentials import CredentialStore, OwnerSession, resolve_api_url
from nexysync_cli.errors import CliError
from nexysync_cli.files import config_dir
from nexysync_cli.keyfiles import ProjectKeyStore
from nexysync_cli.output import Output
from nexysync_cli.secret_input import read_secret
from nexysync_cli.terminal import strip_controls

__all__ = ["ENV_PASSWORD", "Context"]

#: Lets scripts give the password without a prompt and without putting it in the process list.
ENV_PASSWORD = "NEXYSYNC_PASSWORD"


@dataclass
class Context:
    """The environment of one command.

    Attributes:
        args: The parsed command line.
        output: Where results and progress go.
        directory: The CLI's config directory.
        client_factory: Builds SDK clients (replaceable in tests).
    """

    args: argparse.Namespace
    output: Output
    directory: Path = field(default_factory=config_dir)
    client_factory: Callable[..., Client] = Client
    _owner: OwnerSession | None = None

    @property
    def credentials(self) -> CredentialStore:
        """The saved sessions."""
        return CredentialStore(self.directory)

    @property
    def project_keys(self) -> ProjectKeyStore:
        """The project keys held on this machine."""
        return ProjectKeyStore(self.directory)

    @property
    def api_url(self) -> str:
        """The API this command talks to (``--api-url``, env, last sign-in, or the dev default)."""
        return resolve_api_url(getattr(self.args, "api_url", None), self.credentials)

    def owner(self) -> OwnerSession:
        """Return the signed-in human's session for :attr:`api_url`.

        Raises:
            CliError: nobody is signed in.
        """
        if self._owner is None:
            self._owner = OwnerSession.open(self.credentials, self.api_url, self.client_factory)
        return self._owner

    def password(self, *, confirm: bool = False) -> str:
        """Return the password: ``--password-file``, else ``$NEXYSYNC_PASSWORD``, else a prompt.

        Raises:
            CliError: no password given and no terminal to ask on.
        """
        source: str | None = getattr(self.args, "password_file", None)
        if source:
            # Kept as given: spaces at either end may be part of a password.
            return read_secret(source, "password", prompt="Password: ", strip=False)
        given = os.environ.get(ENV_PASSWORD)
        if given:
            return given
        if not sys.stdin.isatty():
            raise CliError(
                f"no password: set {ENV_PASSWORD} or pass --password-file FILE ('-' reads stdin)", code="NO_PASSWORD"
            )
        first = getpass.getpass("Password: ")
        if confirm and getpass.getpass("Password again: ") != first:
            raise CliError("the passwords differ", code="PASSWORD_MISMATCH")
        return first

    def confirm(self, question: str) -> bool:
        """Ask a yes/no question on the terminal; False when there is none to ask on."""
        if not sys.stdin.isatty():
            return False
        answer = input(f"{strip_controls(question)} [y/N] ")
        return answer.strip().lower() in {"y", "yes"}

    def close(self) -> None:
        """Release the session's connections."""
        if self._owner is not None:
            self._owner.close()
