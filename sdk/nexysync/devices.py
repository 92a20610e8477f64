"""A paired machine's device: its X25519 key pair, the attestation of its registration, and the ring sealed to it.

A rotation reaches other machines without anyone copying a key: each paired machine (a device)
holds an X25519 key pair whose public half is registered under the project, and the machine that
rotates seals the whole key ring to every device; each device reads its own box with its token
and opens it here.

Two checks keep a malicious server out, since it stores and hands out every piece:

- **Attestation.** A device is registered with ``<kid>.<HMAC>`` over the project, the device id
  and its public key, under a key derived from a project key (:func:`attest`). The server holds
  no project key, so it cannot register a device of its own that :func:`is_attested` accepts,
  and a rotating machine seals only to attested devices.
- **Continuity.** A box is opened only when its ring holds a key the device already holds
  (:func:`open_ring`): anyone may seal to a public key, but only a holder of the project key can
  seal a ring that carries it, so the server cannot hand a device a key of its choosing.

The box is ``base64url(ephemeral public key 32 ‖ nonce 12 ‖ AES-256-GCM ciphertext)``: ECDH of
an ephemeral key with the device's, HKDF-SHA256 over both public keys, the associated data
binding the project and the device. The plaintext is ``{"keys": [<standard base64>, ...]}``,
oldest first, as in the key export line.

The key file holds the device as ``{"id", "token", "private_key"}`` under ``device``
(:data:`DEVICE_FIELD`), beside the keys it protects, with the same 0600 mode.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from nexysync._errors import DecryptionError, KeyFileError
from nexysync.crypto import _b64url, _unb64url, decode_key, key_id
from nexysync.keyfile import encode_key, key_ring_from, read_key_file, rewrite_key_ring

__all__ = [
    "DEVICE_FIELD",
    "Device",
    "adopt_box",
    "attest",
    "is_attested",
    "key_file_device",
    "merge_rings",
    "new_device",
    "open_ring",
    "public_key_of",
    "read_device",
    "seal_ring",
    "take_ring",
]

#: The key file's field that holds the device.
DEVICE_FIELD = "device"
_SEAL_LABEL = b"nexysync/device-ring/v1"
_ATTEST_LABEL = b"nexysync/device-attestation"


@dataclass(frozen=True)
class Device:
    """One machine's device in one project.

    Attributes:
        id: The device's id (a ULID made when it was paired).
        token: Its token (``nsdev_<40 hex>``), which reads its box and nothing else.
        private_key: The 32 raw bytes of its X25519 private key.
    """

    id: str
    token: str
    private_key: bytes

    @property
    def public_key(self) -> str:
        """The public key, base64url (as registered)."""
        return public_key_of(self.private_key)

    def to_json(self) -> dict[str, str]:
        """Return the key file's ``device`` field."""
        return {"id": self.id, "token": self.token, "private_key": encode_key(self.private_key)}

    def __repr__(self) -> str:
        # Never the token or the private key.
        return f"Device(id={self.id!r}, public_key={self.public_key!r})"


def new_device() -> bytes:
    """Return a fresh X25519 private key (32 raw bytes)."""
    raw: bytes = X25519PrivateKey.generate().private_bytes_raw()
    return raw


def public_key_of(private_key: bytes) -> str:
    """Return the base64url public key of a raw X25519 private key."""
    public = X25519PrivateKey.from_private_bytes(private_key).public_key()
    return _b64url(public.public_bytes(Encoding.Raw, PublicFormat.Raw))


def _attestation_mac(key: bytes, project_id: str, device_id: str, public_key: str) -> bytes:
    mac_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_ATTEST_LABEL).derive(key)
    message = f"nexysync/device/v1|{project_id}|{device_id}|{public_key}".encode()
    return hmac.digest(mac_key, message, "sha256")


def attest(keys: Sequence[bytes], project_id: str, device_id: str, public_key: str) -> str:
    """Return the attestation of a device under the ring's newest key: ``<kid>.<base64url HMAC>``."""
    key = keys[-1]
    return f"{key_id(key)}.{_b64url(_attestation_mac(key, project_id, device_id, public_key))}"


def is_attested(keys: Sequence[bytes], project_id: str, device: Mapping[str, Any]) -> bool:
    """Tell whether a listed device's attestation was made with a key of ``keys`` (any of them)."""
    kid, _, mac = str(device.get("attestation", "")).partition(".")
    for key in keys:
        if key_id(key) == kid:
            expected = _attestation_mac(key, project_id, str(device.get("id")), str(device.get("public_key")))
            return hmac.compare_digest(_b64url(expected), mac)
    return False


def _box_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=_SEAL_LABEL + b"|" + ephemeral + recipient
    ).derive(shared)


def _where(device: Device) -> dict[str, str]:
    return {"record": f"device/{device.id}", "field": "sealed"}


def _box_ad(project_id: str, device_id: str) -> bytes:
    return b"|".join((_SEAL_LABEL, project_id.encode(), device_id.encode()))


def seal_ring(keys: Sequence[bytes], *, project_id: str, device_id: str, public_key: str) -> str:
    """Seal a key ring (oldest first) to a device's public key."""
    recipient = _unb64url(public_key)
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient))
    nonce = os.urandom(12)
    payload = json.dumps({"keys": [encode_key(key) for key in keys]}, separators=(",", ":")).encode()
    sealed = AESGCM(_box_key(shared, ephemeral_public, recipient)).encrypt(
        nonce, payload, _box_ad(project_id, device_id)
    )
    return _b64url(ephemeral_public + nonce + sealed)


def open_ring(sealed: str, *, project_id: str, device: Device, held: Sequence[bytes]) -> list[bytes]:
    """Open a ring sealed to ``device``; it must carry a key of ``held`` (the keys this machine has).

    Raises:
        DecryptionError: not a box for this device and project, damaged, or a ring that holds
            none of ``held`` (not sealed by a holder of the project key).
    """
    try:
        raw = _unb64url(sealed)
        ephemeral_public, nonce, body = raw[:32], raw[32:44], raw[44:]
        private = X25519PrivateKey.from_private_bytes(device.private_key)
        shared = private.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
        recipient = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        payload = AESGCM(_box_key(shared, ephemeral_public, recipient)).decrypt(
            nonce, body, _box_ad(project_id, device.id)
        )
        keys = [decode_key(str(text)) for text in json.loads(payload)["keys"]]
    except (InvalidTag, ValueError, KeyError, TypeError) as exc:
        raise DecryptionError(
            f"the key ring sealed to this device does not open: {exc or 'tampered'}", **_where(device)
        ) from exc
    if not keys or not set(keys) & set(held):
        raise DecryptionError(
            "the key ring sealed to this device holds none of this machine's keys: it was not sealed by a "
            "holder of the project key, so it is refused",
            **_where(device),
        )
    return keys


def merge_rings(local: Sequence[bytes], imported: Sequence[bytes]) -> list[bytes]:
    """Return the union of two rings, oldest first; the imported ring's newest key ends up encrypting.

    Keys only this machine had are kept as older keys, so what they encrypted still decrypts.
    """
    return [key for key in local if key not in imported] + list(dict.fromkeys(imported))


def read_device(data: Mapping[str, Any], where: str) -> Device | None:
    """Return the device of a key file's (or a key store's) JSON, or None when it has none.

    Raises:
        KeyFileError: a ``device`` field that is not ``{"id", "token", "private_key"}``.
    """
    field = data.get(DEVICE_FIELD)
    if field is None:
        return None
    try:
        device = Device(str(field["id"]), str(field["token"]), decode_key(str(field["private_key"])))
    except (KeyError, TypeError, ValueError) as exc:
        raise KeyFileError(f"{where}: the device field is damaged ({exc}); pair this machine again") from exc
    return device


def key_file_device(path: Path) -> Device | None:
    """Return the device a key file holds, or None.

    Raises:
        KeyFileError: the file is unreadable, not private, or its device field is damaged.
    """
    return read_device(read_key_file(path), f"key file {path}")


def take_ring(sealed: str, *, project_id: str, device: Device, held: Sequence[bytes]) -> list[bytes] | None:
    """Open a box sealed to ``device`` and merge its ring into ``held``.

    Returns:
        The merged ring (oldest first) when the box added a key; None when it adds nothing.

    Raises:
        DecryptionError: as :func:`open_ring`.
    """
    merged = merge_rings(held, open_ring(sealed, project_id=project_id, device=device, held=held))
    return None if merged == list(held) else merged


def adopt_box(path: Path, sealed: str | None) -> list[bytes] | None:
    """Open the box read for a key file's device and write the merged ring into the file.

    Returns:
        The new ring (oldest first) when the box added a key; None when there was no box or
        nothing new in it.

    Raises:
        KeyFileError: the file is unreadable or has no device or project id.
        DecryptionError: the box does not open, or was not sealed by a holder of the project key.
    """
    data = read_key_file(path)
    where = f"key file {path}"
    device = read_device(data, where)
    project_id = data.get("project_id")
    if device is None or not isinstance(project_id, str):
        raise KeyFileError(f"{where} holds no paired device")
    if sealed is None:
        return None
    held = key_ring_from(data.get("enc_key"), data.get("keyring"), where)
    merged = take_ring(sealed, project_id=project_id, device=device, held=held)
    if merged is not None:
        rewrite_key_ring(path, project_id, merged)
    return merged
