"""Lease keys of workspace paths: normalised, agreed by every holder of the project key, unreadable to the server."""

from __future__ import annotations

from pathlib import Path

import pytest

from nexysync.crypto import KeyRing, new_key
from nexysync.paths import PathKeys, normalise


def test_paths_are_normalised_relative_to_the_workspace(tmp_path: Path) -> None:
    (tmp_path / "src" / "auth").mkdir(parents=True)
    assert normalise("src/auth", tmp_path) == "src/auth/"  # an existing directory
    assert normalise("src/auth/login.py", tmp_path) == "src/auth/login.py"
    assert normalise("./src/../src/new/", tmp_path) == "src/new/"  # a directory named so
    assert normalise(tmp_path / "README.md", tmp_path) == "README.md"
    with pytest.raises(ValueError, match="outside"):
        normalise("../elsewhere.py", tmp_path)
    with pytest.raises(ValueError, match="workspace itself"):
        normalise(".", tmp_path)


def test_two_agents_with_the_project_key_agree_and_other_projects_or_keys_do_not() -> None:
    key = new_key()
    mine, theirs = PathKeys(KeyRing([key]), "p1"), PathKeys(KeyRing([key, new_key()]), "p1")
    assert mine.of("src/auth/login.py") == theirs.of("src/auth/login.py")  # a later key changes nothing
    assert mine.key("src/a.py") != PathKeys(KeyRing([key]), "p2").key("src/a.py")
    assert mine.key("src/a.py") != PathKeys(KeyRing([new_key()]), "p1").key("src/a.py")


def test_a_directory_is_an_ancestor_of_what_is_under_it_and_never_of_a_sibling() -> None:
    keys = PathKeys(KeyRing([new_key()]), "p")
    file_key, ancestors = keys.of("src/auth/login.py")
    assert ancestors == [keys.key("src/"), keys.key("src/auth/")]
    assert keys.key("src/authz/") not in ancestors
    directory, above = keys.of("src/auth/")
    assert above == [keys.key("src/")] and directory in ancestors and file_key != directory
    assert "src" not in file_key and len(file_key) == 64
