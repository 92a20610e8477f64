"""The contract as the generator reads it: where it is, its conventions, and a reader that follows ``$ref``s."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


SPEC_PATH = REPO_ROOT / "openapi.yaml"


ENCRYPTED_MARKER = "x-nexysync-encrypted"


RECORD_KIND_KEY = "x-nexysync-record-kind"


RECORD_ID_KEY = "x-nexysync-record-id"


AUTHOR_KEY = "x-nexysync-author"


ROUTING_KEY = "x-nexysync-routing"


PLAINTEXT_KEY = "x-nexysync-plaintext"


HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


JSON_MEDIA_TYPE = "application/json"


SCHEMA_REF_PREFIX = "#/components/schemas/"


class SpecError(ValueError):
    """Raised when openapi.yaml breaks a convention the generator relies on."""


@dataclass(frozen=True)
class Call:
    """A constructor call to render, e.g. ``Parameter(name=..., ...)``."""

    name: str
    kwargs: tuple[tuple[str, Any], ...] = field(default=())


class SpecReader:
    """Read the parts of an OpenAPI document the operation table needs."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        """Keep the parsed document.

        Args:
            spec: The parsed OpenAPI document.
        """
        self.spec = spec

    def lookup(self, ref: str) -> Any:
        """Return the object a local ``$ref`` points to.

        Args:
            ref: A JSON pointer such as ``#/components/schemas/Message``.

        Returns:
            The referenced object.

        Raises:
            SpecError: The reference is not local or points nowhere.
        """
        if not ref.startswith("#/"):
            raise SpecError(f"only local $refs are supported, got {ref!r}")
        node: Any = self.spec
        for part in ref[2:].split("/"):
            key = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or key not in node:
                raise SpecError(f"$ref {ref!r} points nowhere")
            node = node[key]
        return node

    def deref(self, node: Any) -> Any:
        """Follow ``$ref``s at the top of ``node`` until a concrete object is reached.

        Args:
            node: A spec object that may be a reference.

        Returns:
            The referenced object (sibling keys of a ``$ref`` are dropped).
        """
        seen: set[str] = set()
        while isinstance(node, Mapping) and "$ref" in node:
            ref = node["$ref"]
            if ref in seen:
                raise SpecError(f"$ref cycle through {ref!r}")
            seen.add(ref)
            node = self.lookup(ref)
        return node

    def inline_schema(self, schema: Any, stack: tuple[str, ...] = ()) -> Any:
        """Return a copy of ``schema`` with every ``$ref`` replaced by its target.

        Sibling keywords of a ``$ref`` (allowed in OpenAPI 3.1) override the target's.

        Args:
            schema: A JSON schema (or any value inside one).
            stack: The references being expanded, to detect recursion.

        Returns:
            A self-contained schema with its keys sorted.

        Raises:
            SpecError: The schema refers to itself.
        """
        if isinstance(schema, Mapping):
            if "$ref" in schema:
                ref = schema["$ref"]
                if ref in stack:
                    raise SpecError(f"cannot inline recursive schema {ref!r}")
                target = self.inline_schema(self.lookup(ref), (*stack, ref))
                siblings = {k: self.inline_schema(v, stack) for k, v in schema.items() if k != "$ref"}
                merged = {**target, **siblings} if isinstance(target, dict) else target
                return sort_keys(merged)
            return sort_keys({k: self.inline_schema(v, stack) for k, v in schema.items()})
        if isinstance(schema, list):
            return [self.inline_schema(item, stack) for item in schema]
        return schema

    def encrypted_properties(self, schema: Any, seen: frozenset[str] = frozenset()) -> set[str]:
        """Collect the names of properties marked encrypted anywhere inside ``schema``.

        Follows ``$ref``s, object properties, array items and the ``allOf``/``anyOf``/``oneOf``
        branches. A property counts when the marker sits on its schema, including next to a
        ``$ref`` or on the schema the ``$ref`` names.

        Args:
            schema: A JSON schema.
            seen: References already being walked, to stop on recursion.

        Returns:
            The marked property names.
        """
        found: set[str] = set()
        if not isinstance(schema, Mapping):
            return found
        if "$ref" in schema:
            ref = schema["$ref"]
            if ref not in seen:
                found |= self.encrypted_properties(self.lookup(ref), seen | {ref})
        for name, prop in (schema.get("properties") or {}).items():
            if self.is_encrypted(prop):
                found.add(name)
            found |= self.encrypted_properties(prop, seen)
        for keyword in ("items", "additionalProperties", "not"):
            found |= self.encrypted_properties(schema.get(keyword), seen)
        for keyword in ("allOf", "anyOf", "oneOf", "prefixItems"):
            for branch in schema.get(keyword) or ():
                found |= self.encrypted_properties(branch, seen)
        return found

    def is_encrypted(self, prop: Any) -> bool:
        """Tell whether a property schema carries the encryption marker, through ``$ref``s.

        Args:
            prop: A property's schema.

        Returns:
            True when the marker is set on it or on a schema it references.
        """
        seen: set[str] = set()
        while isinstance(prop, Mapping):
            if prop.get(ENCRYPTED_MARKER) is True:
                return True
            ref = prop.get("$ref")
            if ref is None or ref in seen:
                return False
            seen.add(ref)
            prop = self.lookup(ref)
        return False

    def direct_encrypted_properties(self, schema: Any) -> set[str]:
        """Collect the marked property names of one model (its own properties and branches).

        Args:
            schema: A component schema.

        Returns:
            The marked names of its properties, not of the models nested in them.
        """
        schema = self.deref(schema)
        found: set[str] = set()
        if not isinstance(schema, Mapping):
            return found
        for name, prop in (schema.get("properties") or {}).items():
            if self.is_encrypted(prop):
                found.add(name)
        for keyword in ("allOf", "anyOf", "oneOf"):
            for branch in schema.get(keyword) or ():
                if isinstance(branch, Mapping) and "$ref" in branch and RECORD_KIND_KEY in self.deref(branch):
                    continue  # a record of its own (oneOf [record, null]), with its own plan
                found |= self.direct_encrypted_properties(branch)
        return found


def schema_properties(reader: SpecReader, schema: Any) -> dict[str, Any]:
    """Return the properties of a schema, its own and those of its ``allOf``/``anyOf``/``oneOf`` branches."""
    schema = reader.deref(schema)
    found: dict[str, Any] = {}
    if not isinstance(schema, Mapping):
        return found
    for keyword in ("allOf", "anyOf", "oneOf"):
        for branch in schema.get(keyword) or ():
            found.update(schema_properties(reader, branch))
    found.update(schema.get("properties") or {})
    return found


def pick_media_type(content: Mapping[str, Any]) -> tuple[str, Any] | tuple[None, None]:
    """Choose the media type a client uses: JSON when offered, else the first listed.

    Args:
        content: An OpenAPI ``content`` map.

    Returns:
        The media type and its schema, or ``(None, None)`` when there is no content.
    """
    if not content:
        return None, None
    media_type = JSON_MEDIA_TYPE if JSON_MEDIA_TYPE in content else next(iter(content))
    return media_type, (content[media_type] or {}).get("schema")


def sort_keys(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Return a dict with the same items, keys sorted."""
    return {key: mapping[key] for key in sorted(mapping)}
