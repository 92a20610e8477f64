"""Talk to HAProxy's runtime API (the ``stats socket`` of haproxy.cfg); used by ``switch`` and the certbot hook."""

from __future__ import annotations

import socket


class RuntimeApiError(Exception):
    """HAProxy's runtime API cannot be reached."""


def command(socket_path: str, line: str) -> str:
    """Send one command (a payload may follow after ``<<``) and return HAProxy's whole answer.

    Raises:
        RuntimeApiError: the socket does not answer.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        try:
            sock.connect(socket_path)
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except OSError as exc:
            raise RuntimeApiError(f"cannot talk to HAProxy's runtime API at {socket_path}: {exc}") from exc
    return b"".join(chunks).decode()
