"""Run nx-27017, a MongoDB wire-protocol server on SQLite, as a child process for development and tests."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO
from urllib.parse import quote

from pymongo import MongoClient
from pymongo.errors import PyMongoError

__all__ = ["DB_FILE_NAME", "EmbeddedMongo", "EmbeddedMongoError", "free_port", "make_private"]

#: Name of the SQLite database file inside the data directory.
DB_FILE_NAME = "nexysync.db"

_HOST = "127.0.0.1"
# nx-27017 has no ``__main__`` module and ``-m nx_27017.nx_27017`` makes runpy warn about a double
# import, so the child runs this bootstrap. Its watchdog thread reads stdin, a pipe from us that we
# never write to: when our process dies, even by SIGKILL, the pipe closes, the read returns, and the
# server stops itself instead of living on as an orphan that holds the port and the database file.
# - os.read, not sys.stdin: a thread blocked in a buffered read holds a lock that aborts the
#   interpreter at exit.
# - SIGTERM goes to the main thread, so it interrupts the event loop's wait at once; nx-27017 turns
#   it into sys.exit(0), which unwinds cleanly.
# - Everything it creates (the database, its journal, the socket) is the owner's alone: umask 077.
# - With NEXYSYNC_NX_SOCKET set it listens on that unix socket instead of TCP (nx-27017 has no
#   option for it, so asyncio.start_server, which is all it calls to listen, is swapped here).
_BOOTSTRAP = """\
import os, signal, sys, threading

os.umask(0o077)
_socket_path = os.environ.pop("NEXYSYNC_NX_SOCKET", "")
if _socket_path:
    import asyncio

    async def _start_unix_server(client_connected_cb, host=None, port=None, **kwargs):
        return await asyncio.start_unix_server(client_connected_cb, path=_socket_path, **kwargs)

    asyncio.start_server = _start_unix_server

def _watch_parent():
    while os.read(0, 4096):
        pass
    signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)

threading.Thread(target=_watch_parent, name="parent-watchdog", daemon=True).start()
from nx_27017.nx_27017 import main
sys.exit(main())
"""
# A port chosen by free_port() can be taken by someone else before the child binds it; starting
# again on a fresh port is cheap, so an auto-picked port gets a few tries.
_AUTO_PORT_ATTEMPTS = 3
_POLL_S = 0.05
_TAIL_LINES = 30
_SOCKET_NAME = "nx-27017.sock"
# A unix socket's path must fit in sockaddr_un (108 bytes on Linux, with its NUL).
_MAX_SOCKET_PATH = 100
_ENV_SOCKET = "NEXYSYNC_NX_SOCKET"


class EmbeddedMongoError(RuntimeError):
    """nx-27017 could not be started: it exited early or never answered ``ping``."""


class _PortHeldByOther(EmbeddedMongoError):
    """Something else answers on our port; ours cannot bind it and is about to exit."""


class _ExitedEarly(EmbeddedMongoError):
    """The child exited before answering, which is what losing the race for a port looks like."""


def free_port(host: str = _HOST) -> int:
    """Return a TCP port on ``host`` that nothing listens on right now.

    Args:
        host: Interface to probe.

    Returns:
        A port number the kernel just handed out as free.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, lines: int = _TAIL_LINES) -> str:
    """Return the last ``lines`` lines of a text file, or a note saying it is missing."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:]) or f"({path} is empty)"


def make_private(directory: Path) -> None:
    """Make ``directory`` the owner's alone: it 0700, its files 0600, its subdirectories 0700.

    Applied at every start, so a data dir made by an older version (0755, files 0644) is closed
    too. Nothing under a subdirectory is changed: a 0700 directory keeps everyone else out of it.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    for entry in directory.iterdir():
        mode = entry.lstat().st_mode
        if stat.S_ISDIR(mode):
            entry.chmod(0o700)
        elif stat.S_ISREG(mode):
            entry.chmod(0o600)


class EmbeddedMongo:
    """Run one nx-27017 server, its files in ``data_dir``, on loopback or, privately, on a unix socket.

    The database lives in ``<data_dir>/nexysync.db``; nx-27017's own log and pid files
    (``nx-27017.log``, ``nx-27017.pid``) and its console output (``nx-27017.console.log``) sit
    beside it, so two instances with different data directories never share a file. The data
    dir is made 0700 and its files 0600 at every start.

    nx-27017 has no authentication: on TCP loopback every local user can read and change the
    database. With ``private=True`` it listens on a unix socket instead, ``<data_dir>/nx-27017.sock``
    (0600, in the 0700 data dir; when that path is too long for a socket, in a 0700 directory of
    its own under the temp dir), so only its owner (and root) can reach it. ``dev`` runs it so.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`::

        with EmbeddedMongo(tmp_dir) as mongo:
            client = MongoClient(mongo.uri)

    Args:
        data_dir: Directory for the database file, log and pid file; created if missing.
        port: Port to listen on; a free one is picked when ``None``.
        startup_timeout: Seconds to wait for the server to answer ``ping``.
        stop_timeout: Seconds to wait after SIGTERM before SIGKILL.
        private: Listen on a unix socket only its owner can reach, not on TCP (``port`` unused).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        port: int | None = None,
        startup_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        private: bool = False,
    ) -> None:
        self._data_dir = Path(data_dir).resolve()
        self._private = private
        self._socket_path: Path | None = None
        self._socket_dir: Path | None = None  # a directory of our own for a socket, removed at stop
        self._requested_port = port
        self._port: int | None = port
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._console: IO[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        """Directory holding the database, log and pid files."""
        return self._data_dir

    @property
    def db_path(self) -> Path:
        """The SQLite database file."""
        return self._data_dir / DB_FILE_NAME

    @property
    def log_path(self) -> Path:
        """nx-27017's log file (``--log-file``)."""
        return self._data_dir / "nx-27017.log"

    @property
    def pid_path(self) -> Path:
        """nx-27017's pid file (``--pid-file``)."""
        return self._data_dir / "nx-27017.pid"

    @property
    def console_path(self) -> Path:
        """Where the child's stdout and stderr go (tracebacks land here, not in the log file)."""
        return self._data_dir / "nx-27017.console.log"

    @property
    def host(self) -> str:
        """Interface the server listens on (always loopback: this is a development database)."""
        return _HOST

    @property
    def port(self) -> int:
        """Port the server listens on.

        Raises:
            EmbeddedMongoError: no port is known yet (not started and none was given).
        """
        if self._port is None:
            raise EmbeddedMongoError("EmbeddedMongo has no port until it is started")
        return self._port

    @property
    def socket_path(self) -> Path | None:
        """The unix socket a private server listens on (``None`` on TCP, or before it starts)."""
        return self._socket_path

    @property
    def uri(self) -> str:
        """MongoDB connection string for this server."""
        if self._socket_path is not None:
            return f"mongodb://{quote(str(self._socket_path), safe='')}/?directConnection=true"
        return f"mongodb://{_HOST}:{self.port}/?directConnection=true"

    @property
    def pid(self) -> int | None:
        """Process id of the running server, or ``None`` when it is not running."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def exit_code(self) -> int | None:
        """The child's exit code once it has exited on its own (negative: killed by that signal), else ``None``."""
        return self._process.poll() if self._process is not None else None

    def restart(self) -> EmbeddedMongo:
        """Start the server again after it exited: the same database file, the same port.

        Returns:
            ``self``, for chaining.

        Raises:
            EmbeddedMongoError: it is still running, was never started, or did not come back; the
                message carries the tail of its output.
        """
        if self.running:
            raise EmbeddedMongoError(f"nx-27017 for {self._data_dir} is still running")
        if self._port is None and self._socket_path is None:
            raise EmbeddedMongoError("nx-27017 was never started, so it has no port to restart on")
        self.stop()  # closes what is left of the exited child: its pipe and console file
        try:
            self._spawn()
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def start(self) -> EmbeddedMongo:
        """Start the server and wait until it answers ``ping``.

        Returns:
            ``self``, for chaining.

        Raises:
            EmbeddedMongoError: it is already running, exited early, or did not answer in time;
                the message carries the tail of its output.
        """
        if self._process is not None:
            raise EmbeddedMongoError(f"nx-27017 for {self._data_dir} was already started")
        make_private(self._data_dir)
        if self._private:
            self._socket_path = self._pick_socket_path()
            try:
                self._spawn()
                self._wait_until_ready()
            except BaseException:
                self.stop()
                self._forget_socket()
                raise
            return self
        attempts = 1 if self._requested_port is not None else _AUTO_PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            self._port = self._requested_port if self._requested_port is not None else free_port()
            try:
                self._spawn()
                self._wait_until_ready()
            except _ExitedEarly:
                self.stop()
                if attempt < attempts:
                    continue
                raise
            except BaseException:
                # A timeout, or Ctrl-C / SIGTERM turned into an exception while waiting: leave no child.
                self.stop()
                raise
            return self
        raise AssertionError("unreachable: the last attempt either returns or raises")

    def _pick_socket_path(self) -> Path:
        """Return where the private server listens: in the data dir, or in a 0700 directory of its own."""
        path = self._data_dir / _SOCKET_NAME
        if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
            self._socket_dir = Path(tempfile.mkdtemp(prefix="nexysync-db-"))  # 0700, ours alone
            path = self._socket_dir / _SOCKET_NAME
        if path.exists():
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(path))
            except OSError:
                path.unlink()  # left by a server that died: nobody answers on it
            else:
                raise EmbeddedMongoError(f"another nx-27017 already serves {self._data_dir} (on {path})")
            finally:
                probe.close()
        return path

    def _forget_socket(self) -> None:
        if self._socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._socket_path.unlink()
        if self._socket_dir is not None:
            with contextlib.suppress(OSError):
                self._socket_dir.rmdir()
            self._socket_dir = None
        self._socket_path = None

    def close(self) -> None:
        """Stop the server and remove its socket (:meth:`stop` keeps it, for :meth:`restart`)."""
        self.stop()
        self._forget_socket()

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL after ``stop_timeout``; safe to call twice."""
        process = self._process
        if process is None:
            return
        try:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=self._stop_timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        finally:
            if process.stdin is not None:
                process.stdin.close()
            if self._console is not None:
                self._console.close()
                self._console = None
            self._process = None

    def __enter__(self) -> EmbeddedMongo:
        """Start the server."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the server and remove its socket."""
        self.close()

    def __repr__(self) -> str:
        """Show where it lives and whether it runs."""
        state = f"pid={self.pid}" if self.running else "stopped"
        where = f"socket={str(self._socket_path)!r}" if self._socket_path else f"port={self._port}"
        return f"EmbeddedMongo(data_dir={str(self._data_dir)!r}, {where}, {state})"

    def _spawn(self) -> None:
        """Launch the child process with every file it writes inside the data directory."""
        env = {key: value for key, value in os.environ.items() if key != _ENV_SOCKET}
        if self._socket_path is not None:
            env[_ENV_SOCKET] = str(self._socket_path)
        command = [
            sys.executable,
            "-c",
            _BOOTSTRAP,
            "--db",
            str(self.db_path),
            "-p",
            str(self._port or 0),
            "--host",
            _HOST,
            "--log-file",
            str(self.log_path),
            "--pid-file",
            str(self.pid_path),
        ]
        # Appended, not truncated: a second start on a live data dir must not wipe the first one's output.
        self._console = os.fdopen(os.open(self.console_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
        try:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=self._console,
                stderr=subprocess.STDOUT,
                cwd=self._data_dir,
                env=env,
                # Its own session keeps a terminal's Ctrl-C away from it, so whoever owns it can stop
                # the API first and the database last.
                start_new_session=True,
            )
        except OSError as exc:
            self._console.close()
            self._console = None
            raise EmbeddedMongoError(f"cannot start nx-27017 with {sys.executable}: {exc}") from exc

    def _wait_until_ready(self) -> None:
        """Poll until ``ping`` answers, the child exits, or the deadline passes."""
        process = self._process
        assert process is not None
        deadline = time.monotonic() + self._startup_timeout
        last_error: Exception | None = None
        while True:
            remaining = deadline - time.monotonic()
            if process.poll() is not None:
                raise _ExitedEarly(self._failure(f"nx-27017 exited with code {process.returncode}"))
            if remaining <= 0:
                detail = f"; last error: {last_error}" if last_error else ""
                raise EmbeddedMongoError(
                    self._failure(f"nx-27017 did not answer ping within {self._startup_timeout:g} s{detail}")
                )
            try:
                # A plain TCP connect is cheap and fails fast until the server listens; only then is
                # a pymongo client (with its server-selection machinery) worth building.
                self._connect_once(min(remaining, 1.0))
                self._ping(timeout_s=min(remaining, 5.0))
                return
            except (OSError, PyMongoError, _PortHeldByOther) as exc:
                last_error = exc
            # Waiting on the process doubles as the pause between polls and wakes up at once if it dies.
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=min(_POLL_S, max(remaining, 0.001)))

    def _connect_once(self, timeout_s: float) -> None:
        if self._socket_path is None:
            with socket.create_connection((_HOST, self.port), timeout=timeout_s):
                return
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(timeout_s)
            probe.connect(str(self._socket_path))

    def _ping(self, timeout_s: float) -> None:
        """Send ``ping``, then check that our child is the one answering; give up after ``timeout_s``.

        Raises:
            EmbeddedMongoError: another process answers on the port (ours will then fail to bind
                and exit, which the caller reports with the reason).
            PyMongoError: no answer yet.
        """
        timeout_ms = max(int(timeout_s * 1000), 100)
        client: MongoClient[dict[str, object]] = MongoClient(
            self.uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms, socketTimeoutMS=timeout_ms
        )
        try:
            client.admin.command("ping")
            # A ping alone can be answered by whoever already held the port; the pid cannot.
            answering_pid = client.admin.command("serverStatus").get("pid")
        finally:
            client.close()
        assert self._process is not None
        if answering_pid != self._process.pid:
            where = self._socket_path or f"port {self._port}"
            raise _PortHeldByOther(f"{where} is answered by another server (pid {answering_pid})")

    def _failure(self, summary: str) -> str:
        """Build an error message with the tail of the child's output."""
        return (
            f"{summary} (data dir {self._data_dir}, {self._socket_path or f'port {self._port}'}).\n"
            f"Last lines of {self.console_path}:\n{_tail(self.console_path)}"
        )
