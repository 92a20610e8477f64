"""Unit tests: ``ns_file`` reads only inside the workspace and writes only into ``.nexysync/downloads/``.

Each test plays what a prompt-injected teammate could ask the AI for: upload the owner's refresh
token or an agent key, overwrite ``~/.bashrc``, write through a link.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from nexysync.crypto import encrypted_file_size
from nexysync_generated.models import File
from nexysync_mcp.agent import AgentLink
from nexysync_mcp.tools import Toolbox
from nexysync_mcp.workspace import DOWNLOADS, ENV_UPLOAD_ROOTS

FILE_ID = "01KQ7Z" + "7" * 20
NOW = "2026-01-01T00:00:00Z"
CONTENT = b"\x89PNG\x00 not inline"
posix_links = pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")


class FakeFiles:
    """``client.files`` that records uploads and serves one binary file (always saved, never inline)."""

    def __init__(self, name: str = "report.bin") -> None:
        self.uploaded: list[bytes] = []
        self.meta = File.model_validate(
            {
                "id": FILE_ID,
                "project_id": "01KQ7Z" + "0" * 20,
                "name": name,
                "size": encrypted_file_size(len(CONTENT)),
                "content_type": None,
                "status": "ready",
                "from": "eve",
                "created_at": NOW,
                "expires_at": NOW,
                "download_url": "http://cdn/x",
            }
        )

    async def upload(self, source: Any, *, name: str, content_type: str | None) -> File:
        self.uploaded.append(source.read())
        return self.meta.model_copy(update={"name": name})

    async def get(self, file_id: str) -> File:
        return self.meta

    async def download(self, file_id: str, *, to: Any) -> File:
        if isinstance(to, str | Path):
            # As the SDK does: a temp file beside the target, renamed over it.
            temp = Path(to).with_name(f".{Path(to).name}.part")
            temp.write_bytes(CONTENT)
            os.replace(temp, to)
        else:
            to.write(CONTENT)
        return self.meta


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A home with the CLI's credentials and a .bashrc, a workspace with its key file, the MCP server's cwd there."""
    home = tmp_path / "home"
    config = home / ".config" / "nexysync"
    config.mkdir(parents=True)
    (config / "credentials.json").write_text('{"sessions": {"x": {"refresh_token": "SECRET"}}}')
    (config / "projects").mkdir()
    (config / "projects" / "P.json").write_text('{"keys": ["SECRET"]}')
    (home / ".bashrc").write_text("# mine\n")
    workspace = home / "code" / "api"
    (workspace / ".nexysync").mkdir(parents=True)
    (workspace / ".nexysync" / "key").write_text('{"api_key": "SECRET"}')
    (workspace / ".nexysync" / "tail.json").write_text("{}")
    (workspace / "notes.txt").write_text("shared notes")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "data.csv").write_text("a,b\n")
    for name in ("NEXYSYNC_CONFIG_DIR", "XDG_CONFIG_HOME", ENV_UPLOAD_ROOTS):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(workspace)
    files = FakeFiles()
    link = AgentLink(lambda entry: asyncio.sleep(0))
    link.client = SimpleNamespace(files=files)  # type: ignore[assignment]
    return SimpleNamespace(
        home=home, config=config, workspace=workspace, outside=outside, files=files, tools=Toolbox(link), link=link
    )


async def call(machine: SimpleNamespace, **arguments: Any) -> tuple[str, bool]:
    reply = await machine.tools.call("ns_file", arguments)
    return reply.text, reply.is_error


# -- upload ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["~/.config/nexysync/credentials.json", "~/.config/nexysync/projects/P.json", "../../.bashrc", "~/.bashrc"],
)
async def test_an_injected_upload_of_a_file_outside_the_workspace_is_refused(
    machine: SimpleNamespace, path: str
) -> None:
    text, is_error = await call(machine, action="upload", path=path)
    assert is_error and text.startswith(f"Refusing to upload {path!r}: it resolves to ")
    assert f"outside the workspace {machine.workspace}" in text and ENV_UPLOAD_ROOTS in text and "\n" not in text
    assert machine.files.uploaded == []


async def test_an_absolute_path_elsewhere_is_refused(machine: SimpleNamespace) -> None:
    text, is_error = await call(machine, action="upload", path=str(machine.outside / "data.csv"))
    assert is_error and "outside the workspace" in text and machine.files.uploaded == []


@pytest.mark.parametrize("path", [".nexysync/key", ".nexysync/tail.json", "./.nexysync/../.nexysync/key"])
async def test_the_agent_key_file_is_never_uploaded(machine: SimpleNamespace, path: str) -> None:
    text, is_error = await call(machine, action="upload", path=path)
    assert is_error and "it is in a .nexysync folder" in text and "never leave this machine" in text
    assert machine.files.uploaded == []


@posix_links
async def test_a_link_in_the_workspace_to_a_secret_is_judged_by_its_target(machine: SimpleNamespace) -> None:
    (machine.workspace / "innocent.txt").symlink_to(machine.config / "credentials.json")
    (machine.workspace / "keys").symlink_to(machine.workspace / ".nexysync")
    text, is_error = await call(machine, action="upload", path="innocent.txt")
    assert is_error and "outside the workspace" in text
    text, is_error = await call(machine, action="upload", path="keys/key")
    assert is_error and "it is in a .nexysync folder" in text
    assert machine.files.uploaded == []


async def test_a_file_in_the_workspace_uploads(machine: SimpleNamespace) -> None:
    text, is_error = await call(machine, action="upload", path="notes.txt")
    assert not is_error and json.loads(text)["name"] == "notes.txt"
    assert machine.files.uploaded == [b"shared notes"]


async def test_the_user_may_allow_more_folders_but_never_the_secrets(
    machine: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_UPLOAD_ROOTS, os.pathsep.join([str(machine.outside), "~"]))
    text, is_error = await call(machine, action="upload", path=str(machine.outside / "data.csv"))
    assert not is_error, text
    text, is_error = await call(machine, action="upload", path="~/.bashrc")
    assert not is_error, text
    assert machine.files.uploaded == [b"a,b\n", b"# mine\n"]
    text, is_error = await call(machine, action="upload", path="~/.config/nexysync/credentials.json")
    assert is_error and "the nexysync CLI's config folder" in text
    assert len(machine.files.uploaded) == 2


async def test_the_workspace_is_the_key_files_even_from_another_cwd(
    machine: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Started with --key-file from elsewhere: relative paths and the limit follow the key file's workspace.
    machine.link.source = str(machine.workspace / ".nexysync" / "key")
    monkeypatch.chdir(machine.outside)
    text, is_error = await call(machine, action="upload", path="notes.txt")
    assert not is_error and machine.files.uploaded == [b"shared notes"]
    text, is_error = await call(machine, action="upload", path="data.csv")
    assert is_error and text.startswith("No file at 'data.csv'")


# -- read (download) ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["~/.bashrc", "../../../.bashrc", "../.bashrc", ".nexysync/downloads/../../x"])
async def test_an_injected_download_over_a_file_outside_the_downloads_is_refused(
    machine: SimpleNamespace, path: str
) -> None:
    text, is_error = await call(machine, action="read", id=FILE_ID, path=path, overwrite=True)
    assert is_error and text.startswith(f"Refusing to save to {path!r}: ns_file read saves only under ")
    assert (machine.home / ".bashrc").read_text() == "# mine\n"
    assert not (machine.workspace / "x").exists()


@posix_links
async def test_a_download_through_a_link_is_refused_even_with_overwrite(machine: SimpleNamespace) -> None:
    downloads = machine.workspace / DOWNLOADS
    downloads.mkdir()
    (downloads / "report.bin").symlink_to(machine.home / ".bashrc")
    text, is_error = await call(machine, action="read", id=FILE_ID, overwrite=True)
    assert is_error and "it is a link, never written through" in text
    (downloads / "sub").symlink_to(machine.home)
    text, is_error = await call(machine, action="read", id=FILE_ID, path="sub/.bashrc", overwrite=True)
    assert is_error and "it is a link" in text
    assert (machine.home / ".bashrc").read_text() == "# mine\n"


@posix_links
async def test_a_downloads_folder_that_is_a_link_is_refused(machine: SimpleNamespace) -> None:
    (machine.workspace / DOWNLOADS).symlink_to(machine.home)
    text, is_error = await call(machine, action="read", id=FILE_ID, path=".bashrc", overwrite=True)
    assert is_error and "Refusing to save under" in text and "never through a link" in text
    assert (machine.home / ".bashrc").read_text() == "# mine\n"


async def test_overwrite_replaces_a_hard_link_instead_of_writing_into_it(machine: SimpleNamespace) -> None:
    downloads = machine.workspace / DOWNLOADS
    downloads.mkdir()
    os.link(machine.home / ".bashrc", downloads / "report.bin")
    text, is_error = await call(machine, action="read", id=FILE_ID, overwrite=True)
    assert not is_error, text
    assert (downloads / "report.bin").read_bytes() == CONTENT
    assert (machine.home / ".bashrc").read_text() == "# mine\n"


async def test_paths_under_the_downloads_folder_are_accepted(machine: SimpleNamespace) -> None:
    downloads = machine.workspace / DOWNLOADS
    for path, expected in (
        (None, downloads / "report.bin"),
        ("sub/dir/copy.bin", downloads / "sub" / "dir" / "copy.bin"),
        (".nexysync/downloads/again.bin", downloads / "again.bin"),
        (str(downloads / "abs.bin"), downloads / "abs.bin"),
        ("sub/", downloads / "sub" / "report.bin"),
    ):
        arguments = {"action": "read", "id": FILE_ID} | ({"path": path} if path else {})
        text, is_error = await call(machine, **arguments)
        assert not is_error and json.loads(text)["saved_to"] == str(expected), text
        assert expected.read_bytes() == CONTENT
