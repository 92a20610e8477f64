"""The key file (nexysync.keyfile): finding, reading and writing ``.nexysync/key``, env vars, clear errors."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nexysync import Client, KeyFileError, find_key_file, keyfile, load_key_file
from nexysync.crypto import key_id

KEY = bytes(range(32))
OLD_KEY = bytes(range(1, 33))
B64 = base64.b64encode(KEY).decode()
ENV_NAMES = ("NEXYSYNC_API_URL", "NEXYSYNC_API_KEY", "NEXYSYNC_ENC_KEY")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run each test without the developer's own NEXYSYNC_* variables."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def write_key(directory: Path, **fields: Any) -> Path:
    """Write ``directory/.nexysync/key`` (mode 0600, as ``nexysync init`` does) and return its path."""
    path = directory / ".nexysync" / "key"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fields))
    os.chmod(path, 0o600)
    return path


def minimal() -> dict[str, Any]:
    """Return the smallest key file that works."""
    return {"api_key": "nsync_alice_" + "a" * 40, "enc_key": B64, "api_url": "http://127.0.0.1:9"}


def test_the_key_file_is_found_upward_from_the_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_key(tmp_path, **minimal())
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert find_key_file() == path.resolve()
    config = load_key_file()
    assert config.keys == (KEY,) and config.project_id is None and config.path == path.resolve()
    client = Client.from_key_file()
    assert client.base_url == "http://127.0.0.1:9"
    assert client.key_ring is not None and client.key_ring.current_id == key_id(KEY)


def test_a_full_key_file_gives_project_agent_and_keyring(tmp_path: Path) -> None:
    path = write_key(
        tmp_path,
        **minimal(),
        agent_name="alice",
        custom_enc_key=True,
        project_id="01JAAAAAAAAAAAAAAAAAAAAAAA",
        keyring=[base64.b64encode(OLD_KEY).decode(), B64],
    )
    config = load_key_file(path)
    assert config.keys == (OLD_KEY, KEY)
    assert config.key_ring().current_id == key_id(KEY)
    assert (config.agent_name, config.custom_enc_key, config.project_id) == (
        "alice",
        True,
        "01JAAAAAAAAAAAAAAAAAAAAAAA",
    )


def test_env_vars_override_the_file_and_work_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_key(tmp_path, **minimal())
    monkeypatch.setenv("NEXYSYNC_API_URL", "http://elsewhere.test")
    assert load_key_file(path).api_url == "http://elsewhere.test"
    monkeypatch.chdir(tmp_path / ".nexysync")
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    monkeypatch.setattr("nexysync.keyfile.find_key_file", lambda start=None: None)
    monkeypatch.setenv("NEXYSYNC_API_KEY", "k")
    monkeypatch.setenv("NEXYSYNC_ENC_KEY", B64)
    config = load_key_file()
    assert (config.api_key, config.api_url, config.path) == ("k", "http://elsewhere.test", None)


def test_no_key_file_and_no_env_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("nexysync.keyfile.find_key_file", lambda start=None: None)
    with pytest.raises(KeyFileError, match=r"no \.nexysync/key found .* NEXYSYNC_API_URL"):
        Client.from_key_file()
    with pytest.raises(KeyFileError, match="does not exist"):
        load_key_file(tmp_path / "nope")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"enc_key": None}, "lacks enc_key"),
        ({"api_key": None, "api_url": None}, "lacks api_key, api_url"),
        ({"enc_key": "not base64!!"}, "enc_key .* not valid standard base64"),
        ({"enc_key": base64.b64encode(b"short").decode()}, "must decode to 32 bytes, got 5"),
        ({"keyring": ["%%%"]}, r"keyring\[0\] .* not valid standard base64"),
        ({"keyring": "one"}, "must be a list"),
    ],
)
def test_malformed_key_files_give_clear_errors(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    fields = {**minimal(), **change}
    path = write_key(tmp_path, **{k: v for k, v in fields.items() if v is not None})
    with pytest.raises(KeyFileError, match=message):
        load_key_file(path)


def test_a_key_file_that_is_not_json_is_named(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text("{not json")
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match=f"{path} is not valid JSON"):
        load_key_file(path)


def test_a_bad_env_key_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXYSYNC_ENC_KEY", base64.b64encode(b"x" * 16).decode())
    with pytest.raises(KeyFileError, match="NEXYSYNC_ENC_KEY: a project key must decode to 32 bytes"):
        Client(base_url="http://x.test", api_key="k")
    monkeypatch.delenv("NEXYSYNC_ENC_KEY")
    with pytest.raises(KeyFileError, match="NEXYSYNC_API_URL"):
        Client(api_key="k")


posix_only = pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX owners and modes only")


@posix_only
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o660])
def test_a_key_file_others_may_read_or_change_is_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    # As `git clone` checks out a committed .nexysync/key: mode 0644, so anyone may read it.
    path = write_key(tmp_path, **minimal())
    os.chmod(path, mode)
    with pytest.raises(KeyFileError) as caught:
        load_key_file(path)
    assert f"has mode {mode:04o}" in str(caught.value) and f"chmod 600 {path}" in str(caught.value)
    with pytest.raises(KeyFileError, match="chmod 600"):
        Client.from_key_file(path)


@posix_only
def test_a_key_file_found_upward_is_checked_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_key(tmp_path, **minimal())
    os.chmod(path, 0o644)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(KeyFileError, match="other users may read or change it"):
        load_key_file()
    os.chmod(path, 0o600)
    assert load_key_file().api_url == "http://127.0.0.1:9"
    os.chmod(path, 0o400)
    assert load_key_file().keys == (KEY,), "read-only for its owner is private too"


@posix_only
def test_a_key_file_of_another_user_is_refused_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_key(tmp_path, **minimal())
    real_uid = os.getuid()
    # Checked against the current user: a process running as another uid sees this file as foreign.
    monkeypatch.setattr(os, "getuid", lambda: real_uid + 1)
    with pytest.raises(KeyFileError) as caught:
        load_key_file(path)
    message = str(caught.value)
    assert f"belongs to another user (uid {real_uid}, you are {real_uid + 1})" in message
    assert f"chown $(id -u) {path}" in message and "delete it" in message


def test_where_posix_modes_do_not_exist_the_check_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_key(tmp_path, **minimal())
    os.chmod(path, 0o644)
    monkeypatch.delattr(os, "getuid", raising=False)
    assert load_key_file(path).keys == (KEY,)


def test_the_key_file_module_loads_neither_the_clients_nor_the_crypto() -> None:
    # What keeps a hook fast: it reads key files through this module on every prompt.
    code = (
        "import sys, nexysync.keyfile as k; "
        "print(sorted(m for m in ('httpx', 'pydantic', 'cryptography', 'nexysync._client') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_written_key_file_reads_back_private_and_a_rotation_keeps_its_other_fields(tmp_path: Path) -> None:
    old, new = bytes(range(32)), bytes(range(1, 33))
    fields = keyfile.key_file_fields(
        api_key="nsync_a_" + "0" * 40, api_url="http://api/v1", project_id="P1", keys=[old], agent_name="a"
    )
    path = keyfile.write_key_file(tmp_path, fields)
    assert path == tmp_path / ".nexysync" / "key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert keyfile.load_key_file(path).keys == (old,)

    assert keyfile.rewrite_key_ring(path, "P1", [old, new])
    loaded = keyfile.load_key_file(path)
    assert loaded.keys == (old, new) and loaded.agent_name == "a" and loaded.project_id == "P1"
    # A key file of another project is left alone.
    assert not keyfile.rewrite_key_ring(path, "P2", [new])
    assert keyfile.load_key_file(path).keys == (old, new)


def test_the_gitignore_entry_is_added_once(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("build/")
    assert keyfile.add_to_gitignore(tmp_path)
    assert not keyfile.add_to_gitignore(tmp_path)
    assert (tmp_path / ".gitignore").read_text().splitlines()[-1] == ".nexysync/"


def test_a_key_file_without_an_agent_holds_the_keys_and_takes_the_api_key_from_the_environment(tmp_path: Path) -> None:
    from nexysync.crypto import new_key
    from nexysync.keyfile import key_file_fields, load_key_file, write_key_file

    key = new_key()
    fields = key_file_fields(api_key=None, api_url="http://x", project_id="P1", keys=[key], agent_name=None)
    assert "api_key" not in fields and "agent_name" not in fields
    path = write_key_file(tmp_path, fields)
    loaded = load_key_file(path, env={"NEXYSYNC_API_KEY": "nsync_web_" + "0" * 40})
    assert (loaded.keys, loaded.project_id, loaded.agent_name) == ((key,), "P1", None)
