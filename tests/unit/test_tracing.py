"""Tracing is off unless configured, and a configuration it cannot honour stops the server with a clear error."""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path

import falcon.asgi
import pytest
from pymongo import monitoring

from nexysync_server import tracing
from nexysync_server.cli import main
from nexysync_server.settings import Settings

SECRET = "a-jwt-secret-long-enough-for-the-settings-check-0123456789"


def _app(settings: Settings) -> falcon.asgi.App:  # type: ignore[type-arg]
    return falcon.asgi.App()


def test_without_the_setting_the_app_is_not_wrapped_and_pymongo_is_not_listened_to() -> None:
    before = list(monitoring._LISTENERS.command_listeners)

    app = tracing.instrument(_app, Settings(), "nexysync-api")

    assert type(app) is falcon.asgi.App
    assert monitoring._LISTENERS.command_listeners == before


def test_an_unknown_exporter_is_refused() -> None:
    with pytest.raises(ValueError, match="NEXYSYNC_TRACING='zipkin' is not one of otlp, console"):
        Settings.from_env({"NEXYSYNC_TRACING": "zipkin"})


@pytest.fixture
def without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes the module unimportable, as if it were not installed.
    monkeypatch.setitem(sys.modules, "opentelemetry.instrumentation.asgi", None)


@pytest.mark.usefixtures("without_the_extra")
def test_tracing_without_the_extra_says_how_to_install_it() -> None:
    assert not tracing.installed()
    with pytest.raises(RuntimeError, match=r"pip install 'nexysync-server\[otel\]'"):
        tracing.instrument(_app, Settings(tracing="otlp"), "nexysync-api")


@pytest.mark.usefixtures("without_the_extra")
def test_serve_and_dev_refuse_to_start_with_tracing_but_without_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("NEXYSYNC_TRACING", "otlp")
    monkeypatch.setenv("NEXYSYNC_JWT_SECRET", SECRET)

    def exec_must_not_happen(*args: object) -> None:
        raise AssertionError("serve started gunicorn although its workers could not trace")

    monkeypatch.setattr(os, "execv", exec_must_not_happen)

    assert main(["serve"]) == 2
    # On a port of its own: a server someone runs on 8080 must not change what this test sees.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["dev", "--data-dir", str(tmp_path), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.count("NEXYSYNC_TRACING=otlp needs OpenTelemetry") == 2, err


@pytest.mark.parametrize("factory", ["api_app", "cdn_app"])
def test_the_worker_factories_stop_records_walking_the_stack(monkeypatch: pytest.MonkeyPatch, factory: str) -> None:
    # An access line per request paid for a stack walk that no format shows.
    from nexysync_server import serving

    monkeypatch.setattr(logging, "_srcfile", os.path.normcase(logging.addLevelName.__code__.co_filename))
    monkeypatch.setattr(serving.tracing, "instrument", lambda build, settings, service: service)
    monkeypatch.setenv("NEXYSYNC_JWT_SECRET", "x" * 40)
    assert getattr(serving, factory)() in {"nexysync-api", "nexysync-cdn"}
    assert logging._srcfile is None
