"""A production-shaped stack on loopback: HAProxy (TLS) in front of blue and green API slots and the CDN.

Used by the live HAProxy tests and by ``tests/bench/bench_proxy.py``, so it needs no pytest. Every
piece is the real thing: Debian's HAProxy with ``ops/haproxy/haproxy.cfg``, ``nexysync-server
serve`` (gunicorn + uvicorn workers) for each slot and ``nexysync-server cdn``, against one
database, with a test CA and a server certificate made here with ``cryptography``.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from debian_packages import MissingPackage, debian_binary
from nexysync_server.store.embedded import free_port

REPO = Path(__file__).resolve().parents[2]
HAPROXY_CFG = REPO / "ops" / "haproxy" / "haproxy.cfg"
SWITCH = REPO / "ops" / "haproxy" / "switch"
CERTBOT_HOOK = REPO / "ops" / "haproxy" / "certbot-deploy-hook"
START_DEADLINE_S = 60.0
# Above gunicorn's graceful_timeout (30 s): a slot that is stopping gets that long to drain.
STOP_DEADLINE_S = 45.0
JWT_SECRET = "haproxy-e2e-jwt-secret-long-enough-for-hs256"
CDN_SECRET = "haproxy-e2e-cdn-secret-long-enough-for-hmac-sha256"


class StackError(RuntimeError):
    """A piece of the stack did not start, or HAProxy cannot be had."""


def haproxy_binary() -> str:
    """Return HAProxy's path, installing Debian's package first when it is missing and we are root.

    Raises:
        StackError: HAProxy is missing and cannot be installed (not root, or apt failed).
    """
    try:
        return debian_binary("haproxy", "haproxy")
    except MissingPackage as exc:
        raise StackError(str(exc)) from exc


@dataclass(frozen=True)
class TlsFiles:
    """A test CA and a server certificate for 127.0.0.1 and localhost.

    Attributes:
        ca: The CA certificate (PEM): what clients trust.
        server_pem: The server's certificate followed by its key, as HAProxy's ``crt`` takes it.
        serial: The server certificate's serial number.
        ca_cert: The CA certificate, to sign more with.
        ca_key: The CA's key.

    The directory also holds ``fullchain.pem`` and ``privkey.pem``, laid out as a certbot lineage.
    """

    ca: Path
    server_pem: Path
    serial: int
    ca_cert: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey


def _make_ca(now: datetime.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "NexySync test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return ca_cert, ca_key


def make_tls(directory: Path, ca: TlsFiles | None = None) -> TlsFiles:
    """Make a server certificate for a day, signed by ``ca``'s CA or a new one; write them to ``directory``."""
    now = datetime.datetime.now(datetime.UTC)
    ca_cert, ca_key = (ca.ca_cert, ca.ca_key) if ca is not None else _make_ca(now)
    ca_name = ca_cert.subject
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    ca_path, pem_path = directory / "ca.pem", directory / "server.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    pem_path.write_bytes(cert_pem + key_pem)
    (directory / "fullchain.pem").write_bytes(cert_pem)
    (directory / "privkey.pem").write_bytes(key_pem)
    for path in (pem_path, directory / "privkey.pem"):
        path.chmod(0o600)
    return TlsFiles(ca=ca_path, server_pem=pem_path, serial=cert.serial_number, ca_cert=ca_cert, ca_key=ca_key)


def wait_for(condition: Callable[[], bool], what: str, timeout: float) -> None:
    """Poll ``condition`` until it holds.

    Raises:
        StackError: it did not hold within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout:g} s waiting until {what}")
        time.sleep(0.05)


@dataclass
class Process:
    """One child process with its output in ``<logs>/<name>.out`` and ``.err``."""

    name: str
    argv: list[str]
    env: Mapping[str, str]
    logs: Path
    popen: subprocess.Popen[bytes] | None = None
    _files: list[IO[bytes]] = field(default_factory=list)

    def start(self) -> Process:
        """Start it."""
        self.logs.mkdir(parents=True, exist_ok=True)
        out, err = (self.logs / f"{self.name}.out").open("wb"), (self.logs / f"{self.name}.err").open("wb")
        self._files = [out, err]
        # Its own process group: gunicorn's workers go with their arbiter when it is killed.
        self.popen = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=dict(self.env), start_new_session=True
        )
        return self

    def output(self) -> str:
        """What it printed so far, stdout then stderr."""
        return "".join(
            (self.logs / f"{self.name}{suffix}").read_text(errors="replace")
            for suffix in (".out", ".err")
            if (self.logs / f"{self.name}{suffix}").exists()
        )

    def alive(self) -> bool:
        """Tell whether it still runs."""
        return self.popen is not None and self.popen.poll() is None

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = START_DEADLINE_S) -> None:
        """Wait for ``condition``, failing at once (with its output) if the process exits."""

        def check() -> bool:
            if not self.alive():
                raise StackError(f"{self.name} exited with {self.popen and self.popen.returncode}:\n{self.output()}")
            return condition()

        wait_for(check, what, timeout)

    def stop(self, timeout: float = STOP_DEADLINE_S) -> int:
        """SIGTERM it and return its exit code.

        Raises:
            StackError: it still runs ``timeout`` seconds later.
        """
        assert self.popen is not None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise StackError(f"{self.name} still runs {timeout:g} s after SIGTERM") from exc

    def kill(self) -> None:
        """Make sure it and its children (gunicorn's workers) are gone, whatever happened."""
        if self.popen is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()
        for handle in self._files:
            handle.close()


def _http_ok(url: str, **kwargs: object) -> bool:
    try:
        return httpx.get(url, timeout=2.0, **kwargs).status_code == 200  # type: ignore[arg-type]
    except httpx.TransportError:
        return False


def _server_env(settings: Mapping[str, str]) -> dict[str, str]:
    """The environment of a server: this one without NEXYSYNC_* from the shell, plus ``settings``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NEXYSYNC_")}
    return env | dict(settings)


@dataclass
class Stack:
    """HAProxy with TLS in front of a blue and a green ``serve`` and a ``cdn``, on one database.

    Args:
        root: A fresh directory for certificates, files, sockets and logs.
        mongo_uri: The database every process uses.
        db_name: The database name (one per stack).
        server_settings: Extra ``NEXYSYNC_*`` settings of both API slots.
        haproxy_settings: Extra ``NEXYSYNC_HAPROXY_*`` variables (timeouts).
    """

    root: Path
    mongo_uri: str
    db_name: str
    server_settings: Mapping[str, str] = field(default_factory=dict)
    haproxy_settings: Mapping[str, str] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tls = make_tls(self.root / "tls")
        self.ports = {name: free_port() for name in ("blue", "green", "cdn", "https", "http")}
        self.socket = str(self.root / "haproxy.sock")
        self.state_file = str(self.root / "haproxy.state")
        self.files_dir = self.root / "files"
        self.files_dir.mkdir(parents=True, exist_ok=True)

    @property
    def https_url(self) -> str:
        """What clients reach: HAProxy's TLS port."""
        return f"https://127.0.0.1:{self.ports['https']}"

    @property
    def http_url(self) -> str:
        """HAProxy's plain port (redirects to HTTPS)."""
        return f"http://127.0.0.1:{self.ports['http']}"

    def direct_url(self, slot: str) -> str:
        """A slot's own address, bypassing HAProxy."""
        return f"http://127.0.0.1:{self.ports[slot]}"

    def common_settings(self) -> dict[str, str]:
        """Settings every server process shares (same database and secrets)."""
        return {
            "NEXYSYNC_MONGODB_URI": self.mongo_uri,
            "NEXYSYNC_DB_NAME": self.db_name,
            "NEXYSYNC_JWT_SECRET": JWT_SECRET,
            "NEXYSYNC_CDN_SECRET": CDN_SECRET,
            "NEXYSYNC_FILES_DIR": str(self.files_dir),
            # The CDN sits behind HAProxy on the API's own host (/blobs/ is routed to it), so its
            # URLs are made on the origin the client reached: https through the proxy.
            "NEXYSYNC_CDN_URL": "/",
            "NEXYSYNC_FORWARDED_ALLOW_IPS": "127.0.0.1",
            "NEXYSYNC_WORKERS": "1",
            "NEXYSYNC_LOG_LEVEL": "warning",
            "NEXYSYNC_RATE_LIMIT_PER_MINUTE": "1000000",
            "NEXYSYNC_QUOTA_MESSAGES_PER_DAY": "1000000",
            "NEXYSYNC_QUOTA_AGENTS": "1000",
        }

    def haproxy_env(self) -> dict[str, str]:
        """The documented variables of ``ops/haproxy/haproxy.cfg`` for this stack."""
        return {
            **{key: value for key, value in os.environ.items() if not key.startswith("NEXYSYNC_")},
            "NEXYSYNC_TLS_CERT": str(self.tls.server_pem),
            "NEXYSYNC_HTTPS_BIND": f"127.0.0.1:{self.ports['https']}",
            "NEXYSYNC_HTTP_BIND": f"127.0.0.1:{self.ports['http']}",
            "NEXYSYNC_BLUE_ADDR": f"127.0.0.1:{self.ports['blue']}",
            "NEXYSYNC_GREEN_ADDR": f"127.0.0.1:{self.ports['green']}",
            "NEXYSYNC_CDN_ADDR": f"127.0.0.1:{self.ports['cdn']}",
            "NEXYSYNC_HAPROXY_SOCKET": self.socket,
            "NEXYSYNC_HAPROXY_STATE_FILE": self.state_file,
            "NEXYSYNC_ACME_ADDR": f"127.0.0.1:{free_port()}",
            "NEXYSYNC_HAPROXY_CHECK_INTER": "300ms",
            # HAProxy needs two descriptors per connection, and test machines may allow 20,000 in all.
            "NEXYSYNC_HAPROXY_MAXCONN": "4000",
            "NEXYSYNC_HAPROXY_HTTPS_MAXCONN": "3800",
            **self.haproxy_settings,
        }

    def _server(self, name: str, command: str, settings: Mapping[str, str]) -> Process:
        executable = str(Path(sys.executable).with_name("nexysync-server"))
        argv = [executable, command, "--bind", f"127.0.0.1:{self.ports[name]}"]
        process = Process(name, argv, _server_env(settings), self.root / "logs").start()
        self.processes[name] = process
        return process

    def start_slot(self, slot: str) -> Process:
        """Start one API slot and wait until it is ready."""
        process = self._server(slot, "serve", {**self.common_settings(), **self.server_settings})
        process.wait_until(lambda: _http_ok(f"{self.direct_url(slot)}/v1/health/ready"), f"{slot} is ready")
        return process

    def start(self) -> Stack:
        """Start the CDN, both slots and HAProxy; return once HAProxy sees blue live and ready.

        Raises:
            StackError: something did not start.
        """
        haproxy = haproxy_binary()
        cdn = self._server("cdn", "cdn", self.common_settings())
        for slot in ("blue", "green"):
            self.start_slot(slot)
        cdn.wait_until(lambda: _http_ok(f"{self.direct_url('cdn')}/health"), "the CDN is ready")
        process = Process("haproxy", [haproxy, "-db", "-f", str(HAPROXY_CFG)], self.haproxy_env(), self.root / "logs")
        self.processes["haproxy"] = process.start()
        process.wait_until(
            lambda: "blue: weight 100, UP, check L7OK" in self.switch("status").stdout,
            "HAProxy runs with blue live and healthy",
        )
        return self

    def switch(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``ops/haproxy/switch`` with this stack's socket and state file."""
        env = {**os.environ, "NEXYSYNC_HAPROXY_SOCKET": self.socket, "NEXYSYNC_HAPROXY_STATE_FILE": self.state_file}
        return subprocess.run([sys.executable, str(SWITCH), *args], env=env, capture_output=True, text=True)

    def close(self) -> None:
        """Stop everything still running (HAProxy first)."""
        for name in ("haproxy", "blue", "green", "cdn"):
            if name in self.processes:
                self.processes[name].kill()
