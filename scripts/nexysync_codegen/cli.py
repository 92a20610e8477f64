"""The command: generate everything from ``openapi.yaml``, writing only the files that changed."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path

import yaml

from nexysync_codegen.encryption import render_encryption, render_sdk_types
from nexysync_codegen.models import generate_models
from nexysync_codegen.operations import render_operations
from nexysync_codegen.render import render, ruff_tidy
from nexysync_codegen.sdk import SDK_GENERATED, render_sdk_layer
from nexysync_codegen.spec import REPO_ROOT, SPEC_PATH, SpecError

DEFAULT_OUT = REPO_ROOT / "generated" / "nexysync_generated"


SDK_TYPES = REPO_ROOT / "sdk" / "nexysync" / "types.py"


def render_files(spec_bytes: bytes) -> dict[str, bytes]:
    """Produce every file of the package from the contents of openapi.yaml.

    Args:
        spec_bytes: The contents of openapi.yaml.

    Returns:
        File name to contents.

    Raises:
        SpecError: The spec has no ``info.version`` or breaks a convention of the generator.
    """
    spec = yaml.safe_load(spec_bytes)
    version = str((spec.get("info") or {}).get("version") or "")
    if not re.fullmatch(r"\d+(\.\d+)*([a-z0-9.+-]*)", version):
        raise SpecError(f"info.version {version!r} is not a usable package version")
    files = {
        "__init__.py": render("__init__.py.j2", version=version),
        "_types.py": render("_types.py.j2"),
        "models.py": generate_models(spec_bytes),
        "operations.py": render_operations(spec),
        "encryption.py": render_encryption(spec),
    }
    # Formatting is the last step: the modules are as ruff formats them, whatever rendered them.
    files = {**ruff_tidy(files, "nexysync_generated", fix=False), "py.typed": ""}
    files["openapi.json"] = json.dumps(spec, indent=2, ensure_ascii=False) + "\n"
    rendered = {name: text.encode("utf-8") for name, text in files.items()}
    rendered["openapi.yaml"] = spec_bytes
    return dict(sorted(rendered.items()))


def write_package(out_dir: Path, spec_path: Path = SPEC_PATH) -> list[Path]:
    """Generate the package into ``out_dir``, writing only files whose contents changed.

    Args:
        out_dir: The package directory to write into; created when missing.
        spec_path: The OpenAPI document to generate from.

    Returns:
        The paths written.
    """
    return write_files(out_dir, render_files(spec_path.read_bytes()))


def write_files(out_dir: Path, files: Mapping[str, bytes]) -> list[Path]:
    """Write generated files into ``out_dir``, only those whose contents changed; warn of files it does not make.

    Args:
        out_dir: The directory; created when missing.
        files: File name to contents.

    Returns:
        The paths written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, content in files.items():
        target = out_dir / name
        if not target.exists() or target.read_bytes() != content:
            target.write_bytes(content)
            written.append(target)
    stale = sorted(
        p.name for p in out_dir.iterdir() if p.is_file() and p.name not in files and not p.name.endswith(".pyc")
    )
    if stale:
        print(f"warning: {out_dir} holds files the generator does not make: {', '.join(stale)}", file=sys.stderr)
    return written


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and generate the package.

    Args:
        argv: Command-line arguments, without the program name; defaults to ``sys.argv[1:]``.

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(description="Generate nexysync_generated from openapi.yaml.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"package directory (default: {DEFAULT_OUT})")
    parser.add_argument("--spec", type=Path, default=SPEC_PATH, help="OpenAPI document (default: repo openapi.yaml)")
    parser.add_argument(
        "--sdk-types", type=Path, default=SDK_TYPES, help=f"the SDK's plaintext models (default: {SDK_TYPES})"
    )
    parser.add_argument(
        "--sdk-resources", type=Path, default=SDK_GENERATED, help=f"the SDK's resource layer (default: {SDK_GENERATED})"
    )
    args = parser.parse_args(argv)
    written = write_package(args.out, args.spec)
    spec = yaml.safe_load(args.spec.read_bytes())
    types_source = ruff_tidy({"types.py": render_sdk_types(spec)}, "sdk/nexysync")["types.py"].encode("utf-8")
    if not args.sdk_types.exists() or args.sdk_types.read_bytes() != types_source:
        args.sdk_types.write_bytes(types_source)
        written.append(args.sdk_types)
    written += write_files(
        args.sdk_resources, {name: text.encode("utf-8") for name, text in render_sdk_layer(spec).items()}
    )
    for path in written:
        print(f"wrote {path}")
    print(f"{args.out}: {len(written)} file(s) changed")
    return 0
