"""Benchmark: the console in real Chromium with a large project (10,000 messages by default).

Starts an embedded database and one API process, sends N messages (SDK envelopes, made here),
then opens the console in Debian's chromium (installed when missing, as the tests do) and prints:

- time to first render: from submitting the project key to the first decrypted row on screen;
- time until every message is listed, and until every one is decrypted;
- time per decrypted message in the browser (three fields each), against raw WebCrypto
  AES-GCM decryption of the same envelope sizes in the same page (the format's ceiling);
- responsiveness with all N loaded: rows kept in the page (virtualised) and the time from a
  scroll jump (top, middle, end) to its rows being drawn.

Run: ``python tests/bench/bench_console.py [--messages 10000]`` (or ``tox -e bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from _api import running_api
from console_support import PASSWORD, Owner, browser_context

from nexysync.crypto import KeyRing, new_key
from nexysync_server.ids import new_id

SENDERS = 16
DEADLINE_S = 600.0


def _seed(base_url: str) -> Owner:
    http = httpx.Client(base_url=base_url, timeout=30)
    email = f"bench-{secrets.token_hex(4)}@example.test"
    tokens = http.post(
        "/v1/auth/register", json={"email": email, "name": "Bench", "password": PASSWORD, "tos_accepted": True}
    )
    tokens.raise_for_status()
    http.headers["Authorization"] = f"Bearer {tokens.json()['access_token']}"
    name = "console-bench"
    project_id = http.post("/v1/projects", json={"name": name}).json()["id"]
    keys = {}
    for slug in ("alice", "bob"):
        keys[slug] = http.post(f"/v1/projects/{project_id}/agents", json={"slug": slug, "name": slug}).json()["api_key"]
    return Owner(base_url, email, project_id, name, new_key(), {}, keys)


async def _send_all(owner: Owner, count: int) -> float:
    ring = KeyRing([owner.key])
    numbers = itertools.count()

    def body(index: int) -> dict[str, Any]:
        message_id = new_id()

        def seal(field: str, text: str) -> str:
            return ring.encrypt(
                text.encode(), project_id=owner.project_id, kind="message", record_id=message_id, field=field
            )

        return {
            "id": message_id,
            "to": "bob",
            "type": "notification",
            "topic": seal("topic", f"Build {index} finished"),
            "payload": seal("payload", f"Build {index}: 312 tests passed, artefacts uploaded. " * 3),
        }

    async def sender(client: httpx.AsyncClient) -> None:
        while (index := next(numbers)) < count:
            sent = await client.post("/v1/messages", json=body(index))
            sent.raise_for_status()

    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {owner.api_keys['alice']}"}
    async with httpx.AsyncClient(base_url=owner.base_url, headers=headers, timeout=60) as client:
        await asyncio.gather(*(sender(client) for _ in range(SENDERS)))
    return time.perf_counter() - started


_RAW_DECRYPT = """async ([count, sizes]) => {
    const key = await crypto.subtle.generateKey({name: "AES-GCM", length: 256}, false, ["encrypt", "decrypt"]);
    const id = "01J00000000000000000000000";
    const ad = new TextEncoder().encode(`nexysync/v1|${id}|message|${id}|payload`);
    const sealed = [];
    for (const size of sizes) {
        const iv = crypto.getRandomValues(new Uint8Array(12));
        const data = await crypto.subtle.encrypt({name: "AES-GCM", iv, additionalData: ad}, key, new Uint8Array(size));
        sealed.push([iv, data]);
    }
    const started = performance.now();
    for (let done = 0; done < count; done += 64) {
        const batch = [];
        for (let i = done; i < Math.min(count, done + 64); i += 1) {
            for (const [iv, data] of sealed) {
                batch.push(crypto.subtle.decrypt({name: "AES-GCM", iv, additionalData: ad}, key, data));
            }
        }
        await Promise.all(batch);
    }
    return (performance.now() - started) / count;
}"""


def _wait_for(page: Any, counter: str, count: int) -> float:
    """Wait until the console's counter (a data attribute it keeps) reaches ``count``; return the seconds."""
    started = time.perf_counter()
    # A function, not an expression string: the page's CSP forbids eval, which strings would need.
    page.wait_for_function(
        "([name, n]) => Number(document.documentElement.dataset[name]) >= n",
        arg=[counter, count],
        timeout=DEADLINE_S * 1000,
        polling=100,
    )
    return time.perf_counter() - started


def _scroll_ms(page: Any, where: str) -> float:
    """Jump the timeline and wait for the frame that draws the rows there (measured in the page)."""
    return page.evaluate(
        """(where) => new Promise((resolve) => {
            const view = document.getElementById("timeline");
            const started = performance.now();
            view.scrollTop = where === "top" ? 0 : where === "middle" ? view.scrollHeight / 2 : view.scrollHeight;
            requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - started)));
        })""",
        where,
    )


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    count = args.messages
    with running_api() as api, tempfile.TemporaryDirectory() as profile:
        owner = _seed(api.base_url)
        send_s = asyncio.run(_send_all(owner, count))
        print(f"console benchmark: {count} messages in one project (sent in {send_s:.1f} s, {count / send_s:.0f}/s)")
        with browser_context(Path(profile)) as browser:
            page = browser.new_page()
            page.goto(f"{owner.base_url}/console/")
            page.fill("#email", owner.email)
            page.fill("#password", PASSWORD)
            page.click("#signin-form button[type=submit]")
            page.get_by_role("button", name=owner.project_name).click()
            page.fill("#key-text", owner.export_line())
            started = time.perf_counter()
            page.click("#key-form button[type=submit]")
            page.wait_for_selector("#timeline .row .topic", timeout=DEADLINE_S * 1000)
            first_render = time.perf_counter() - started
            listed = _wait_for(page, "nxMessages", count) + first_render
            decrypted = _wait_for(page, "nxDecrypted", count) + listed
            stats = page.evaluate("({...document.documentElement.dataset})")
            per_message_ms = float(stats["nxDecryptMs"]) / float(stats["nxDecrypted"])
            topic = len(f"Build {count} finished".encode())
            payload = len((f"Build {count}: 312 tests passed, artefacts uploaded. " * 3).encode())
            raw_ms = page.evaluate(_RAW_DECRYPT, [count, [topic, payload]])
            rows = page.locator("#timeline .row").count()
            scrolls = {where: _scroll_ms(page, where) for where in ("top", "middle", "end")}
            page.close()
    print(f"  time to first render (key submitted -> first decrypted row): {first_render * 1000:8.0f} ms")
    print(f"  all {count} listed:                                          {listed:8.2f} s")
    print(f"  all {count} decrypted:                                       {decrypted:8.2f} s")
    print(f"  per decrypted message in the browser (topic + payload):      {per_message_ms * 1000:8.1f} µs")
    print(f"  raw WebCrypto AES-GCM, same sizes, same page:                {raw_ms * 1000:8.1f} µs")
    print(f"  console / raw:                                               {per_message_ms / raw_ms:8.2f} x")
    print(f"  rows in the page with {count} loaded (virtualised):          {rows:8d}")
    for where, ms in scrolls.items():
        print(f"  scroll jump to the {where:6} -> rows drawn:                    {ms:8.1f} ms")


if __name__ == "__main__":
    main()
