"""``nexysync-server cdn``: refuses to run without its secret and volume, and runs the CDN factory under gunicorn."""

from __future__ import annotations

import argparse
import os

import pytest

from nexysync_server.cli import CDN_APP_FACTORY, gunicorn_argv, main


@pytest.fixture
def no_exec(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record what would be exec'd instead of becoming gunicorn."""
    calls: list[list[str]] = []

    def fake_execv(path: str, argv: list[str]) -> None:
        calls.append(argv)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execv", fake_execv)
    for name in list(os.environ):
        if name.startswith("NEXYSYNC_"):
            monkeypatch.delenv(name)
    return calls


def test_cdn_refuses_to_start_without_a_secret(no_exec: list[list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cdn"]) == 2
    assert "NEXYSYNC_CDN_SECRET is empty" in capsys.readouterr().err
    assert no_exec == []


def test_cdn_refuses_to_start_without_a_files_dir(
    no_exec: list[list[str]], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NEXYSYNC_CDN_SECRET", "s" * 40)
    assert main(["cdn"]) == 2
    assert "NEXYSYNC_FILES_DIR is empty" in capsys.readouterr().err
    assert no_exec == []


def test_cdn_becomes_gunicorn_serving_the_cdn_factory(
    no_exec: list[list[str]], monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("NEXYSYNC_CDN_SECRET", "s" * 40)
    monkeypatch.setenv("NEXYSYNC_FILES_DIR", str(tmp_path))
    with pytest.raises(SystemExit):
        main(["cdn", "--bind", "127.0.0.1:9001", "--workers", "2"])
    (argv,) = no_exec
    assert argv[-1] == CDN_APP_FACTORY == "nexysync_server.serving:cdn_app()"
    assert argv[argv.index("--bind") + 1] == "127.0.0.1:9001" and argv[argv.index("--workers") + 1] == "2"


def test_the_api_factory_stays_the_default() -> None:
    argv = gunicorn_argv(argparse.Namespace(bind=None, workers=None), "python:x")
    assert argv[-1] == "nexysync_server.serving:api_app()"
