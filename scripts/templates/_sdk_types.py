# (template of scripts/generate.py: the generated module starts below this line)
"""The plaintext models: what the SDK returns once it has decrypted a response.

Each subclasses the wire model generated from openapi.yaml. An encrypted field holds its
decrypted value (text, or any JSON value where the spec says `x-nexysync-plaintext: json`),
and a list of encrypted records is a :class:`~nexysync.DecryptedPage`.
"""

from __future__ import annotations

from pydantic import BaseModel, JsonValue

from nexysync._pages import DecryptedPage
from nexysync_generated import models

__all__ = ["PLAINTEXT_MODELS"]

# >>> template-only: stand-ins for what the generator fills in, so that ruff reads this file
TheAnnotation = JsonValue
# <<< template-only


# >>> twin
class TheModel(models.TheModel):
    """`TheModel` with its encrypted fields decrypted."""

    # >>> field
    the_field: TheAnnotation  # type: ignore[assignment]
    # <<< field


# <<< twin
# >>> page
class ThePage(models.ThePage, DecryptedPage):
    """`ThePage` with its records decrypted; those that fail are in `undecryptable`."""

    # field


# <<< page
#: The plaintext twin of each wire model that has one, by the wire model's name.
PLAINTEXT_MODELS: dict[str, type[BaseModel]] = {}
