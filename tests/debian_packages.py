"""Debian packages some tests need (HAProxy, promtool): found on the PATH, or installed when we are root.

CI runs as root on a fresh machine, so the project's own files install what its tests need; a
developer who is not root installs the package once by hand.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


class MissingPackage(RuntimeError):
    """The binary is missing and cannot be installed (not root, or apt-get failed)."""


def debian_binary(name: str, package: str) -> str:
    """Return the path of ``name``, installing Debian's ``package`` first when it is missing and we are root.

    Raises:
        MissingPackage: It is missing and cannot be installed.
    """
    found = _find(name)
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise MissingPackage(f"{name} is not installed and only root may install it (apt-get install -y {package})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Another apt run (a parallel job installing its own package) may hold the lock: wait for it.
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=300"]
    install = [*apt, "install", "-y", "--no-install-recommends", package]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        # A fresh machine may have no package lists yet.
        subprocess.run([*apt, "update"], env=env, capture_output=True)
        result = subprocess.run(install, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise MissingPackage(f"apt-get install {package} failed:\n{result.stdout}\n{result.stderr}")
    found = _find(name)
    if not found:
        raise MissingPackage(f"apt-get installed {package}, but {name} is not on the PATH")
    return found


def _find(name: str) -> str | None:
    for directory in ("/usr/sbin", "/usr/bin"):
        if (Path(directory) / name).exists():
            return str(Path(directory) / name)
    return shutil.which(name)


def promtool() -> str:
    """Return promtool (Debian's ``prometheus`` package), installing it when missing and root."""
    return debian_binary("promtool", "prometheus")
