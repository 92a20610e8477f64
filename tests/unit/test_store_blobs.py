"""The CDN's volume: a committed blob is durable, complete and never replaced."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nexysync_server.store.blobs import Blobs

PROJECT = "01JAAAAAAAAAAAAAAAAAAAAAAA"
FILE = "01JBBBBBBBBBBBBBBBBBBBBBBB"


def test_commit_flushes_the_content_and_its_name_before_it_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blobs = Blobs(tmp_path)
    handle, temp = blobs.open_temp(PROJECT, FILE)
    with handle:
        handle.write(b"sealed bytes")
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    blobs.commit(temp, PROJECT, FILE)

    final = blobs.path(PROJECT, FILE)
    assert final.read_bytes() == b"sealed bytes"
    # The content (under its temp name) first, then the directory that now names it.
    assert synced == [str(temp), str(final.parent)]
    assert not temp.exists()


def test_commit_keeps_content_of_the_same_size_and_replaces_content_of_another(tmp_path: Path) -> None:
    blobs = Blobs(tmp_path)

    def commit(content: bytes) -> Path:
        handle, temp = blobs.open_temp(PROJECT, FILE)
        with handle:
            handle.write(content)
        blobs.commit(temp, PROJECT, FILE)
        assert not temp.exists()
        return blobs.path(PROJECT, FILE)

    # A whole upload that got there first is never replaced by another of the same size...
    assert commit(b"first").read_bytes() == b"first"
    assert commit(b"again").read_bytes() == b"first"
    # ...while content of another size cannot be an upload of this file: it is left over.
    assert commit(b"the new upload").read_bytes() == b"the new upload"
