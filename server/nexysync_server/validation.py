"""Read JSON request bodies and validate them against the contract's own schemas.

The server validates with the JSON Schemas of ``openapi.yaml`` itself (shipped in
``nexysync_generated``), so what the contract calls valid is exactly what the server accepts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import falcon.asgi
import jsonschema_rs

from .errors import Problem

_MAX_ERRORS = 20
#: The deepest nesting of arrays and objects a body may have; no operation needs more than a few.
MAX_JSON_DEPTH = 32
_MAX_MESSAGE = 300
# How the contract's Envelope pattern starts, as it appears in a validation message.
_ENVELOPE_PATTERN = "^v1\\.[0-9a-f]{8}"
_ENVELOPE_HINT = (
    "must be ciphertext made by the client: v1.<kid>.<base64url(nonce||ciphertext||tag)> "
    "(AES-256-GCM with the project key); plaintext is refused"
)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class SchemaValidator:
    """Validate documents against the component schemas of an OpenAPI document.

    Args:
        spec: The parsed OpenAPI document.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        self._components = spec["components"]
        self._validators: dict[str, jsonschema_rs.Draft202012Validator] = {}

    def validator(self, schema_name: str) -> jsonschema_rs.Draft202012Validator:
        """Return the (cached) validator of ``#/components/schemas/<schema_name>``."""
        validator = self._validators.get(schema_name)
        if validator is None:
            if schema_name not in self._components["schemas"]:
                raise KeyError(f"no schema {schema_name!r} in the contract")
            schema = {"$ref": f"#/components/schemas/{schema_name}", "components": self._components}
            validator = jsonschema_rs.Draft202012Validator(schema)
            self._validators[schema_name] = validator
        return validator

    def check(self, schema_name: str, document: Any) -> None:
        """Raise a 422 problem listing what is wrong with ``document``, if anything."""
        validator = self.validator(schema_name)
        if validator.is_valid(document):
            return
        errors = sorted(validator.iter_errors(document), key=lambda e: [str(part) for part in e.instance_path])
        listed = []
        for error in errors[:_MAX_ERRORS]:
            field = "/".join(str(part) for part in error.instance_path) or "(body)"
            message = error.message
            if _ENVELOPE_PATTERN in message:
                # The pattern itself helps nobody: say what is expected instead.
                message = _ENVELOPE_HINT
            listed.append({"field": field, "message": message[:_MAX_MESSAGE]})
        fields = ", ".join(sorted({item["field"] for item in listed}))
        raise Problem(422, "VALIDATION_FAILED", f"The request body is not valid: {fields}.", errors=listed)


async def read_json(req: falcon.asgi.Request, max_bytes: int) -> Any:
    """Read the request body as JSON, at most ``max_bytes`` of it.

    Raises:
        Problem: 415 when the body is not JSON, 413 when it is too large, 400 when it does not parse.
    """
    media_type = (req.content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise Problem(415, "UNSUPPORTED_MEDIA_TYPE", "Send the body as application/json.")
    if req.content_length is not None and req.content_length > max_bytes:
        raise Problem(413, "PAYLOAD_TOO_LARGE", f"The body may be at most {max_bytes} bytes.")
    raw = await req.stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise Problem(413, "PAYLOAD_TOO_LARGE", f"The body may be at most {max_bytes} bytes.")
    if not raw:
        raise Problem(400, "BODY_REQUIRED", "This operation needs a JSON body.")
    try:
        document = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise _too_deep() from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, "MALFORMED_JSON", f"The body is not valid JSON: {exc}.") from exc
    if _depth_exceeds(document, MAX_JSON_DEPTH):
        raise _too_deep()
    return document


def _too_deep() -> Problem:
    return Problem(400, "JSON_TOO_DEEP", f"The body nests arrays and objects deeper than {MAX_JSON_DEPTH} levels.")


def _depth_exceeds(document: Any, limit: int) -> bool:
    """Tell whether ``document`` nests containers deeper than ``limit`` (iteratively: no recursion)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Iterable[Any] = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False
