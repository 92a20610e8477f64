"""The pairing exchange: SPAKE2 over a short code, relayed through a server slot that cannot read it.

The code is ``<slot number>-<word>-<word>-<word>``: the number finds the slot, the three words
(from the 2048-word BIP-39 English list, 33 bits) are the SPAKE2 password and never reach the
server. SPAKE2 (the ``spake2`` package, as Magic Wormhole uses) gives each side the same key only
if both typed the same words; an attacker who relays or replaces messages learns nothing it can
test offline, and gets one guess per slot, since a slot is accepted once.

From the SPAKE2 key and a hash of the whole transcript (slot number, both messages, the new
machine's public key and name), HKDF derives one confirmation key per side, the key that seals
the bundle, and a short verification string. The new machine sends its confirmation with its
accept; the offering side checks it before it hands anything over (a wrong code ends there, and
the slot is burned), then sends its own confirmation and the bundle sealed with AES-256-GCM, the
transcript hash as associated data.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from mnemonic import Mnemonic

# spake2 ships no type information.
from spake2 import SPAKE2_A, SPAKE2_B  # type: ignore[import-untyped]
from spake2.ed25519_basic import NotOnCurve  # type: ignore[import-untyped]
from spake2.spake2 import SPAKEError  # type: ignore[import-untyped]

from nexysync_cli.errors import CliError

__all__ = ["CODE_WORDS", "WORDS", "Accepting", "Code", "Exchange", "Offering", "b64", "parse_code", "unb64"]

WORDS: tuple[str, ...] = tuple(Mnemonic("english").wordlist)
_WORD_SET = frozenset(WORDS)
CODE_WORDS = 3
_ID_OFFER = b"nexysync/pair/offer"
_ID_ACCEPT = b"nexysync/pair/accept"
_SEPARATORS = re.compile(r"[\s\-]+")


def b64(data: bytes) -> str:
    """Encode unpadded base64url."""
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def unb64(text: str | None, what: str) -> bytes:
    """Decode unpadded base64url.

    Raises:
        CliError: missing or not base64url (``BAD_PAIRING_MESSAGE``).
    """
    try:
        if text is None:
            raise ValueError("missing")
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise CliError(f"the other machine's {what} is damaged ({exc})", code="BAD_PAIRING_MESSAGE") from exc


@dataclass(frozen=True)
class Code:
    """A pairing code: the slot number and the words."""

    number: str
    words: tuple[str, ...]

    def __str__(self) -> str:
        return "-".join((self.number, *self.words))

    @property
    def password(self) -> bytes:
        """The SPAKE2 password: the words only (the number is public, and bound into the transcript)."""
        return "-".join(self.words).encode()


def new_words() -> tuple[str, ...]:
    """Draw the code's words."""
    return tuple(secrets.choice(WORDS) for _ in range(CODE_WORDS))


def parse_code(text: str) -> Code:
    """Read a code as typed: dashes or spaces between the parts, any case.

    A typo is found here, before the slot is touched: a word not in the list cannot be right.

    Raises:
        CliError: not ``<number>-<word>-<word>-<word>``, or a word not in the list (``BAD_CODE``).
    """
    parts = [part for part in _SEPARATORS.split(text.strip().lower()) if part]
    if len(parts) != 1 + CODE_WORDS or not re.fullmatch(r"[1-9][0-9]{0,3}", parts[0]):
        raise CliError(
            f"{text!r} is not a pairing code: expected a number and {CODE_WORDS} words, like 4821-apple-river-stone",
            code="BAD_CODE",
        )
    unknown = [word for word in parts[1:] if word not in _WORD_SET]
    if unknown:
        raise CliError(
            f"{', '.join(repr(word) for word in unknown)} is not a pairing word: check the code for a typo "
            "(nothing was sent, the code is still good)",
            code="BAD_CODE",
        )
    return Code(parts[0], tuple(parts[1:]))


def _transcript(number: str, offer_msg: bytes, accept_msg: bytes, public_key: str, name: str) -> bytes:
    digest = hashlib.sha256(b"nexysync/pair/v1")
    for part in (number.encode(), offer_msg, accept_msg, public_key.encode(), name.encode()):
        digest.update(len(part).to_bytes(4, "big") + part)
    return digest.digest()


@dataclass(frozen=True)
class Exchange:
    """What both sides derive once SPAKE2 is done."""

    shared: bytes
    transcript: bytes

    def _key(self, label: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=self.transcript, info=b"nexysync/pair/" + label).derive(
            self.shared
        )

    def confirmation(self, side: str) -> str:
        """Return ``side``'s (``offer`` or ``accept``) key confirmation over the transcript."""
        return b64(hmac.digest(self._key(b"confirm-" + side.encode()), self.transcript, "sha256"))

    def confirms(self, side: str, given: str | None) -> bool:
        """Tell whether ``given`` is ``side``'s confirmation (so both typed the same code)."""
        return given is not None and hmac.compare_digest(self.confirmation(side), given)

    @property
    def verification(self) -> str:
        """Six digits both sides show, for a user who wants to compare them."""
        number = int.from_bytes(self._key(b"verify")[:4], "big") % 1_000_000
        return f"{number // 1000:03d} {number % 1000:03d}"

    def seal(self, bundle: dict[str, Any]) -> str:
        """Seal the bundle (AES-256-GCM, the transcript hash as associated data)."""
        nonce = os.urandom(12)
        body = AESGCM(self._key(b"seal")).encrypt(nonce, json.dumps(bundle).encode(), self.transcript)
        return b64(nonce + body)

    def open(self, sealed: str | None) -> dict[str, Any]:
        """Open the bundle.

        Raises:
            CliError: it does not open (``BAD_PAIRING_MESSAGE``).
        """
        raw = unb64(sealed, "sealed bundle")
        try:
            bundle = json.loads(AESGCM(self._key(b"seal")).decrypt(raw[:12], raw[12:], self.transcript))
        except (InvalidTag, ValueError) as exc:
            raise CliError(
                "the sealed bundle does not open: it was changed on the way", code="BAD_PAIRING_MESSAGE"
            ) from exc
        if not isinstance(bundle, dict):
            raise CliError("the sealed bundle is not an object", code="BAD_PAIRING_MESSAGE")
        return bundle


def _finish(spake: SPAKE2_A | SPAKE2_B, other: bytes) -> bytes | None:
    try:
        shared: bytes = spake.finish(other)
    except (SPAKEError, NotOnCurve, ValueError):
        return None  # a message that is no group element: a broken or hostile peer
    return shared


class Offering:
    """The machine that holds the key: it opens the slot and checks the other side's confirmation.

    Args:
        words: The code's words (drawn here when None).
    """

    def __init__(self, words: tuple[str, ...] | None = None) -> None:
        self.words = words or new_words()
        self._spake = SPAKE2_A("-".join(self.words).encode(), idA=_ID_OFFER, idB=_ID_ACCEPT)
        self.message = self._spake.start()

    def code(self, number: str) -> Code:
        """Return the code for the slot the server opened."""
        return Code(number, self.words)

    def answer(
        self, number: str, accept_msg: bytes, public_key: str, name: str, confirm: str | None
    ) -> Exchange | None:
        """Finish SPAKE2 with the accepting side's message; None when its confirmation is wrong (a wrong code)."""
        shared = _finish(self._spake, accept_msg)
        if shared is None:
            return None
        exchange = Exchange(shared, _transcript(number, self.message, accept_msg, public_key, name))
        return exchange if exchange.confirms("accept", confirm) else None


class Accepting:
    """The new machine: it answers the slot's message with its own, its public key and its confirmation.

    Args:
        code: The code as parsed.
        offer_msg: The slot's SPAKE2 message.
        public_key: This machine's X25519 public key (base64url).
        name: This machine's name.
    """

    def __init__(self, code: Code, offer_msg: bytes, public_key: str, name: str) -> None:
        spake = SPAKE2_B(code.password, idA=_ID_OFFER, idB=_ID_ACCEPT)
        self.message = spake.start()
        shared = _finish(spake, offer_msg)
        if shared is None:
            raise CliError("the slot's message is damaged; ask for a new code", code="BAD_PAIRING_MESSAGE")
        self.exchange = Exchange(shared, _transcript(code.number, offer_msg, self.message, public_key, name))
