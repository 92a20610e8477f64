# (template of scripts/generate.py: the generated module starts below this line)
"""The operation table of the NexySync API: one entry per operationId."""

from __future__ import annotations

from nexysync_generated._types import Operation, Parameter

__all__ = ["MODEL_ENCRYPTED_FIELDS", "OPERATIONS", "Operation", "Parameter"]

#: Every operation, keyed by operationId.
OPERATIONS: dict[str, Operation] = {}

#: For each model with encrypted properties, the names of its own encrypted properties.
MODEL_ENCRYPTED_FIELDS: dict[str, tuple[str, ...]] = {}
