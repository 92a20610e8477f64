"""The console's files as the server sends them: a strict CSP, no inline code, nothing from elsewhere."""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

STATIC = resources.files("nexysync_server.console").joinpath("static")


def _sources() -> dict[str, str]:
    return {entry.name: entry.read_text(encoding="utf-8") for entry in STATIC.iterdir() if entry.is_file()}


def test_the_console_is_served_under_a_strict_content_security_policy(dev_server: Any) -> None:
    page = httpx.get(f"{dev_server.base_url}/console/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = dict(part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and policy["base-uri"] == "'none'"
    assert not [v for v in policy.values() if "unsafe" in v or "*" in v]
    assert page.headers["x-content-type-options"] == "nosniff"

    module = httpx.get(f"{dev_server.base_url}/console/app.js")
    assert module.status_code == 200 and module.headers["content-type"].startswith("text/javascript")
    assert module.text == _sources()["app.js"]
    # Without the slash, relative URLs would resolve outside /console/: redirected.
    bare = httpx.get(f"{dev_server.base_url}/console")
    assert bare.status_code == 301 and bare.headers["location"] == "console/"
    missing = httpx.get(f"{dev_server.base_url}/console/secrets.txt")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


def test_the_console_has_no_inline_script_no_eval_no_html_sinks_and_no_third_party_url() -> None:
    sources = _sources()
    assert {"index.html", "app.js", "crypto.js", "style.css"} <= set(sources)
    page = sources["index.html"]
    assert re.findall(r"<script\b[^>]*>", page) == ['<script type="module" src="app.js">']
    assert not re.search(r"\son[a-z]+\s*=", page), "inline event handler"
    assert not re.search(r"\sstyle\s*=", page), "inline style"
    for name, text in sources.items():
        assert not re.search(r"https?://", text), f"{name} names another origin"
        if name.endswith(".js"):
            for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
                assert sink not in text, f"{name} uses {sink}"
