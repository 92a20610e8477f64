"""mypy --strict is clean on the SDK (issue 5), the MCP server, the CLI, the API server and the generator.

It also checks the types a user's code sees: the raw-response views and a thread's ``undecryptable``
type-check where used as documented, and misuse of them is reported where it is made.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import nexysync_generated

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "sdk": ROOT / "sdk" / "nexysync",
    "mcp_server": ROOT / "mcp_server" / "nexysync_mcp",
    "cli": ROOT / "mcp_server" / "nexysync_cli",
    "a2a": ROOT / "mcp_server" / "nexysync_a2a",
    "server": ROOT / "server" / "nexysync_server",
    "generator": ROOT / "scripts" / "nexysync_codegen",
}


def run_mypy_strict(*targets: Path) -> subprocess.CompletedProcess[str]:
    """Run ``mypy --strict`` on files or packages the way the project's own check does."""
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed in this environment (tox's py env installs it)")
    # Editable installs use import hooks that mypy cannot follow: point it at the source
    # directories of the generated package and of the SDK, wherever they live.
    generated_root = Path(nexysync_generated.__file__).resolve().parents[1]
    env = {**os.environ, "MYPYPATH": os.pathsep.join([str(generated_root), str(ROOT / "sdk")])}
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", *map(str, targets)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
    )


@pytest.mark.timeout(180)
@pytest.mark.parametrize("distribution", sorted(PACKAGES))
def test_package_is_mypy_strict_clean(distribution: str) -> None:
    result = run_mypy_strict(PACKAGES[distribution])
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, f"mypy --strict {distribution} failed (exit {result.returncode}):\n{output}"


#: Documented uses: every line must type-check, and ``assert_type`` pins the exact types.
GOOD_USE = """
    from typing import Any, assert_type

    from pydantic import JsonValue

    from nexysync import AsyncClient, Client, DecryptedThread, RawResponse, UndecryptableRecord
    from nexysync_generated.models import File, Thread


    def sync_use(client: Client) -> None:
        raw = client.with_raw_response.messages.send("bob", topic="t", payload="p", metadata={"k": 1})
        assert_type(raw, RawResponse)
        assert_type(raw.status_code, int)
        assert_type(client.with_raw_response.messages.get("01J", mark_read=False), RawResponse)
        assert_type(client.with_raw_response.messages.list(status="unread").first_page(), RawResponse)
        assert_type(client.with_raw_response.kv.put("k", "v", if_match=3), RawResponse)
        assert_type(client.with_raw_response.auth.logout(), RawResponse)
        assert_type(client.with_raw_response.project_agents.list("p", limit=5).first_page(), RawResponse)
        assert_type(client.with_raw_response.call("me_get"), RawResponse)
        # Every resource has its raw view, files and refs included; a thread's is its first page.
        assert_type(client.with_raw_response.files.create(name="a.txt", size=100), RawResponse)
        assert_type(client.with_raw_response.refs.get("01J"), RawResponse)
        assert_type(client.with_raw_response.messages.thread("01J"), RawResponse)
        assert_type(client.with_raw_response.projects.messages("p", from_="bob").first_page(), RawResponse)
        thread = client.messages.thread("01J")
        assert_type(thread, DecryptedThread)
        assert_type(thread.undecryptable, list[UndecryptableRecord])
        assert_type(thread.root_id, str)
        generated: Thread = thread  # still the generated model, for code that takes one
        for skipped in thread.undecryptable:
            assert_type(skipped.raw, dict[str, Any])
            print(skipped.record, skipped.field, generated.data)
        file: File = client.files.upload("a.txt", name="a.txt")
        print(file.id)
        # Honest plaintext types: metadata is any JSON value once decrypted, not the wire's str.
        message = client.messages.get("01J")
        assert_type(message.metadata, JsonValue)
        assert_type(message.payload, str)
        assert_type(client.kv.get("k").value, str)


    async def async_use(client: AsyncClient) -> None:
        raw = await client.with_raw_response.messages.send("bob", topic="t", payload="p")
        assert_type(raw, RawResponse)
        assert_type(await client.with_raw_response.kv.list(prefix="a").first_page(), RawResponse)
        assert_type(await client.with_raw_response.refs.share("title", "code", language="python"), RawResponse)
        assert_type(await client.with_raw_response.call_raw("me_get"), RawResponse)
        thread = await client.messages.thread("01J")
        assert_type(thread.undecryptable, list[UndecryptableRecord])
"""

#: Misuses, each marked with the mypy error code it must be reported with on its line (and none elsewhere).
BAD_USE = """
    from nexysync import AsyncClient, Client, RawResponse
    from nexysync_generated.models import Message


    def sync_misuse(client: Client) -> None:
        client.with_raw_response.messages.send("bob", topic=1, payload="p")  # E: arg-type
        client.with_raw_response.messages.send("bob", payload="p")  # E: call-arg
        client.with_raw_response.messages.sned("bob", topic="t", payload="p")  # E: attr-defined
        message: Message = client.with_raw_response.messages.get("01J")  # E: assignment
        client.with_raw_response.messages.wait(reply_to="01J")  # E: attr-defined
        client.with_raw_response.files.upload("a.txt", name="a.txt")  # E: attr-defined
        client.with_raw_response.files.download("01J", to="a.txt")  # E: attr-defined
        client.with_raw_response.messages.wait_for("01J")  # E: attr-defined
        for page in client.with_raw_response.messages.list():  # E: attr-defined
            print(page)
        client.with_raw_response.nothing  # E: attr-defined
        thread = client.messages.thread("01J")
        thread.undecryptable.append("not a record")  # E: arg-type
        thread.undecryptables  # E: attr-defined


    async def async_misuse(client: AsyncClient) -> None:
        raw: RawResponse = client.with_raw_response.messages.send("bob", topic="t", payload="p")  # E: assignment
        await client.with_raw_response.kv.put("k", value=3)  # E: arg-type
        first: RawResponse = client.with_raw_response.kv.list().first_page()  # E: assignment
"""


@pytest.mark.timeout(180)
def test_raw_views_and_thread_results_are_typed_for_users(tmp_path: Path) -> None:
    good, bad = tmp_path / "good_use.py", tmp_path / "bad_use.py"
    good.write_text(textwrap.dedent(GOOD_USE))
    bad.write_text(textwrap.dedent(BAD_USE))
    result = run_mypy_strict(good, bad)
    output = (result.stdout + result.stderr).strip()
    errors = re.findall(r"^(.*?):(\d+): error: .*\[([a-z-]+)\]$", output, re.MULTILINE)
    assert all(Path(path).name == bad.name for path, _, _ in errors), f"documented uses fail to type-check:\n{output}"
    expected = {
        (number, match.group(1))
        for number, line in enumerate(bad.read_text().splitlines(), start=1)
        if (match := re.search(r"# E: ([a-z-]+)$", line))
    }
    assert {(int(line), code) for _, line, code in errors} == expected, output
