"""The CDN's volume: a committed blob is durable, complete and never replaced."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nexysync_server.cdn.blobs import BlobExists, Blobs

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


def test_commit_never_replaces_stored_content(tmp_path: Path) -> None:
    blobs = Blobs(tmp_path)
    for content in (b"first", b"second"):
        handle, temp = blobs.open_temp(PROJECT, FILE)
        with handle:
            handle.write(content)
        if content == b"first":
            blobs.commit(temp, PROJECT, FILE)
        else:
            with pytest.raises(BlobExists):
                blobs.commit(temp, PROJECT, FILE)
            assert not temp.exists()
    assert blobs.path(PROJECT, FILE).read_bytes() == b"first"
