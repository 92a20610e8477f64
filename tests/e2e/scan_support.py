"""Scan files for secrets or plaintext in the forms a leak could take (shared by the plaintext and pairing scans)."""

from __future__ import annotations

import base64
from pathlib import Path

__all__ = ["encodings", "files_holding"]


def encodings(text: str) -> dict[str, bytes]:
    """Return the forms in which a leak of ``text`` could sit in a file: raw and base64 (std, url)."""
    raw = text.encode()
    forms = {"utf-8": raw, "utf-16-le": text.encode("utf-16-le")}
    for skip in range(3):
        # base64 of the marker at each of the three byte alignments inside a longer value; the
        # first and last characters may mix in neighbouring bytes, so only the stable middle counts.
        encoded = base64.b64encode(b"\0" * skip + raw)[4:-4]
        forms[f"base64+{skip}"] = encoded
        forms[f"base64url+{skip}"] = encoded.replace(b"+", b"-").replace(b"/", b"_")
    return forms


def files_holding(root: Path, needles: dict[str, bytes]) -> dict[str, list[str]]:
    """Return, for each needle found, the files under ``root`` (recursively) whose bytes contain it."""
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        try:
            data = path.read_bytes()
        except OSError:  # a file removed while we walk (temp files of the database)
            continue
        for name, needle in needles.items():
            if needle in data:
                found.setdefault(name, []).append(str(path.relative_to(root)))
    return found
