"""``nexysync-server``: argument handling, the dev JWT secret and ``serve``'s refusal to run unsafe."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nexysync_server.cli import (
    APP_FACTORY,
    PACKAGED_GUNICORN_CONF,
    CliError,
    gunicorn_argv,
    gunicorn_config_location,
    load_or_create_secret,
    main,
)


def server_command() -> str:
    """Return the ``nexysync-server`` console script installed beside this interpreter."""
    return str(Path(sys.executable).with_name("nexysync-server"))


def test_serve_refuses_to_start_without_a_jwt_secret() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("NEXYSYNC_")}
    env["NEXYSYNC_JWT_SECRET"] = ""

    result = subprocess.run([server_command(), "serve"], env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == 2
    assert "NEXYSYNC_JWT_SECRET is empty" in result.stderr


def test_a_malformed_setting_stops_either_command_with_exit_code_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("NEXYSYNC_HEARTBEAT_S", "soon")
    monkeypatch.setenv("NEXYSYNC_JWT_SECRET", "x")

    def exec_must_not_happen(*args: object) -> None:
        raise AssertionError("serve started gunicorn despite a malformed setting")

    # Should the check ever regress, fail here instead of turning the test run into gunicorn.
    monkeypatch.setattr(os, "execv", exec_must_not_happen)

    assert main(["serve"]) == 2
    assert main(["dev", "--data-dir", str(tmp_path)]) == 2
    assert "NEXYSYNC_HEARTBEAT_S='soon'" in capsys.readouterr().err


def test_gunicorn_gets_the_packaged_config_the_factory_and_passed_flags() -> None:
    args = argparse.Namespace(bind=["127.0.0.1:9000", "unix:/tmp/n.sock"], workers=3)

    argv = gunicorn_argv(args, gunicorn_config_location({}))

    assert argv[:5] == [sys.executable, "-m", "gunicorn", "-c", PACKAGED_GUNICORN_CONF]
    assert argv[5:] == ["--bind", "127.0.0.1:9000", "--bind", "unix:/tmp/n.sock", "--workers", "3", APP_FACTORY]
    assert APP_FACTORY == "nexysync_server.serving:api_app()"


def test_a_config_file_named_in_the_environment_replaces_the_packaged_one(tmp_path: Path) -> None:
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text("workers = 1\n")

    assert gunicorn_config_location({"NEXYSYNC_GUNICORN_CONF": str(conf)}) == str(conf)
    with pytest.raises(CliError, match="is not a file"):
        gunicorn_config_location({"NEXYSYNC_GUNICORN_CONF": str(tmp_path / "missing.py")})


def test_the_dev_secret_is_made_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "jwt_secret"

    first = load_or_create_secret(path)

    assert len(first) >= 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_secret(path) == first


def test_an_empty_secret_file_is_an_error_not_a_weak_secret(tmp_path: Path) -> None:
    path = tmp_path / "jwt_secret"
    path.write_text("\n")

    with pytest.raises(CliError, match="is empty"):
        load_or_create_secret(path)
