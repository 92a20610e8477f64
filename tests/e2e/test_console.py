"""The console in real Chromium (Debian's, driven by Playwright): what an owner sees and does.

One browser for the module; each test has its own owner, project and page.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from console_support import Owner, browser_context, make_owner, sign_in_and_import
from playwright.sync_api import expect

from nexysync.crypto import new_key

# The first test may install chromium with apt-get (once per machine): more than the usual 300 s.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

ARTIFACTS = Path(os.environ.get("NEXYSYNC_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))
DEADLINE_MS = 10_000
# Each one sets window.__xss (or opens a dialog) if it ever runs as markup or script.
XSS_CORPUS = [
    "<img src=x onerror=\"window.__xss='img'\">",
    "<script>window.__xss='script'</script>",
    "<svg onload=\"window.__xss='svg'\"></svg>",
    '"><iframe src="javascript:window.top.__xss=\'iframe\'"></iframe>',
    "<a href=\"javascript:window.__xss='a'\">click</a>",
    "{{constructor.constructor('window.__xss=1')()}}",
    "<style>body{display:none}</style><b onmouseover=alert(1)>x</b>",
]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One Chromium (fresh profile) for every test of this module."""
    with browser_context(tmp_path_factory.mktemp("chromium-profile")) as context:
        yield context


@pytest.fixture
def owner(dev_server: Any) -> Iterator[Owner]:
    """An owner with a project and two SDK agents, alice and bob."""
    made = make_owner(dev_server.base_url, ["alice", "bob"])
    yield made
    made.close()


class Watched:
    """A page with what it did recorded: requests, console messages, dialogs and page errors."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.requests: list[Any] = []
        self.problems: list[str] = []
        self.dialogs: list[str] = []
        page.on("request", self._request)
        page.on("console", self._console)
        page.on("pageerror", self._error)
        page.on("dialog", self._dialog)

    def _request(self, request: Any) -> None:
        self.requests.append(request)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(message.text)

    def _error(self, error: Any) -> None:
        self.problems.append(f"page error: {error}")

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    """A fresh page of the module's browser, recorded."""
    page = browser.new_page()
    yield Watched(page)
    page.close()


def _screenshot(page: Any, name: str) -> None:
    """Save what the page shows as a test artifact (``test-artifacts/`` or $NEXYSYNC_TEST_ARTIFACTS)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def _row(page: Any, text: str) -> Any:
    return page.locator("#timeline .row", has_text=text)


def test_an_sdk_message_appears_decrypted_live_and_keys_never_leave_the_browser(
    owner: Owner, watched: Watched, dev_server: Any
) -> None:
    page = watched.page
    alice, bob = owner.agents["alice"], owner.agents["bob"]
    question = alice.messages.send(to="bob", topic="Schema question", payload="Is v2 ready?", type="request")
    bob.messages.send(to="alice", topic="Re: schema", payload="Yes, since Monday.", reply_to=question.id)

    sign_in_and_import(page, owner)
    _row(page, "Schema question").wait_for(timeout=DEADLINE_MS)
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    sent_at = time.monotonic()
    alice.messages.send(broadcast=True, topic="Deploy finished", payload="build 1234 is live")
    _row(page, "Deploy finished").wait_for(timeout=DEADLINE_MS)
    latency = time.monotonic() - sent_at
    print(f"\nSDK send -> decrypted row in the console: {latency * 1000:.0f} ms")
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"

    # The thread, as a tree from its root.
    _row(page, "Re: schema").click()
    tree = page.locator("#detail .tree")
    assert tree.locator("> li > button").inner_text() == "alice: Schema question"
    assert tree.locator("> li > ul > li > button").inner_text() == "bob: Re: schema"
    assert page.locator("#detail .payload").inner_text() == "Yes, since Monday."
    assert page.locator("#agents li[data-agent=alice]").count() == 1

    _screenshot(page, "console-timeline.png")

    # Nothing went anywhere but the API (and the CDN), and the key in no form left the page.
    api = urlsplit(dev_server.base_url).netloc
    raw = owner.key
    forms = [base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("="), raw.hex()]
    for request in watched.requests:
        assert urlsplit(request.url).netloc == api or request.url.startswith("data:"), request.url
        sent = f"{request.url} {request.headers} {request.post_data or ''}"
        assert not any(form in sent for form in forms), request.url
        assert "nsk1:" not in sent
    assert not watched.problems, watched.problems


def test_the_detail_pane_shows_receipts_moving_to_read_live(owner: Owner, watched: Watched) -> None:
    page = watched.page
    alice, bob = owner.agents["alice"], owner.agents["bob"]
    asked = alice.messages.send(to="bob", topic="Receipt please", payload="<b>tell me</b> when read")
    sign_in_and_import(page, owner)
    _row(page, "Receipt please").click()
    receipt = page.locator("#receipt-rows tr[data-agent=bob]")
    expect(receipt).to_have_attribute("data-state", "queued", timeout=DEADLINE_MS)
    assert receipt.locator("td").nth(3).inner_text() == "—"  # not read yet
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    bob.messages.get(asked.id)  # marks it read: delivered, then read
    expect(receipt).to_have_attribute("data-state", "read", timeout=DEADLINE_MS)
    expect(receipt.locator("td").nth(1)).to_have_text("read")
    expect(receipt.locator("td").nth(3)).not_to_have_text("—")  # its read time
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
    assert page.locator("#detail .payload").inner_text() == "<b>tell me</b> when read"  # text, not markup
    assert not watched.problems, watched.problems


def test_a_remembered_key_stays_non_extractable_in_indexeddb(owner: Owner, watched: Watched) -> None:
    page = watched.page
    owner.agents["alice"].messages.send(to="bob", topic="Kept", payload="after a reload")
    page.goto(f"{owner.base_url}/console/")
    page.fill("#email", owner.email)
    page.fill("#password", "console-pass")
    page.click("#signin-form button[type=submit]")
    page.get_by_role("button", name=owner.project_name).click()
    page.fill("#key-text", owner.export_line())
    # The pasted line is masked, so a screenshot of this page does not carry it.
    assert page.get_attribute("#key-text", "type") == "password"
    page.check("#key-remember")
    page.click("#key-form button[type=submit]")
    _row(page, "Kept").wait_for(timeout=DEADLINE_MS)

    stored = page.evaluate(
        """(projectId) => new Promise((resolve, reject) => {
            const opened = indexedDB.open("nexysync-console");
            opened.onerror = () => reject(opened.error);
            opened.onsuccess = () => {
                const got = opened.result.transaction("project-keys").objectStore("project-keys").get(projectId);
                got.onsuccess = () => resolve(got.result.map((e) => [e.kid, e.key.type, e.key.extractable]));
            };
        })""",
        owner.project_id,
    )
    assert [(kind, extractable) for _, kind, extractable in stored] == [("secret", False)]

    # After a reload (signed out: tokens live in memory only), the key is still there.
    page.reload()
    page.fill("#email", owner.email)
    page.fill("#password", "console-pass")
    page.click("#signin-form button[type=submit]")
    page.get_by_role("button", name=owner.project_name).click()
    _row(page, "Kept").wait_for(timeout=DEADLINE_MS)
    assert page.locator("#keys").is_hidden()
    assert "remembered in this browser" in page.locator("#key-status").inner_text()


def test_a_wrong_key_says_cannot_decrypt(owner: Owner, watched: Watched) -> None:
    page = watched.page
    owner.agents["alice"].messages.send(to="bob", topic="Secret plan", payload="only with the right key")
    wrong = Owner(owner.base_url, owner.email, owner.project_id, owner.project_name, new_key(), {}, {})
    sign_in_and_import(page, owner, key_text=wrong.export_line())
    row = page.locator("#timeline .row.undecryptable")
    row.first.wait_for(timeout=DEADLINE_MS)
    assert "cannot decrypt" in row.first.inner_text()
    assert "Secret plan" not in page.locator("#timeline").inner_text()
    row.first.click()
    assert "cannot decrypt" in page.locator("#detail h3").inner_text()
    _screenshot(page, "console-wrong-key.png")

    page.click("#sign-out")
    page.locator("#signin").wait_for(timeout=DEADLINE_MS)
    assert page.locator("#timeline .row").count() == 0  # nothing of the project is left on the page


def test_sign_out_everywhere_ends_the_accounts_other_sessions(owner: Owner, watched: Watched) -> None:
    page = watched.page
    login = {"email": owner.email, "password": "console-pass"}
    elsewhere = httpx.post(f"{owner.base_url}/v1/auth/login", json=login).json()
    sign_in_and_import(page, owner)

    page.click("#sign-out-everywhere")

    page.locator("#signin").wait_for(timeout=DEADLINE_MS)
    assert "Every session of this account has ended" in page.locator("#notice").inner_text()
    headers = {"Authorization": f"Bearer {elsewhere['access_token']}"}
    refused = httpx.get(f"{owner.base_url}/v1/projects", headers=headers)
    assert refused.status_code == 401 and refused.json()["code"] == "SESSION_ENDED"
    refreshed = httpx.post(f"{owner.base_url}/v1/auth/refresh", json={"refresh_token": elsewhere["refresh_token"]})
    assert refreshed.status_code == 401


def test_the_xss_corpus_stays_inert_text(owner: Owner, watched: Watched) -> None:
    page = watched.page
    alice = owner.agents["alice"]
    for index, payload in enumerate(XSS_CORPUS):
        alice.messages.send(to="bob", topic=payload, payload=payload, metadata={"html": payload})
        alice.kv.put(f"xss.{index}", payload)
        alice.files.upload(io.BytesIO(b"x"), name=payload, content_type="text/html")
    alice.refs.share(title=XSS_CORPUS[0], content="\n".join(XSS_CORPUS), language="html")

    sign_in_and_import(page, owner)
    _row(page, "window.__xss='script'").wait_for(timeout=DEADLINE_MS)
    for payload in XSS_CORPUS:
        _row(page, payload).first.click()
        assert page.locator("#detail h3").inner_text() == payload
        assert page.locator("#detail .payload").inner_text() == payload
    page.click("button[data-tab=kv]")
    page.locator("#kv-rows tr", has_text="xss.6").wait_for(timeout=DEADLINE_MS)
    assert [page.locator(f"#kv-rows tr:nth-child({i + 1}) td.value").inner_text() for i in range(7)] == XSS_CORPUS
    page.click("button[data-tab=files]")
    page.locator("#file-rows tr").nth(len(XSS_CORPUS) - 1).wait_for(timeout=DEADLINE_MS)
    names = page.locator("#file-rows tr td:first-child").all_inner_texts()
    assert sorted(names) == sorted(XSS_CORPUS)
    page.click("button[data-tab=refs]")
    page.locator("#ref-list button").first.click()
    assert page.locator("#ref-view .code").inner_text().replace("\n", "").count("<script>") == 1
    page.mouse.move(10, 10)
    page.mouse.move(600, 400)

    page.click("button[data-tab=timeline]")
    _row(page, XSS_CORPUS[0]).first.click()
    _screenshot(page, "console-xss.png")
    assert page.evaluate("window.__xss") is None
    assert not watched.dialogs
    # No element came from agent text: every img, script, iframe, svg, style or anchor is the console's own.
    injected = page.evaluate(
        "Array.from(document.querySelectorAll('img, iframe, svg, style, a, object, embed, b, script'))"
        ".map((e) => e.outerHTML)"
    )
    assert injected == ['<script type="module" src="app.js"></script>'], injected
    assert not [p for p in watched.problems if "Content Security Policy" in p], watched.problems


def test_a_file_downloads_decrypted_and_matches(owner: Owner, watched: Watched, tmp_path: Path) -> None:
    page = watched.page
    content = secrets.token_bytes(150 * 1024)  # three 64 KiB segments, the last one short
    owner.agents["alice"].files.upload(io.BytesIO(content), name="build.tar", content_type="application/x-tar")
    sign_in_and_import(page, owner)
    page.click("button[data-tab=files]")
    row = page.locator("#file-rows tr", has_text="build.tar")
    with page.expect_download(timeout=DEADLINE_MS) as download_info:
        row.get_by_role("button", name="Download").click()
    download = download_info.value
    assert download.suggested_filename == "build.tar"
    target = tmp_path / "downloaded"
    download.save_as(target)
    assert target.read_bytes() == content
    assert not watched.problems, watched.problems


def test_the_owner_sends_as_an_imported_or_created_agent_encrypted_in_the_browser(
    owner: Owner, watched: Watched
) -> None:
    page = watched.page
    bob = owner.agents["bob"]
    key_file = {
        "api_key": owner.api_keys["alice"],
        "enc_key": base64.b64encode(owner.key).decode(),
        "api_url": owner.base_url,
        "project_id": owner.project_id,
        "agent_name": "alice",
    }
    sign_in_and_import(page, owner, key_text=json.dumps(key_file))
    expect(page.locator("#send-as")).to_have_value("alice", timeout=DEADLINE_MS)  # the key file's agent
    page.select_option("#send-to", "bob")
    page.fill("#send-topic", "From the console")
    page.fill("#send-payload", "typed in a browser")
    page.click("#composer button[type=submit]")
    _row(page, "From the console").wait_for(timeout=DEADLINE_MS)

    page.click("#create-agent")
    page.fill("#agent-key-dialog input >> nth=0", "console")
    page.fill("#agent-key-dialog input >> nth=1", "Console")
    page.click("#agent-key-dialog button[type=submit]")
    secret = page.locator("#agent-key-dialog .secret")
    secret.wait_for(timeout=DEADLINE_MS)
    assert re.fullmatch(r"nsync_console_[0-9a-f]{40}", secret.inner_text())
    page.locator("#agent-key-dialog button", has_text="Close").click()
    page.select_option("#send-as", "console")
    page.select_option("#send-to", "*")
    page.fill("#send-topic", "Hello from a new agent")
    page.fill("#send-payload", "broadcast, encrypted in the browser")
    page.click("#composer button[type=submit]")
    _row(page, "Hello from a new agent").wait_for(timeout=DEADLINE_MS)

    # The SDK decrypts what the browser encrypted: same envelope, same associated data.
    inbox = {m.topic: m for m in bob.messages.list()}
    assert inbox["From the console"].payload == "typed in a browser"
    assert inbox["From the console"].from_ == "alice"
    assert inbox["Hello from a new agent"].payload == "broadcast, encrypted in the browser"
    assert inbox["Hello from a new agent"].from_ == "console"


def test_the_timeline_keeps_only_the_rows_in_view_in_the_page(owner: Owner, watched: Watched) -> None:
    page = watched.page
    alice = owner.agents["alice"]
    for index in range(300):
        alice.messages.send(to="bob", topic=f"bulk {index}", payload="x")
    sign_in_and_import(page, owner)
    page.locator("#timeline-count", has_text="300 of 300").wait_for(timeout=DEADLINE_MS)
    _row(page, "bulk 299").wait_for(timeout=DEADLINE_MS)  # pinned to the newest
    rows = page.locator("#timeline .row").count()
    assert 0 < rows < 60, rows
    page.locator("#timeline").evaluate("(e) => { e.scrollTop = 0; }")
    _row(page, "bulk 0").wait_for(timeout=DEADLINE_MS)
    assert page.locator("#timeline .row").count() < 60


def test_the_session_refreshes_its_token_and_stays_live(dev_servers: Any, tmp_path: Path, watched: Watched) -> None:
    # Access tokens live 6 s here: the console must refresh them (and reopen its stream) unseen.
    server = dev_servers(tmp_path / "data", {"NEXYSYNC_ACCESS_TOKEN_TTL_S": "6"})
    owner = make_owner(server.base_url, ["alice", "bob"])
    page = watched.page
    try:
        sign_in_and_import(page, owner)
        page.wait_for_function(
            "() => Number(document.documentElement.dataset.nxRefreshes || 0) >= 2", timeout=60_000, polling=200
        )
        owner.agents["alice"].messages.send(to="bob", topic="After two refreshes", payload="still live")
        _row(page, "After two refreshes").wait_for(timeout=DEADLINE_MS)
        page.click("button[data-tab=audit]")
        page.locator("#audit-rows tr", has_text="owner.stream.open").first.wait_for(timeout=DEADLINE_MS)
        assert page.locator("#signin").is_hidden()
        assert not watched.problems, watched.problems
    finally:
        owner.close()


def test_agents_show_live_presence_and_usage_its_quotas(dev_server: Any, watched: Watched) -> None:
    owner = make_owner(dev_server.base_url, ["alice", "carol"])  # carol has made no request yet
    page = watched.page
    try:
        owner.agents["alice"].messages.send(to="carol", topic="Anyone there?", payload="ping")
        sign_in_and_import(page, owner)
        carol = page.locator("#agents li[data-agent=carol]")
        expect(carol).to_have_class("offline", timeout=DEADLINE_MS)
        headers = {"Authorization": f"Bearer {owner.api_keys['carol']}"}
        with httpx.stream("GET", f"{owner.base_url}/v1/stream", headers=headers, timeout=30) as stream:
            assert stream.status_code == 200
            expect(carol).to_have_class("online", timeout=DEADLINE_MS)  # told by presence_change, no reload
        page.click("button[data-tab=usage]")
        meters = page.locator("#usage .meter")
        expect(meters).to_have_count(3, timeout=DEADLINE_MS)
        assert meters.nth(0).inner_text().split("\n") == ["Messages today", "1 of 1000000"]
        assert meters.nth(2).inner_text().split("\n") == ["Agents", "2 of 1000"]
    finally:
        owner.close()


def test_leases_and_tasks_show_decrypted_and_follow_their_events(
    owner: Owner, watched: Watched, tmp_path: Path
) -> None:
    page = watched.page
    alice, bob = owner.agents["alice"], owner.agents["bob"]
    alice.leases.claim_paths(["src/auth/"], ttl_s=600, reason="login <b>rework</b>", root=tmp_path)
    first = alice.tasks.create("Write the schema", body="users table")
    then = alice.tasks.create("Migrate <img src=x onerror=\"window.__xss='task'\">", blocked_by=[first.id])
    sign_in_and_import(page, owner)
    page.click("button[data-tab=leases]")
    lease_row = page.locator("#lease-rows tr", has_text="src/auth/")
    expect(lease_row).to_contain_text("alice", timeout=DEADLINE_MS)
    expect(lease_row).to_contain_text("login <b>rework</b>")  # text, never markup
    page.click("button[data-tab=tasks]")

    def task_row(title: str) -> Any:
        return page.locator("#task-rows tr").filter(has=page.locator("td:first-child", has_text=title))

    expect(task_row("Write the schema")).to_contain_text("open", timeout=DEADLINE_MS)
    blocked = task_row("Migrate")
    expect(blocked).to_contain_text("Write the schema")  # its blocker, by title
    # Changes arrive by the project's events while the tab is open.
    bob.tasks.claim(first.id)
    bob.tasks.done(first.id, text="see 0042_users.sql")
    done_row = task_row("Write the schema")
    expect(done_row).to_contain_text("see 0042_users.sql", timeout=DEADLINE_MS)
    expect(done_row).to_contain_text("bob")
    assert page.evaluate("window.__xss") is None and then.id
    # The server never had the plaintext: what the console fetched is sealed.
    fetched = [r for r in watched.requests if "/tasks" in r.url or "/leases" in r.url]
    assert fetched and all("Write the schema" not in (r.response().text() if r.response() else "") for r in fetched)
    _screenshot(page, "console-tasks.png")
    assert not watched.problems, watched.problems


# What must never stick out of a 420 px window: the header and its buttons, the tabs, the lists.
_OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  const page = document.documentElement.scrollWidth;
  if (page > width) out.push(`page scrolls sideways: ${page}px`);
  const watched = ".bar > *, .tabs button, .side, .timeline-head > *, #timeline, #detail, #composer > *";
  for (const el of document.querySelectorAll(watched)) {
    if (el.offsetParent === null) continue;  // not shown
    const box = el.getBoundingClientRect();
    const name = el.id || el.className || el.tagName;
    if (box.left < 0 || box.right > width + 0.5) out.push(`${name} spans ${box.left}..${box.right}px`);
    if (el.tagName === "BUTTON" && el.scrollWidth > el.clientWidth + 1) out.push(`button ${el.textContent} is clipped`);
  }
  return out;
}"""


def test_at_420_px_nothing_overflows_and_urgent_search_and_the_audit_actor_read_well(
    owner: Owner, watched: Watched
) -> None:
    page = watched.page
    page.set_viewport_size({"width": 420, "height": 860})
    alice = owner.agents["alice"]
    alice.messages.send(to="bob", topic="Build broken", payload="main fails since 10:02", priority="urgent")
    alice.messages.send(to="bob", topic="Lunch", payload="pizza or sushi? " * 20)
    alice.messages.send(to="bob", topic="Auth API", payload="the refresh token endpoint is live")

    sign_in_and_import(page, owner)
    _row(page, "Auth API").wait_for(timeout=DEADLINE_MS)
    # Urgent shows in the list, not only in the detail pane; a normal message has no marker.
    expect(_row(page, "Build broken").locator(".priority")).to_have_text("urgent")
    assert _row(page, "Lunch").locator(".priority").count() == 0

    # The detail pane gets the window's width, so words wrap as words, not letter by letter.
    _row(page, "Lunch").click()
    expect(page.locator("#detail .payload")).to_contain_text("pizza or sushi?")
    assert page.locator("#detail").bounding_box()["width"] > 360
    assert page.locator("#switch-project").is_visible()
    # The agents list stays on screen, above the tabs.
    expect(page.locator("#agents li[data-agent=alice]")).to_be_visible()
    assert page.evaluate(_OVERFLOW) == []
    _screenshot(page, "console-420px.png")

    # Search filters the decrypted timeline in this page; no request carries the words.
    before = len(watched.requests)
    page.fill("#timeline-search", "REFRESH endpoint")
    expect(page.locator("#timeline .row")).to_have_count(1)
    expect(page.locator("#timeline-count")).to_have_text("1 of 3 messages found")
    assert not any("refresh" in f"{r.url} {r.post_data or ''}".lower() for r in watched.requests[before:])
    page.fill("#timeline-search", "")
    expect(page.locator("#timeline .row")).to_have_count(3)

    # The audit log names the owner by email, not by a user id.
    page.click("#tabs button[data-tab=audit]")
    actor = page.locator("#audit-rows tr", has_text="project.create").locator("td").nth(1)
    expect(actor).to_have_text(f"{owner.email} (you)")
    assert page.evaluate(_OVERFLOW) == []
    assert not watched.problems, watched.problems
