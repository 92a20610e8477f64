"""The ``nexysync-server`` command: ``dev`` for one machine, ``serve`` and ``cdn`` for production."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import dataclasses
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType

import uvicorn

from . import logs, tracing
from .cdn.signing import redact_access_logs
from .connections import guarded_protocol
from .serving import DrainingServer
from .settings import Settings
from .store.embedded import EmbeddedMongo, EmbeddedMongoError

__all__ = ["main"]

#: Exit code for a command that refuses to start because it is misconfigured.
EXIT_USAGE = 2
#: Gunicorn settings used by ``serve`` unless ``NEXYSYNC_GUNICORN_CONF`` names a file.
PACKAGED_GUNICORN_CONF = "python:nexysync_server.gunicorn_conf"
#: The gunicorn app spec: call the factory once per worker.
APP_FACTORY = "nexysync_server.serving:api_app()"
#: The gunicorn app spec of ``cdn``.
CDN_APP_FACTORY = "nexysync_server.serving:cdn_app()"
JWT_SECRET_FILE = "jwt_secret"
CDN_SECRET_FILE = "cdn_secret"
FILES_DIR = "files"
# How long the API waits for the CDN beside it to listen before it gives up.
_CDN_START_DEADLINE_S = 30.0
# Two SIGINTs closer than this come from one Ctrl-C delivered twice, not from a user pressing it again.
_SAME_KEYPRESS_S = 1.0
# How often `dev` checks that its database still runs, and how it backs off restarting one that
# keeps dying: doubling from the first delay up to the last; a run this long resets the backoff.
_DATABASE_CHECK_S = 0.2
_RESTART_FIRST_S = 0.5
_RESTART_MAX_S = 10.0
_RESTART_STABLE_S = 30.0


class CliError(Exception):
    """A problem the user can fix; reported as one line on stderr with exit code 2."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nexysync-server``.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` when ``None``.

    Returns:
        The process exit code.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except CliError as exc:
        print(f"nexysync-server {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return code


def _parser() -> argparse.ArgumentParser:
    """Build the argument parser."""
    parser = argparse.ArgumentParser(
        prog="nexysync-server",
        description=(
            "Run the NexySync API: `dev` on one machine with an embedded database and the CDN; "
            "`serve` (the API) and `cdn` (the file CDN) in production."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = commands.add_parser(
        "dev",
        help="run the API on an embedded database (nx-27017), for development",
        description=(
            "Start an embedded MongoDB-compatible database (nx-27017) with its files in the data "
            "directory, then the API on HOST:PORT and the file CDN on HOST:CDN_PORT (files are kept "
            "in <data-dir>/files). Ctrl-C or SIGTERM stops them all; data is kept."
        ),
    )
    dev.add_argument("--host", default="127.0.0.1", help="interface for the API (default: %(default)s)")
    dev.add_argument(
        "--port", type=int, default=8080, help="port for the API; 0 picks a free one (default: %(default)s)"
    )
    dev.add_argument(
        "--cdn-port",
        type=int,
        default=0,
        help="port for the file CDN; 0 picks a free one (default: %(default)s); the API hands out its URLs",
    )
    dev.add_argument(
        "--data-dir",
        default=".nexysync-data",
        help="where the database, its log, the files and the secrets live (default: %(default)s)",
    )
    dev.set_defaults(handler=_dev)

    serve = commands.add_parser(
        "serve",
        help="run the API under gunicorn against NEXYSYNC_MONGODB_URI, for production",
        description=(
            "Exec gunicorn with uvicorn workers. Settings come from NEXYSYNC_* variables; "
            "NEXYSYNC_JWT_SECRET must be set. The gunicorn config is NEXYSYNC_GUNICORN_CONF if set, "
            "else the one packaged with the server (the same as ops/gunicorn.conf.py)."
        ),
    )
    _add_gunicorn_arguments(serve)
    serve.set_defaults(handler=_serve)

    cdn = commands.add_parser(
        "cdn",
        help="run the file CDN under gunicorn, for production",
        description=(
            "Exec gunicorn with uvicorn workers serving the CDN app: signed uploads and downloads of "
            "file content stored in NEXYSYNC_FILES_DIR. NEXYSYNC_CDN_SECRET (the same as the API's) "
            "and NEXYSYNC_FILES_DIR must be set; bind it where NEXYSYNC_CDN_URL points."
        ),
    )
    _add_gunicorn_arguments(cdn)
    cdn.set_defaults(handler=_cdn)
    return parser


def _add_gunicorn_arguments(command: argparse.ArgumentParser) -> None:
    """Add the options ``serve`` and ``cdn`` pass to gunicorn."""
    command.add_argument(
        "--bind",
        action="append",
        metavar="ADDRESS",
        help="address to listen on, HOST:PORT or unix:PATH; repeatable (overrides NEXYSYNC_BIND)",
    )
    command.add_argument("--workers", type=int, help="number of worker processes (overrides NEXYSYNC_WORKERS)")


def _settings_from_env() -> Settings:
    """Read settings, turning a malformed variable into a user-facing error."""
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    if settings.tracing and not tracing.installed():
        raise CliError(tracing.missing_extra(settings.tracing))
    return settings


# --- dev ---------------------------------------------------------------------------------------


def load_or_create_secret(path: Path) -> str:
    """Return the JWT secret kept in ``path``, making it (mode 0600) on first use.

    Keeping the secret makes access tokens survive a restart of the dev server.

    Args:
        path: File holding the secret.

    Returns:
        The secret.

    Raises:
        CliError: the file exists but is empty.
    """
    try:
        # O_EXCL: two dev servers started at once cannot both write a different secret.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_text(encoding="utf-8").strip()
        if not secret:
            raise CliError(f"{path} is empty; delete it and a new secret will be made") from None
        return secret
    secret = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secret + "\n")
    return secret


def _display_host(host: str) -> str:
    """Return a host for URLs a person can open: loopback for a wildcard address, IPv6 in brackets."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _banner(api_host: str, api_port: int, mongo: EmbeddedMongo, cdn_url: str, files_dir: str) -> str:
    """Describe where everything runs."""
    base = f"http://{_display_host(api_host)}:{api_port}"
    return (
        "NexySync dev server is running.\n"
        f"  API:      {base}/v1\n"
        f"  Spec:     {base}/v1/openapi.yaml\n"
        f"  Console:  {base}/console/\n"
        f"  CDN:      {cdn_url}\n"
        f"  Files:    {files_dir}\n"
        f"  Database: {mongo.uri}\n"
        f"  Data dir: {mongo.data_dir}\n"
        "Press Ctrl-C to stop."
    )


def _bind(host: str, port: int) -> socket.socket:
    """Bind a listening address now, so its URL is known before the servers start.

    Raises:
        CliError: the address is taken or not ours.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CliError(f"the CDN cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.set_inheritable(True)
    return sock


def _port_hint(host: str, port: int) -> str:
    """Say how to run on another port, and how to point the ``nexysync`` CLI at it."""
    other = port + 10 if 0 < port < 65_000 else 8090
    url = f"http://{_display_host(host)}:{other}"
    return (
        f"start on another port (`nexysync-server dev --port {other}`) and point the CLI at it "
        f"(`--api-url {url}`, or `export NEXYSYNC_API_URL={url}`)"
    )


def _check_api_port(host: str, port: int) -> None:
    """Refuse a taken API port before the database starts, with what to do about it.

    Raises:
        CliError: the port is taken (uvicorn would only say "address already in use").
    """
    if port == 0:
        return
    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind((host, port))
    except OSError as exc:
        raise CliError(
            f"the API cannot listen on {host}:{port} ({exc.strerror}; another server there?): {_port_hint(host, port)}"
        ) from exc
    finally:
        probe.close()


def _dev(args: argparse.Namespace) -> int:
    """Run ``nexysync-server dev``."""
    logs.skip_caller_lookup()
    _check_api_port(args.host, args.port)
    settings = _settings_from_env()
    data_dir = Path(args.data_dir).expanduser().resolve()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    jwt_secret = settings.jwt_secret or load_or_create_secret(data_dir / JWT_SECRET_FILE)
    cdn_secret = settings.cdn_secret or load_or_create_secret(data_dir / CDN_SECRET_FILE)
    files_dir = settings.files_dir or str(data_dir / FILES_DIR)
    cdn_sock = _bind(args.host, args.cdn_port)
    # The API signs URLs on the CDN's public address: the one given, else where it listens here.
    cdn_url = os.environ.get("NEXYSYNC_CDN_URL") or f"http://{_display_host(args.host)}:{cdn_sock.getsockname()[1]}"
    # Nothing stands in front of dev unless said: without the setting it believes no proxy, or any
    # local process could pick the client address its limits and audit entries count.
    forwarded = os.environ.get("NEXYSYNC_FORWARDED_ALLOW_IPS", "")
    settings = dataclasses.replace(
        settings, cdn_secret=cdn_secret, files_dir=files_dir, cdn_url=cdn_url, forwarded_allow_ips=forwarded
    )

    def stop_now(signum: int, frame: FrameType | None) -> None:
        # Until the API runs there is nothing to drain: unwind at once, which stops the database.
        raise KeyboardInterrupt

    received: list[int] = []

    def note_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    # SIGTERM's default would kill us without stopping the database; treat it like Ctrl-C.
    signal.signal(signal.SIGTERM, stop_now)
    try:
        with EmbeddedMongo(data_dir, private=True) as mongo:
            from .app import create_app  # the app pulls in the whole server: import it only here
            from .cdn.app import create_cdn_app

            settings = dataclasses.replace(settings, mongodb_uri=mongo.uri, jwt_secret=jwt_secret)
            app = tracing.instrument(create_app, settings, "nexysync-api")
            cdn = tracing.instrument(create_cdn_app, settings, "nexysync-cdn")
            # uvicorn installs its own handlers while it serves, and on return re-raises the signal
            # that stopped it into the handlers it found. These only note it, so the database is
            # stopped after the API has drained and the process still exits 0.
            signal.signal(signal.SIGINT, note_signal)
            signal.signal(signal.SIGTERM, note_signal)
            cdn_parts = _Cdn(cdn, cdn_sock, cdn_url, files_dir)
            return _run_api(app, args.host, args.port, mongo, received, cdn_parts, settings)
    except KeyboardInterrupt:
        print("nexysync-server dev: stopped before the API started.", file=sys.stderr)
        return 0
    except EmbeddedMongoError as exc:
        raise CliError(f"the embedded database did not start: {exc}") from exc
    finally:
        cdn_sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclasses.dataclass(frozen=True)
class _Cdn:
    """The CDN that ``dev`` runs beside the API: its app, its bound socket, its URL and volume."""

    app: object
    sock: socket.socket
    url: str
    files_dir: str


#: Set inside the CDN's server task in ``dev``: its uvicorn start-up lines repeat the API's.
_IN_CDN: contextvars.ContextVar[bool] = contextvars.ContextVar("nexysync_in_cdn", default=False)


class _CdnInfoFilter(logging.Filter):
    """Drop uvicorn's info lines logged from the CDN's task (warnings and errors still show)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or not _IN_CDN.get()


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signals alone: the API's server takes them and stops this one too."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _run_api(
    app: object,
    host: str,
    port: int,
    mongo: EmbeddedMongo,
    received: list[int],
    cdn: _Cdn,
    settings: Settings,
) -> int:
    """Serve ``app`` with uvicorn until a signal stops it; return the exit code.

    Args:
        app: The ASGI application.
        host: Interface to listen on.
        port: Port to listen on; 0 for any free one.
        mongo: The running database, for the banner.
        received: Signals that arrived before uvicorn took over signal handling.
        cdn: The CDN to serve beside the API, in the same event loop.
        settings: The proxies whose X-Forwarded-For is believed (``forwarded_allow_ips``, as
            ``serve`` takes them: per-address limits and audit entries use that address), the
            connection cap and the header deadline.
    """
    forwarded_allow_ips = settings.forwarded_allow_ips
    # The API and the CDN each count their own connections against the cap.
    http = guarded_protocol(settings.max_connections_per_worker, settings.header_timeout_s)
    cdn_server = _QuietServer(
        uvicorn.Config(
            cdn.app,  # type: ignore[arg-type]
            lifespan="on",
            timeout_graceful_shutdown=10,
            forwarded_allow_ips=forwarded_allow_ips,
            http=http,
            **logs.uvicorn_options(settings),
        )
    )

    class DevServer(DrainingServer):
        """A uvicorn server that prints the URLs once it really listens."""

        exit_requested_at = -1.0

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # One Ctrl-C can arrive twice: from the terminal and again from a wrapper that forwards
            # it to its child (tox does). uvicorn takes a second SIGINT as "quit now, skip the
            # shutdown", so a repeat within a moment of the first is the same keypress: ignore it.
            now = time.monotonic()
            if sig == signal.SIGINT and self.should_exit and now - self.exit_requested_at < _SAME_KEYPRESS_S:
                return
            if not self.should_exit:
                self.exit_requested_at = now
            super().handle_exit(sig, frame)
            cdn_server.should_exit = True

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if received:
                # Stopped between the database start and uvicorn's own signal handlers.
                self.should_exit = True
                return
            bound_port = self.servers[0].sockets[0].getsockname()[1]  # the real one when --port 0
            deadline = time.monotonic() + _CDN_START_DEADLINE_S
            while not cdn_server.started:
                if cdn_server.should_exit or time.monotonic() > deadline:
                    print("nexysync-server dev: the CDN did not start.", file=sys.stderr, flush=True)
                    self.should_exit = True
                    return
                await asyncio.sleep(0.01)
            # In the JSON log format stdout carries JSON only: the banner, for people, goes to stderr.
            out = sys.stderr if settings.log_format == "json" else sys.stdout
            print(_banner(host, bound_port, mongo, cdn.url, cdn.files_dir), file=out, flush=True)

    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        lifespan="on",
        # Streams are drained at once on stop; this bounds whatever else is still open.
        timeout_graceful_shutdown=10,
        forwarded_allow_ips=forwarded_allow_ips,
        http=http,
        **logs.uvicorn_options(settings),
    )
    server = DevServer(config)

    async def serve_cdn() -> None:
        # Tasks copy the context, so this marks every line logged by the CDN's serve and lifespan.
        _IN_CDN.set(True)
        try:
            await cdn_server.serve(sockets=[cdn.sock])
        except SystemExit:
            # Its start-up failed (it logged why); the API notices and stops.
            cdn_server.should_exit = True

    async def serve_all() -> None:
        # After uvicorn's Config set up its loggers (it replaces their filters then).
        logging.getLogger("uvicorn.error").addFilter(_CdnInfoFilter())
        # Signed CDN URLs are credentials: their signatures never reach the access log.
        redact_access_logs()
        cdn_task = asyncio.create_task(serve_cdn())
        supervisor = asyncio.create_task(supervise_database(mongo, lambda: server.should_exit))
        try:
            await server.serve()
        finally:
            cdn_server.should_exit = True
            await cdn_task
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor

    try:
        asyncio.run(serve_all())
    except SystemExit as exc:
        # uvicorn exits this way when the app's startup fails or the port is taken; it logged why.
        code = exc.code if isinstance(exc.code, int) and exc.code else 1
        print(
            f"nexysync-server dev: the API did not start (uvicorn exit code {code}). If its port was taken, "
            f"{_port_hint(host, port)}.",
            file=sys.stderr,
        )
        return code
    print("nexysync-server dev: API stopped; stopping the database.", file=sys.stderr, flush=True)
    return 0


async def supervise_database(mongo: EmbeddedMongo, stopping: Callable[[], bool]) -> None:
    """Restart the embedded database whenever it exits, on the same file and port, with backoff.

    The API needs nothing from this: while the database is down its requests answer 503
    DATABASE_UNAVAILABLE, and once the database answers again pymongo reconnects by itself.

    Args:
        mongo: The running database.
        stopping: Tells whether ``dev`` is shutting down (then a database that exits is not restarted).
    """
    delay = _RESTART_FIRST_S
    started_at = time.monotonic()
    while True:
        while mongo.running or stopping():
            await asyncio.sleep(_DATABASE_CHECK_S)
        if time.monotonic() - started_at >= _RESTART_STABLE_S:
            delay = _RESTART_FIRST_S
        print(
            f"nexysync-server dev: the database (nx-27017) exited with code {mongo.exit_code}; restarting it on "
            f"{mongo.uri} in {delay:g} s (its log: {mongo.console_path}).",
            file=sys.stderr,
            flush=True,
        )
        await asyncio.sleep(delay)
        delay = min(delay * 2, _RESTART_MAX_S)
        if stopping():
            continue
        try:
            # Blocks until it answers ping (or fails): off the event loop, which keeps serving.
            await asyncio.to_thread(mongo.restart)
        except EmbeddedMongoError as exc:
            print(f"nexysync-server dev: the database did not restart: {exc}", file=sys.stderr, flush=True)
            continue
        started_at = time.monotonic()
        print(f"nexysync-server dev: the database is back (pid {mongo.pid}).", file=sys.stderr, flush=True)


# --- serve and cdn -----------------------------------------------------------------------------


def gunicorn_config_location(environ: Mapping[str, str] | None = None) -> str:
    """Return the ``-c`` argument for gunicorn: ``NEXYSYNC_GUNICORN_CONF`` or the packaged module.

    Args:
        environ: Environment to read; ``os.environ`` when ``None``.

    Returns:
        A file path, or ``python:nexysync_server.gunicorn_conf``.

    Raises:
        CliError: ``NEXYSYNC_GUNICORN_CONF`` names a file that does not exist.
    """
    env = os.environ if environ is None else environ
    location = env.get("NEXYSYNC_GUNICORN_CONF", "").strip()
    if not location:
        return PACKAGED_GUNICORN_CONF
    if location.startswith("python:"):
        return location
    path = Path(location.removeprefix("file:")).expanduser()
    if not path.is_file():
        raise CliError(f"NEXYSYNC_GUNICORN_CONF={location!r} is not a file")
    return str(path.resolve())


def gunicorn_argv(args: argparse.Namespace, conf: str, app: str = APP_FACTORY) -> list[str]:
    """Build the gunicorn command line for ``serve`` (or ``cdn``).

    Args:
        args: Parsed ``serve`` or ``cdn`` arguments.
        conf: Config location from :func:`gunicorn_config_location`.
        app: The app factory to run.

    Returns:
        The full argv, starting with this interpreter.
    """
    argv = [sys.executable, "-m", "gunicorn", "-c", conf]
    for address in args.bind or ():
        argv += ["--bind", address]
    if args.workers is not None:
        argv += ["--workers", str(args.workers)]
    argv.append(app)
    return argv


def _serve(args: argparse.Namespace) -> int:
    """Run ``nexysync-server serve``: validate the environment, then become gunicorn."""
    settings = _settings_from_env()
    if not settings.jwt_secret.strip():
        raise CliError(
            "NEXYSYNC_JWT_SECRET is empty. Set it to a long random string, the same for every worker "
            "and replica, e.g. NEXYSYNC_JWT_SECRET=\"$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')\""
        )
    return _exec_gunicorn(args)


def _cdn(args: argparse.Namespace) -> int:
    """Run ``nexysync-server cdn``: validate the environment, then become gunicorn serving the CDN."""
    settings = _settings_from_env()
    if not settings.cdn_secret.strip():
        raise CliError(
            "NEXYSYNC_CDN_SECRET is empty. Set it to the same long random string as the API's, "
            "or no URL the API signs will be accepted."
        )
    if not settings.files_dir.strip():
        raise CliError("NEXYSYNC_FILES_DIR is empty. Set it to the directory (volume) that holds file content.")
    return _exec_gunicorn(args, CDN_APP_FACTORY)


def _exec_gunicorn(args: argparse.Namespace, app: str = APP_FACTORY) -> int:
    """Check the gunicorn options, then become gunicorn serving ``app`` (the API by default)."""
    if args.workers is not None and args.workers < 1:
        raise CliError(f"--workers must be at least 1, not {args.workers}")
    argv = gunicorn_argv(args, gunicorn_config_location(), app)
    sys.stdout.flush()
    sys.stderr.flush()
    # exec, not a child: gunicorn's arbiter becomes this process, so signals from systemd or
    # Kubernetes reach it directly and its exit code is ours.
    os.execv(sys.executable, argv)
    raise AssertionError("os.execv returned")  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
