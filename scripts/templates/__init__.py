# (template of scripts/generate.py: the generated module starts below this line)
"""Pydantic models, the operation table and the encryption plan generated from NexySync's OpenAPI contract."""

from __future__ import annotations

import json
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from nexysync_generated._types import EncryptedAt, Operation, OperationPlan, Parameter, RecordPlan
from nexysync_generated.encryption import ENCRYPTION_PLANS
from nexysync_generated.operations import MODEL_ENCRYPTED_FIELDS, OPERATIONS

__all__ = [
    "ENCRYPTION_PLANS",
    "MODEL_ENCRYPTED_FIELDS",
    "OPERATIONS",
    "EncryptedAt",
    "Operation",
    "OperationPlan",
    "Parameter",
    "RecordPlan",
    "__version__",
    "load_spec",
    "spec_path",
]

# The generator puts the spec's info.version here.
__version__ = "0.0.0"


def spec_path() -> Traversable:
    """Return the packaged openapi.yaml, a byte-for-byte copy of the contract."""
    return resources.files(__name__) / "openapi.yaml"


def load_spec() -> dict[str, Any]:
    """Return the packaged contract parsed into a fresh dict (read from its JSON twin)."""
    document: dict[str, Any] = json.loads((resources.files(__name__) / "openapi.json").read_text("utf-8"))
    return document
