"""Live: Debian's HAProxy with ops/haproxy/haproxy.cfg in front of blue and green ``serve`` slots and the CDN.

One stack for the module (see haproxy_support): a test CA and server certificate, one embedded
database, blue and green ``nexysync-server serve``, ``nexysync-server cdn``, HAProxy with TLS. The
blue -> green switch runs last, because it stops blue.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import socket
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from haproxy_support import CERTBOT_HOOK, HAPROXY_CFG, Stack, StackError, haproxy_binary, make_tls, wait_for
from realtime_support import Team

from nexysync import APIConnectionError, AsyncClient, Client
from nexysync_server.store.embedded import EmbeddedMongo

pytestmark = pytest.mark.e2e

#: HAProxy's limit on an API server's answer to a plain request in this stack...
REQUEST_TIMEOUT_S = 2.0
#: ...and the servers' heartbeat, longer than it: a stream that outlives three heartbeats is one
#: HAProxy's plain-request timeout would have cut three times over.
HEARTBEAT_S = 2.5
AGENTS = ("ada", "bob", "cyd", "dee")
MESSAGES = 1000
EVENT_DEADLINE_S = 90.0
EDGE_AUTH_PER_MIN = 5


@pytest.fixture(scope="module")
def stack(mongo: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole stack, started once for this module."""
    try:
        haproxy_binary()
    except StackError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    stack = Stack(
        tmp_path_factory.mktemp("haproxy"),
        mongo.uri,
        "haproxy_e2e",
        server_settings={"NEXYSYNC_HEARTBEAT_S": str(HEARTBEAT_S)},
        haproxy_settings={
            "NEXYSYNC_HAPROXY_REQUEST_TIMEOUT": f"{int(REQUEST_TIMEOUT_S * 1000)}ms",
            # The edge's sign-in limit, small enough to reach; the request limit out of the way of
            # the module's load (1,000 messages from one address).
            "NEXYSYNC_HAPROXY_AUTH_PER_MIN": str(EDGE_AUTH_PER_MIN),
            "NEXYSYNC_HAPROXY_REQ_RATE": "100000",
        },
    )
    try:
        yield stack.start()
    finally:
        stack.close()


@pytest.fixture(scope="module")
def team(stack: Stack) -> Team:
    """An owner, a project and the agents, made directly on blue (setting up is not what is tested)."""
    return Team(stack.direct_url("blue"), list(AGENTS))


def _client(stack: Stack, team: Team, slug: str) -> AsyncClient:
    """An SDK client of ``slug`` that reaches the API through HAProxy, trusting only the test CA."""
    return AsyncClient(
        base_url=stack.https_url,
        api_key=team.keys[slug],
        key_ring=team.ring,
        project_id=team.project_id,
        verify=stack.tls.ca,
    )


def test_haproxy_accepts_the_config_with_the_documented_variables(stack: Stack) -> None:
    result = subprocess.run(
        [haproxy_binary(), "-c", "-f", str(HAPROXY_CFG)], env=stack.haproxy_env(), capture_output=True, text=True
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "Configuration file is valid" in output, output
    # The only warning allowed is about the server-state file (absent until the first switch).
    warnings = [line for line in output.splitlines() if "WARNING" in line and "server state file" not in line]
    assert not warnings, output


def test_a_missing_variable_is_refused(stack: Stack) -> None:
    env = {key: value for key, value in stack.haproxy_env().items() if key != "NEXYSYNC_BLUE_ADDR"}
    result = subprocess.run([haproxy_binary(), "-c", "-f", str(HAPROXY_CFG)], env=env, capture_output=True, text=True)
    assert result.returncode != 0, result.stdout + result.stderr


def test_plain_port_redirects_to_https_but_not_acme_challenges(stack: Stack) -> None:
    response = httpx.get(f"{stack.http_url}/v1/health/live?probe=1", follow_redirects=False)
    assert response.status_code == 301
    assert response.headers["Location"] == f"https://127.0.0.1:{stack.ports['http']}/v1/health/live?probe=1"
    # The challenge goes to the ACME backend (no ACME client listens here, so HAProxy says 503).
    challenge = httpx.get(f"{stack.http_url}/.well-known/acme-challenge/token", follow_redirects=False)
    assert challenge.status_code == 503 and "Location" not in challenge.headers


def test_tls_12_plus_alpn_h2_and_hsts(stack: Stack) -> None:
    context = ssl.create_default_context(cafile=str(stack.tls.ca))
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", stack.ports["https"]), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.selected_alpn_protocol() == "h2"
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    tls12 = ssl.create_default_context(cafile=str(stack.tls.ca))
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", stack.ports["https"]), timeout=10) as raw,
        tls12.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() == "TLSv1.2"
        cipher = tls.cipher()[0]
        assert cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA20" in cipher)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is what is being refused
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.load_verify_locations(cafile=str(stack.tls.ca))
        old.minimum_version = ssl.TLSVersion.TLSv1_1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("ALL:@SECLEVEL=0")
    with (
        socket.create_connection(("127.0.0.1", stack.ports["https"]), timeout=10) as raw,
        pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"),
    ):
        # The server answers TLS 1.1 with a protocol_version alert.
        old.wrap_socket(raw, server_hostname="localhost")
    response = httpx.get(f"{stack.https_url}/v1/health/ready", verify=ssl.create_default_context(cafile=stack.tls.ca))
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    # An untrusted certificate is refused: the SDK's verify= really is what lets it in.
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{stack.https_url}/v1/health/ready")


def test_the_sdk_trusts_a_private_ca_by_path_or_ssl_cert_file(
    stack: Stack, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = {"base_url": stack.https_url, "api_key": team.keys["bob"], "project_id": team.project_id}
    with Client(**options, verify=str(stack.tls.ca)) as client:
        assert client.me.get().agent.slug == "bob"
    with Client(**options) as client, pytest.raises(APIConnectionError):
        client.me.get()
    # What the CLI and the MCP server (SDK defaults) go by.
    monkeypatch.setenv("SSL_CERT_FILE", str(stack.tls.ca))
    with Client(**options) as client:
        assert client.me.get().agent.slug == "bob"


async def test_forwarded_proto_makes_the_cdn_urls_https_and_files_go_through_the_proxy(
    stack: Stack, team: Team, tmp_path: Path
) -> None:
    async with _client(stack, team, "ada") as ada:
        source = tmp_path / "notes.txt"
        source.write_bytes(b"through HAProxy " * 5000)
        uploaded = await ada.files.upload(source, name="notes.txt")
        fetched = await ada.files.get(uploaded.id)
        assert str(fetched.download_url).startswith(f"{stack.https_url}/blobs/")
        copy = tmp_path / "copy.txt"
        await ada.files.download(uploaded.id, to=copy)
        assert copy.read_bytes() == source.read_bytes()
    # Only a trusted proxy may say the scheme: 127.0.0.2 is loopback, but not in FORWARDED_ALLOW_IPS.
    key = team.keys["ada"]
    headers = {"Authorization": f"Bearer {key}", "X-Forwarded-Proto": "https"}
    untrusted = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    with untrusted:
        answer = untrusted.get(f"{stack.direct_url('green')}/v1/files/{uploaded.id}", headers=headers)
    assert answer.status_code == 200
    assert answer.json()["download_url"].startswith(f"http://127.0.0.1:{stack.ports['green']}/blobs/")
    trusted = httpx.get(f"{stack.direct_url('green')}/v1/files/{uploaded.id}", headers=headers)
    assert trusted.json()["download_url"].startswith(f"https://127.0.0.1:{stack.ports['green']}/blobs/")


def test_the_server_sees_the_client_address_haproxy_forwards_never_a_forged_one(stack: Stack, team: Team) -> None:
    context = ssl.create_default_context(cafile=str(stack.tls.ca))
    # 127.0.0.2 is loopback too: the address HAProxy sees and puts in X-Forwarded-For.
    transport = httpx.HTTPTransport(local_address="127.0.0.2", verify=context)
    headers = {"Authorization": team.owner.headers["Authorization"], "X-Forwarded-For": "203.0.113.66"}
    with httpx.Client(transport=transport, base_url=stack.https_url) as http:
        renamed = http.patch(f"/v1/projects/{team.project_id}", json={"name": "via-haproxy"}, headers=headers)
    assert renamed.status_code == 200, renamed.text
    entries = team.owner.get(f"/v1/projects/{team.project_id}/audit", params={"limit": 100}).json()["data"]
    update = [entry for entry in entries if entry["action"] == "project.update"][-1]
    assert update["source_ip"] == "127.0.0.2"


def test_the_edge_limits_sign_in_requests_per_source_address(stack: Stack) -> None:
    context = ssl.create_default_context(cafile=str(stack.tls.ca))
    body = {"email": "nobody@example.test", "password": "wrong-guess-123"}
    # From 127.0.0.3, an address of its own: the limit is per source.
    transport = httpx.HTTPTransport(local_address="127.0.0.3", verify=context)
    with httpx.Client(transport=transport, base_url=stack.https_url) as http:
        answers = [http.post("/v1/auth/login", json=body) for _ in range(EDGE_AUTH_PER_MIN + 2)]
        other_paths = http.get("/v1/health/ready")
    assert [a.status_code for a in answers] == [401] * EDGE_AUTH_PER_MIN + [429, 429]
    refused = answers[-1]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "EDGE_RATE_LIMITED" and int(refused.headers["Retry-After"]) >= 1
    assert other_paths.status_code == 200  # only /v1/auth/ has the tight limit
    # Another address is not held back by this one.
    elsewhere = httpx.HTTPTransport(local_address="127.0.0.4", verify=context)
    with httpx.Client(transport=elsewhere, base_url=stack.https_url) as http:
        assert http.post("/v1/auth/login", json=body).status_code == 401


async def test_a_stream_outlives_three_heartbeats_longer_than_the_request_timeout(stack: Stack, team: Team) -> None:
    context = ssl.create_default_context(cafile=str(stack.tls.ca))
    headers = {"Authorization": f"Bearer {team.keys['dee']}", "Accept": "text/event-stream"}
    async with (
        httpx.AsyncClient(verify=context, timeout=httpx.Timeout(10, read=30)) as http,
        http.stream("GET", f"{stack.https_url}/v1/stream", headers=headers) as response,
    ):
        assert response.status_code == 200
        opened = time.monotonic()
        heartbeats = 0
        async for line in response.aiter_lines():
            if line == ": heartbeat":
                heartbeats += 1
                if heartbeats == 3:
                    break
        lived = time.monotonic() - opened
    # One connection carried three heartbeats; each silence before one was longer than HAProxy lets a
    # plain request's server stay silent, so only the stream's own timeout kept it open.
    assert heartbeats == 3
    assert lived > 3 * REQUEST_TIMEOUT_S


def _served_serial(stack: Stack) -> int:
    context = ssl.create_default_context(cafile=str(stack.tls.ca))
    with (
        socket.create_connection(("127.0.0.1", stack.ports["https"]), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_certbot_deploy_hook_swaps_the_certificate_without_a_reload(stack: Stack, tmp_path: Path) -> None:
    assert _served_serial(stack) == stack.tls.serial
    renewed = make_tls(tmp_path / "live" / "nexysync.example.com", ca=stack.tls)
    env = {
        **os.environ,
        "RENEWED_LINEAGE": str(tmp_path / "live" / "nexysync.example.com"),
        "NEXYSYNC_TLS_CERT": str(stack.tls.server_pem),
        "NEXYSYNC_HAPROXY_SOCKET": stack.socket,
    }
    haproxy_pid = stack.processes["haproxy"].popen.pid  # type: ignore[union-attr]
    result = subprocess.run([sys.executable, str(CERTBOT_HOOK)], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no reload" in result.stdout
    # New handshakes get the renewed certificate, from the same HAProxy process; the file is the
    # new one too, so a later restart keeps it.
    assert _served_serial(stack) == renewed.serial
    assert stack.processes["haproxy"].alive() and stack.processes["haproxy"].popen.pid == haproxy_pid  # type: ignore[union-attr]
    assert stack.tls.server_pem.read_bytes() == renewed.server_pem.read_bytes()


async def test_blue_green_switch_loses_and_repeats_nothing(stack: Stack, team: Team) -> None:
    """Four agents send 1,000 messages in all, streams open, while blue -> green happens mid-way."""
    per_agent = MESSAGES // len(AGENTS)
    clients = {slug: _client(stack, team, slug) for slug in AGENTS}
    recipient = {slug: AGENTS[(i + 1) % len(AGENTS)] for i, slug in enumerate(AGENTS)}
    sent: dict[str, list[tuple[str, float, float]]] = {slug: [] for slug in AGENTS}
    received: dict[str, list[tuple[str, str, float]]] = {slug: [] for slug in AGENTS}
    switch_window: list[float] = []
    half_sent = asyncio.Event()
    streams = {slug: clients[slug].stream() for slug in AGENTS}
    for stream in streams.values():
        await stream.open()

    async def listen(slug: str) -> None:
        async for event in streams[slug]:
            if event.type == "new_message" and event.data["to"] == slug:
                received[slug].append((event.data["id"], event.data["from"], time.monotonic()))
                if len(received[slug]) >= per_agent:
                    return

    async def send(slug: str) -> None:
        for n in range(per_agent):
            started = time.monotonic()
            message = await clients[slug].messages.send(recipient[slug], topic=f"#{n}", payload=f"{slug} {n}")
            sent[slug].append((message.id, started, time.monotonic()))
            if sum(len(ids) for ids in sent.values()) >= MESSAGES // 2:
                half_sent.set()

    async def switch() -> None:
        await half_sent.wait()
        switch_window.append(time.monotonic())
        result = await asyncio.to_thread(stack.switch, "green")
        assert result.returncode == 0, result.stderr
        # Blue drains: its streams end (clients resume on green with Last-Event-ID), requests finish.
        assert await asyncio.to_thread(stack.processes["blue"].stop) == 0, stack.processes["blue"].output()
        switch_window.append(time.monotonic())

    listeners = [asyncio.create_task(listen(slug)) for slug in AGENTS]
    try:
        await asyncio.gather(switch(), *(send(slug) for slug in AGENTS))
        await asyncio.wait_for(asyncio.gather(*listeners), EVENT_DEADLINE_S)
    finally:
        for task in listeners:
            task.cancel()
        for slug in AGENTS:
            await streams[slug].aclose()
            await clients[slug].aclose()

    assert "live: green" in stack.switch("status").stdout
    # Back to blue is refused while blue is down, and changes nothing.
    refused = stack.switch("blue", "--timeout", "1")
    assert refused.returncode == 1 and "blue is not healthy" in refused.stderr
    assert "live: green" in stack.switch("status").stdout
    lost = duplicated = 0
    for slug in AGENTS:
        sender = next(other for other in AGENTS if recipient[other] == slug)
        expected = [message_id for message_id, _, _ in sent[sender]]
        got = [message_id for message_id, from_slug, _ in received[slug] if from_slug == sender]
        lost += len(set(expected) - set(got))
        duplicated += len(got) - len(set(got))
        # Exactly once and in the order they were sent (each sender sends one after another).
        assert got == expected, f"{slug} got {len(got)} of {len(expected)} from {sender}, not in order"
    start, end = switch_window
    during = sum(1 for rows in sent.values() for _, began, done in rows if began <= end and done >= start)
    pauses = [
        later - earlier for rows in received.values() for (_, _, earlier), (_, _, later) in itertools.pairwise(rows)
    ]
    longest_send = max(done - began for rows in sent.values() for _, began, done in rows)
    print(
        f"\nswitch: {during} messages sent during the switch ({end - start:.2f} s, blue drained and stopped); "
        f"lost {lost}, duplicated {duplicated}; longest pause between events a client saw {max(pauses):.2f} s; "
        f"longest send {longest_send:.2f} s"
    )
    assert lost == 0 and duplicated == 0
    # Every stream came back on green with its Last-Event-ID: HAProxy logs (when the stream ends)
    # the server it went to and the header it captured.
    log = stack.processes["haproxy"]
    resumed = re.compile(r"api/green .*\{(\d+)\} \"GET /v1/stream ")

    def all_resumed() -> bool:
        return len(resumed.findall(log.output())) >= len(AGENTS)

    wait_for(all_resumed, "HAProxy logged every stream resumed on green with a Last-Event-ID", 30.0)
