"""``models.py``: the pydantic v2 models, made by the pinned datamodel-code-generator."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tempfile
from pathlib import Path

from nexysync_codegen.render import HEADER
from nexysync_codegen.spec import ENCRYPTED_MARKER

CODEGEN_DISTRIBUTION = "datamodel-code-generator"


CODEGEN_VERSION = "0.89.0"


CODEGEN_ARGS = (
    "--input-file-type",
    "openapi",
    "--output-model-type",
    "pydantic_v2.BaseModel",
    "--target-python-version",
    "3.11",
    "--target-pydantic-version",
    "2",
    "--disable-timestamp",
    "--formatters",
    "builtin",
    "--ignore-pyproject",
    "--use-annotated",
    "--field-extra-keys",
    ENCRYPTED_MARKER,
    "--allow-population-by-field-name",
    # Aliases such as Ulid or Slug become constrained `str` fields, not RootModel wrappers,
    # so `message.id` is a plain string that compares equal to one.
    "--collapse-root-models",
    # EmailStr would need the email-validator package; the spec's own pattern still applies.
    "--type-mappings",
    "email=string",
)


def check_codegen_version() -> None:
    """Fail unless the pinned datamodel-code-generator version is installed.

    Raises:
        SystemExit: The installed version is missing or differs from the pin.
    """
    try:
        installed = importlib.metadata.version(CODEGEN_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise SystemExit(f"{CODEGEN_DISTRIBUTION}=={CODEGEN_VERSION} is required but not installed") from exc
    if installed != CODEGEN_VERSION:
        raise SystemExit(
            f"{CODEGEN_DISTRIBUTION}=={CODEGEN_VERSION} is required (found {installed}); "
            "another version writes different models and the drift test would fail"
        )


def generate_models(spec_bytes: bytes) -> str:
    """Run datamodel-code-generator on the spec and return the text of models.py.

    It runs in an empty temporary directory on a copy named ``openapi.yaml``, so neither the
    caller's working directory, a ``pyproject.toml`` nor an absolute path can leak into the output.

    Args:
        spec_bytes: The contents of openapi.yaml.

    Returns:
        The module's source, starting with this project's header.

    Raises:
        RuntimeError: The generator failed.
    """
    check_codegen_version()
    with tempfile.TemporaryDirectory(prefix="nexysync-codegen-") as tmp:
        workdir = Path(tmp)
        (workdir / "openapi.yaml").write_bytes(spec_bytes)
        command = [
            sys.executable,
            "-m",
            "datamodel_code_generator",
            "--input",
            "openapi.yaml",
            "--output",
            "models.py",
            *CODEGEN_ARGS,
            "--custom-file-header",
            HEADER.rstrip("\n"),
        ]
        result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"datamodel-codegen failed with exit code {result.returncode}:\n{result.stderr}{result.stdout}"
            )
        return (workdir / "models.py").read_text("utf-8")
