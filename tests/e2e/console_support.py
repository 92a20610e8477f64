"""Real Chromium for the console tests and benchmark: Debian's package, driven by Playwright.

Playwright's own browser download cannot reach its host from these machines, so the browser is
Debian's ``chromium``: installed here with apt-get when it is missing and we are root (as in CI),
else the tests are skipped with the reason. One browser per module keeps the added time small.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from nexysync import Client
from nexysync.crypto import KeyRing, new_key

CHROMIUM = Path("/usr/bin/chromium")
# What the brief for these machines asks: no GPU, no QUIC, and nothing that phones home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
APT_DEADLINE_S = 900
PASSWORD = "console-pass"


def ensure_chromium() -> Path:
    """Return Debian's chromium, installing it with apt-get if missing (root only; else skip)."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("Debian's chromium is not installed and cannot be installed here (apt-get as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # The package lists may be stale or missing on a fresh machine; another apt may hold the lock.
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, timeout=APT_DEADLINE_S)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "-o", "DPkg::Lock::Timeout=600", "chromium"],
        env=env,
        check=True,
        timeout=APT_DEADLINE_S,
    )
    assert CHROMIUM.exists(), "apt-get installed chromium, yet /usr/bin/chromium is missing"
    return CHROMIUM


@contextmanager
def browser_context(profile_dir: Path) -> Iterator[Any]:
    """Yield a Playwright browser context of Debian's chromium with a fresh profile directory."""
    executable = ensure_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile_dir),
            executable_path=str(executable),
            headless=True,
            args=CHROMIUM_ARGS,
            accept_downloads=True,
            viewport={"width": 1400, "height": 860},
        )
        try:
            yield context
        finally:
            context.close()


@dataclass
class Owner:
    """A registered owner with one project, its key ring and SDK agents."""

    base_url: str
    email: str
    project_id: str
    project_name: str
    key: bytes
    agents: dict[str, Client]
    api_keys: dict[str, str]

    def export_line(self) -> str:
        """The line ``nexysync keys export`` prints for this project."""
        payload = '{"keys":["' + base64.b64encode(self.key).decode() + '"]}'
        encoded = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        return f"nsk1:{self.project_id}:{encoded}"

    def close(self) -> None:
        """Close every SDK client."""
        for client in self.agents.values():
            client.close()


def make_owner(base_url: str, slugs: list[str]) -> Owner:
    """Register an owner, create a project and agents, and give each agent an SDK client."""
    email = f"console-{secrets.token_hex(5)}@example.test"
    http = httpx.Client(base_url=base_url, timeout=10)
    registered = http.post(
        "/v1/auth/register", json={"email": email, "name": "Console", "password": PASSWORD, "tos_accepted": True}
    )
    registered.raise_for_status()
    http.headers["Authorization"] = f"Bearer {registered.json()['access_token']}"
    name = f"console-{secrets.token_hex(3)}"
    project_id = http.post("/v1/projects", json={"name": name}).json()["id"]
    key = new_key()
    agents, api_keys = {}, {}
    for slug in slugs:
        created = http.post(f"/v1/projects/{project_id}/agents", json={"slug": slug, "name": slug.title()})
        created.raise_for_status()
        api_keys[slug] = created.json()["api_key"]
        agents[slug] = Client(base_url=base_url, api_key=api_keys[slug], key_ring=KeyRing([key]), project_id=project_id)
    http.close()
    return Owner(base_url, email, project_id, name, key, agents, api_keys)


def sign_in_and_import(page: Any, owner: Owner, key_text: str | None = None) -> None:
    """Open the console, sign in, pick the project and import its key (the export line by default)."""
    page.goto(f"{owner.base_url}/console/")
    page.fill("#email", owner.email)
    page.fill("#password", PASSWORD)
    page.click("#signin-form button[type=submit]")
    page.get_by_role("button", name=owner.project_name).click()
    page.fill("#key-text", key_text if key_text is not None else owner.export_line())
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#workspace:not([hidden])")
