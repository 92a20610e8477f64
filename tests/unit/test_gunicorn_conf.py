"""The gunicorn settings behind ``nexysync-server serve`` and ``ops/gunicorn.conf.py``."""

from __future__ import annotations

import logging
import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nexysync_server import gunicorn_conf
from nexysync_server.gunicorn_conf import (
    RequestIdCapture,
    RequestIdFilter,
    bind_from_env,
    default_workers,
    workers_from_env,
)

OPS_CONF = Path(__file__).resolve().parents[2] / "ops" / "gunicorn.conf.py"


@pytest.mark.parametrize(("cpus", "expected"), [(1, 3), (2, 5), (3, 7), (64, 8)])
def test_default_workers_is_two_per_cpu_plus_one_capped_at_eight(cpus: int, expected: int) -> None:
    assert default_workers(cpus) == expected


def test_workers_and_bind_come_from_the_environment() -> None:
    assert workers_from_env({"NEXYSYNC_WORKERS": "3"}) == 3
    assert workers_from_env({}) == default_workers()
    assert bind_from_env({}) == ["0.0.0.0:8080"]
    assert bind_from_env({"NEXYSYNC_BIND": "127.0.0.1:9000, unix:/run/nexysync.sock"}) == [
        "127.0.0.1:9000",
        "unix:/run/nexysync.sock",
    ]


@pytest.mark.parametrize("value", ["many", "0", "-2"])
def test_a_bad_worker_count_names_the_variable(value: str) -> None:
    with pytest.raises(ValueError, match="NEXYSYNC_WORKERS"):
        workers_from_env({"NEXYSYNC_WORKERS": value})


def test_the_ops_file_gives_gunicorn_exactly_the_packaged_settings() -> None:
    ops = runpy.run_path(str(OPS_CONF))
    names = [
        "bind",
        "workers",
        "worker_class",
        "graceful_timeout",
        "timeout",
        "keepalive",
        "forwarded_allow_ips",
        "accesslog",
        "errorlog",
        "loglevel",
        "control_socket_disable",
        "post_worker_init",
    ]

    assert {name: ops[name] for name in names} == {name: getattr(gunicorn_conf, name) for name in names}
    assert ops["worker_class"] == "nexysync_server.serving.Worker"
    assert (ops["graceful_timeout"], ops["timeout"], ops["keepalive"]) == (30, 60, 75)


async def test_access_log_records_carry_the_response_request_id() -> None:
    """Uvicorn logs from inside send(); the record must see the id the app put on the response."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    handler.addFilter(RequestIdFilter())
    access = logging.getLogger("test.access")
    access.addHandler(handler)
    access.propagate = False
    access.setLevel(logging.INFO)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"X-Request-Id", b"req-42")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def server_send(message: Any) -> None:
        if message["type"] == "http.response.start":
            access.info('127.0.0.1:1 - "GET / HTTP/1.1" %d', message["status"])

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    try:
        await RequestIdCapture(app)({"type": "http", "headers": []}, receive, server_send)
    finally:
        access.removeHandler(handler)

    assert [record.request_id for record in records] == ["req-42"]  # type: ignore[attr-defined]


def test_a_server_raises_its_descriptor_limit_to_what_streams_need() -> None:
    # In a child, as a service starts: the soft limit at systemd's 1,024, the hard one higher.
    code = (
        "import resource\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))\n"
        "from nexysync_server import gunicorn_conf\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    soft, hard = (int(value) for value in done.stdout.split())
    assert soft == min(65_536, hard) if hard >= 0 else soft == 65_536
    assert soft > 1024


def test_the_shipped_units_allow_the_descriptors_streams_need() -> None:
    units = Path(__file__).resolve().parents[2] / "ops" / "systemd"
    for name in ("nexysync-api@.service", "nexysync-cdn.service", "haproxy.conf"):
        assert "LimitNOFILE=65536" in (units / name).read_text().splitlines(), name


@pytest.fixture(autouse=True, scope="module")
def _metrics_dir_of_the_import() -> Any:
    """Importing the config made a metrics directory and named it in the environment: undo both after."""
    yield
    if gunicorn_conf._metrics_dir_is_ours:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        gunicorn_conf.on_exit(None)


def test_the_config_leaves_prometheus_client_unimported_for_the_workers_to_load_in_multiprocess_mode() -> None:
    # prometheus-client picks its mode at import: imported in the master before the directory is
    # set, every forked worker would count only for itself and /metrics would show one worker.
    code = (
        "import sys, nexysync_server.gunicorn_conf, nexysync_server.serving; "
        "import os; assert os.environ['PROMETHEUS_MULTIPROC_DIR']; "
        "print('prometheus_client' in sys.modules)"
    )
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip() == "False"


def test_a_metrics_directory_the_operator_set_is_emptied_and_kept(tmp_path: Path) -> None:
    (tmp_path / "counter_123.db").write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("mine")
    environ = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    assert gunicorn_conf.prepare_metrics_dir(environ) == (str(tmp_path), False)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]
    made, ours = gunicorn_conf.prepare_metrics_dir({})
    assert ours and Path(made).is_dir() and not any(Path(made).iterdir())
    Path(made).rmdir()
