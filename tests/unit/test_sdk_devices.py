"""Device boxes and attestations: what a paired machine opens, and what a malicious server cannot make it open."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nexysync import DecryptionError
from nexysync.crypto import new_key
from nexysync.devices import (
    Device,
    adopt_box,
    attest,
    is_attested,
    key_file_device,
    merge_rings,
    new_device,
    open_ring,
    seal_ring,
)
from nexysync.keyfile import key_file_fields, write_key_file

PROJECT = "01JPROJECT0000000000000000"


def device(device_id: str = "01JDEVICE00000000000000000") -> Device:
    return Device(device_id, "nsdev_" + "a" * 40, new_device())


def test_a_ring_sealed_to_a_device_opens_there_only() -> None:
    old, new = new_key(), new_key()
    mine, other = device(), device("01JDEVICE00000000000000001")
    sealed = seal_ring([old, new], project_id=PROJECT, device_id=mine.id, public_key=mine.public_key)
    assert open_ring(sealed, project_id=PROJECT, device=mine, held=[old]) == [old, new]
    assert old.hex() not in sealed and new.hex() not in sealed
    with pytest.raises(DecryptionError):
        open_ring(sealed, project_id=PROJECT, device=Device(mine.id, mine.token, other.private_key), held=[old])
    # Bound to its project and device: the server cannot hand it to another.
    with pytest.raises(DecryptionError):
        open_ring(sealed, project_id="01JOTHERPROJECT00000000000", device=mine, held=[old])
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(DecryptionError):
        open_ring(tampered, project_id=PROJECT, device=mine, held=[old])


def test_a_ring_that_carries_none_of_the_held_keys_is_refused() -> None:
    # Anyone can seal to a public key, the server included; only a key holder can include a held key.
    mine = device()
    forged = seal_ring([new_key()], project_id=PROJECT, device_id=mine.id, public_key=mine.public_key)
    with pytest.raises(DecryptionError, match="not sealed by a holder of the project key"):
        open_ring(forged, project_id=PROJECT, device=mine, held=[new_key()])


def test_an_attestation_holds_for_the_key_that_made_it_and_nothing_else() -> None:
    first, second = new_key(), new_key()
    mine = device()
    listed = {
        "id": mine.id,
        "public_key": mine.public_key,
        "attestation": attest([first], PROJECT, mine.id, mine.public_key),
    }
    assert is_attested([first, second], PROJECT, listed)  # still valid after a rotation
    assert not is_attested([second], PROJECT, listed)
    # The server swaps in a public key of its own: the attestation no longer holds.
    assert not is_attested([first], PROJECT, {**listed, "public_key": device().public_key})
    assert not is_attested([first], PROJECT, {**listed, "id": "01JDEVICE00000000000000009"})
    assert not is_attested([first], "01JOTHERPROJECT00000000000", listed)
    assert not is_attested([first], PROJECT, {**listed, "attestation": "garbage"})


def test_adopting_a_box_rewrites_the_key_file_ring_and_keeps_the_rest(tmp_path: Path) -> None:
    old, new = new_key(), new_key()
    mine = device()
    fields = key_file_fields(
        api_key="nsync_web_" + "0" * 40, api_url="http://x", project_id=PROJECT, keys=[old], agent_name="web"
    )
    path = write_key_file(tmp_path, {**fields, "device": mine.to_json()})
    assert key_file_device(path) == mine
    assert adopt_box(path, None) is None
    sealed = seal_ring([old, new], project_id=PROJECT, device_id=mine.id, public_key=mine.public_key)
    assert adopt_box(path, sealed) == [old, new]
    data = json.loads(path.read_text())
    assert data["api_key"] == fields["api_key"] and data["device"] == mine.to_json()
    assert data["enc_key"] == data["keyring"][-1] != fields["enc_key"]  # the new key encrypts now
    assert len(data["keyring"]) == 2 and path.stat().st_mode & 0o777 == 0o600
    assert adopt_box(path, sealed) is None  # nothing new the second time


def test_merge_keeps_local_only_keys_older_and_the_imported_newest_last() -> None:
    a, b, c = new_key(), new_key(), new_key()
    assert merge_rings([a, b], [b, c]) == [a, b, c]
    assert merge_rings([a, c], [b]) == [a, c, b]
    assert repr(device()).count("nsdev_") == 0
