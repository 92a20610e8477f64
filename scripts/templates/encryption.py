# (template of scripts/generate.py: the generated module starts below this line)
"""The encryption plan of the NexySync API: what each operation encrypts, with which kind and id."""

from __future__ import annotations

from nexysync_generated._types import EncryptedAt, OperationPlan, RecordPlan

__all__ = ["ENCRYPTION_PLANS", "EncryptedAt", "OperationPlan", "RecordPlan"]

#: For each operation with encrypted content, where its records are and how they are bound.
ENCRYPTION_PLANS: dict[str, OperationPlan] = {}
