"""Unit tests: the ``nexysync`` CLI takes no secret on argv; it reads them from a prompt, env, stdin or file."""

from __future__ import annotations

import argparse
import base64
import io
from pathlib import Path
from types import SimpleNamespace

import pytest

from nexysync.crypto import new_key
from nexysync_cli.commands.init import _project_keys
from nexysync_cli.context import Context
from nexysync_cli.errors import CliError
from nexysync_cli.keyfiles import ProjectKeys, ProjectKeyStore, export_line
from nexysync_cli.main import build_parser, main
from nexysync_cli.output import Output
from nexysync_cli.secret_input import RefusedOnCommandLine, StdinOnly

pytestmark = pytest.mark.usefixtures("isolated")

PROJECT = "01KQ7Z" + "1" * 20
KEY = new_key()
#: Words that name a secret in an option's destination.
SECRET_WORDS = ("password", "enc_key", "secret", "token", "api_key", "line")


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI, require the usage-error exit (2) before anything is done, and return stderr."""
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("command", ["login", "register"])
@pytest.mark.parametrize("form", [["--password", "hunter2"], ["--password=hunter2"], ["--password"]])
def test_a_password_on_the_command_line_is_refused_with_what_to_use_instead(
    command: str, form: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    err = usage_error([command, "--email", "me@example.test", *form], capsys)
    assert "--password no longer takes a secret on the command line, where `ps` and the shell history" in err
    assert "set NEXYSYNC_PASSWORD, or pass --password-file FILE ('-' reads stdin)" in err


def test_an_encryption_key_on_the_command_line_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    key = base64.b64encode(KEY).decode()
    err = usage_error(["init", "--project", "demo", "--agent", "bob", "--enc-key", key], capsys)
    assert "--enc-key no longer takes a secret on the command line" in err and "--enc-key-file FILE" in err


def test_a_key_export_line_as_an_argument_is_refused_and_nothing_stored(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = usage_error(["keys", "import", export_line(ProjectKeys(PROJECT, [KEY]))], capsys)
    assert "the key export line is no longer taken as an argument, where `ps` and the shell history" in err
    assert "paste the line when asked" in err and "nexysync keys import < line.txt" in err and "--file FILE" in err
    assert ProjectKeyStore(isolated).load(PROJECT) is None


def walk(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """Return every action of a parser and of its sub-commands, recursively."""
    found: list[argparse.Action] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.extend(walk(sub))
        else:
            found.append(action)
    return found


def test_no_option_of_any_command_takes_a_secret_as_its_value() -> None:
    secret = [a for a in walk(build_parser()) if any(word in a.dest for word in SECRET_WORDS)]
    assert {a.dest for a in secret} >= {"password", "password_file", "enc_key", "enc_key_file", "line"}
    for action in secret:
        # A secret option either names a file (or '-') to read it from, or only refuses.
        assert action.dest.endswith("_file") or isinstance(action, RefusedOnCommandLine | StdinOnly), action.dest


def context(argv: list[str]) -> Context:
    return Context(args=build_parser().parse_args(argv), output=Output(json_mode=True, stdout=io.StringIO()))


def test_the_password_comes_from_a_file_stdin_or_the_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "password.txt"
    secret.write_text("  spaced pass  \nsecond line ignored\n")
    login = ["login", "--email", "me@example.test"]
    assert context([*login, "--password-file", str(secret)]).password() == "  spaced pass  "
    monkeypatch.setattr("sys.stdin", io.StringIO("from stdin\r\n"))
    assert context([*login, "--password-file", "-"]).password() == "from stdin"
    monkeypatch.setenv("NEXYSYNC_PASSWORD", "from env")
    assert context(login).password() == "from env"
    with pytest.raises(CliError, match="cannot read password from"):
        context([*login, "--password-file", str(tmp_path / "missing")]).password()
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(CliError, match="no password in"):
        context([*login, "--password-file", str(tmp_path / "empty")]).password()


def test_the_password_is_asked_unechoed_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    monkeypatch.setattr("getpass.getpass", lambda prompt: asked.append(prompt) or "typed")
    assert context(["register", "--email", "me@example.test"]).password(confirm=True) == "typed"
    assert asked == ["Password: ", "Password again: "]


def test_init_reads_its_own_project_key_from_a_file(isolated: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "project.key"
    key_file.write_text(base64.b64encode(KEY).decode() + "\n")
    ctx = context(["init", "--project", "demo", "--agent", "bob", "--enc-key-file", str(key_file)])
    ctx.directory = isolated
    owner = SimpleNamespace(api_url="http://api.test")
    project = SimpleNamespace(id=PROJECT, name="demo")
    keys, origin = _project_keys(ctx, owner, project, "bob", [])  # type: ignore[arg-type]
    assert (origin, keys.keys) == ("given", [KEY])
    key_file.write_text(base64.b64encode(new_key()).decode())
    with pytest.raises(CliError, match="--enc-key-file differs from the key this machine holds"):
        _project_keys(ctx, owner, project, "bob", [])  # type: ignore[arg-type]
