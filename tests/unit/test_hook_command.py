"""``nexysync hook``: what it does when it cannot do its work (it must never get in the AI tool's way)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from nexysync_cli.entry import main as entry_main
from nexysync_cli.hooks import main
from nexysync_server.store.embedded import free_port


def run(argv: list[str], stdin: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, io.StringIO(stdin), out, err)
    return code, out.getvalue(), err.getvalue()


def test_a_wrong_event_is_a_usage_error() -> None:
    code, out, err = run(["pre-tool-use"], "{}")
    assert (code, out) == (2, "") and "usage: nexysync hook user-prompt-submit|stop" in err


def test_no_key_file_and_garbage_input_print_nothing_and_exit_0(tmp_path: Path) -> None:
    code, out, err = run(["stop"], json.dumps({"cwd": str(tmp_path)}))
    assert (code, out) == (0, "") and "no .nexysync/key" in err
    code, out, _ = run(["user-prompt-submit"], "not json at all")
    assert (code, out) == (0, "")


def test_an_unreachable_api_prints_nothing_and_exits_0(tmp_path: Path) -> None:
    key = tmp_path / ".nexysync" / "key"
    key.parent.mkdir()
    key.write_text(
        json.dumps(
            {"api_key": "nsync_x_" + "0" * 40, "enc_key": "A" * 44, "api_url": f"http://127.0.0.1:{free_port()}"}
        )
    )
    key.chmod(0o600)
    for event in ("user-prompt-submit", "stop"):
        code, out, err = run([event], json.dumps({"cwd": str(tmp_path / "sub" / "dir")}))
        assert (code, out) == (0, "") and "did not answer" in err


def test_the_command_sends_hooks_past_the_cli_and_help_to_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert entry_main(["hook", "bogus"]) == 2
    with pytest.raises(SystemExit) as done:
        entry_main(["hook", "--help"])
    assert done.value.code == 0
    assert "user-prompt-submit" in capsys.readouterr().out


def test_a_key_file_others_may_read_is_refused_before_any_request(tmp_path: Path) -> None:
    # A key file checked out of a cloned repository (0644) could name a stranger's API, whose
    # text the hook would put into the AI's prompt: the hook refuses it, as the SDK does.
    key = tmp_path / ".nexysync" / "key"
    key.parent.mkdir()
    key.write_text(json.dumps({"api_key": "nsync_x_" + "0" * 40, "enc_key": "A" * 44, "api_url": "http://192.0.2.1"}))
    key.chmod(0o644)
    for event in ("user-prompt-submit", "stop"):
        code, out, err = run([event], json.dumps({"cwd": str(tmp_path)}))
        assert (code, out) == (0, "") and "has mode 0644" in err and "chmod 600" in err
