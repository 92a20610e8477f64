"""``encryption.py`` (what each operation encrypts, with which kind and id), and the SDK's ``types.py``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from nexysync_codegen.operations import render_value, response_models, status_codes
from nexysync_codegen.render import render
from nexysync_codegen.spec import (
    AUTHOR_KEY,
    HTTP_METHODS,
    PLAINTEXT_KEY,
    RECORD_ID_KEY,
    RECORD_KIND_KEY,
    ROUTING_KEY,
    SCHEMA_REF_PREFIX,
    Call,
    SpecError,
    SpecReader,
    pick_media_type,
    schema_properties,
)


def record_plan(reader: SpecReader, name: str) -> Call | None:
    """Build the ``RecordPlan`` of a component schema, or None when it has no encrypted property.

    Args:
        reader: The spec reader.
        name: The component schema's name.

    Returns:
        The call to render.

    Raises:
        SpecError: The schema has encrypted properties but no complete plan.
    """
    schema = reader.lookup(SCHEMA_REF_PREFIX + name)
    fields = reader.direct_encrypted_properties(schema)
    if not fields:
        return None
    where = f"schema {name} (encrypted: {', '.join(sorted(fields))})"
    kind = schema.get(RECORD_KIND_KEY)
    if not isinstance(kind, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", kind):
        raise SpecError(f"{where} needs {RECORD_KIND_KEY}: a lowercase record kind")
    record_id = schema.get(RECORD_ID_KEY)
    properties = schema_properties(reader, schema)
    if not (
        isinstance(record_id, Mapping)
        and record_id.get("in") in ("body", "path")
        and isinstance(record_id.get("name"), str)
        and (record_id["in"] == "path" or record_id["name"] in properties)
    ):
        raise SpecError(f"{where} needs {RECORD_ID_KEY}: {{in: body|path, name: <property or path parameter>}}")
    author = schema.get(AUTHOR_KEY)
    if not isinstance(author, str):
        raise SpecError(f"{where} needs {AUTHOR_KEY}: the property naming the writer")
    routing = schema.get(ROUTING_KEY) or {}
    if not (
        isinstance(routing, Mapping) and all(key in properties and isinstance(v, str) for key, v in routing.items())
    ):
        raise SpecError(f"{where}: {ROUTING_KEY} maps its routing properties to the value bound when null")
    json_fields = sorted(field for field in fields if properties[field].get(PLAINTEXT_KEY) == "json")
    return Call(
        "RecordPlan",
        (
            ("schema", name),
            ("kind", kind),
            ("id_in", record_id["in"]),
            ("id_name", record_id["name"]),
            ("fields", tuple(sorted(fields))),
            ("json_fields", tuple(json_fields)),
            ("author", author),
            ("routing", tuple((key, routing[key]) for key in routing)),
        ),
    )


def encrypted_records(
    reader: SpecReader, schema: Any, at: tuple[str, ...] = (), seen: frozenset[str] = frozenset()
) -> list[Call]:
    """Find every encrypted record inside a body schema, with the steps that lead to it.

    Args:
        reader: The spec reader.
        schema: A request or response body's schema.
        at: The steps from the body to ``schema``.
        seen: Component schemas being walked, to stop on recursion.

    Returns:
        One ``EncryptedAt`` call per place records sit.

    Raises:
        SpecError: An encrypted property sits in a schema without a plan (an inline object, or a
            component without ``x-nexysync-record-kind``).
    """
    found: list[Call] = []
    if not isinstance(schema, Mapping):
        return found
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.removeprefix(SCHEMA_REF_PREFIX)
        if ref in seen:
            return found
        plan = record_plan(reader, name) if ref.startswith(SCHEMA_REF_PREFIX) else None
        if plan is not None:
            found.append(Call("EncryptedAt", (("at", at), ("record", plan))))
        return found + _nested_records(reader, reader.lookup(ref), at, seen | {ref}, planned=plan is not None)
    return found + _nested_records(reader, schema, at, seen, planned=False)


def _nested_records(
    reader: SpecReader, schema: Any, at: tuple[str, ...], seen: frozenset[str], *, planned: bool
) -> list[Call]:
    """Walk the properties, items and branches of one schema for :func:`encrypted_records`."""
    found: list[Call] = []
    if not isinstance(schema, Mapping):
        return found
    if not planned and reader.direct_encrypted_properties(schema):
        raise SpecError(
            f"encrypted properties at {'/'.join(at) or 'the body'} sit in an inline schema: "
            "move them into a component schema with an encryption plan"
        )
    for name, prop in (schema.get("properties") or {}).items():
        found += encrypted_records(reader, prop, (*at, name), seen)
    found += encrypted_records(reader, schema.get("items"), (*at, "[]"), seen)
    for keyword in ("allOf", "anyOf", "oneOf"):
        for branch in schema.get(keyword) or ():
            # A branch that names a component (a nullable record: oneOf [record, null]) is a record of its own.
            if isinstance(branch, Mapping) and "$ref" in branch:
                found += encrypted_records(reader, branch, at, seen)
            else:
                found += _nested_records(reader, branch, at, seen, planned=planned)
    return found


def build_encryption_plans(spec: Mapping[str, Any]) -> dict[str, Call]:
    """Build one ``OperationPlan`` per operation that encrypts or decrypts anything.

    Args:
        spec: The parsed OpenAPI document.

    Returns:
        operationId to the call to render, sorted by operationId.

    Raises:
        SpecError: An encrypted property has no plan.
    """
    reader = SpecReader(spec)
    plans: dict[str, Call] = {}
    for path_item in (spec.get("paths") or {}).values():
        path_item = reader.deref(path_item)
        for method in HTTP_METHODS:
            if method not in path_item:
                continue
            operation = path_item[method]
            body = reader.deref(operation.get("requestBody")) or {}
            _, body_schema = pick_media_type(body.get("content") or {})
            request = tuple(encrypted_records(reader, body_schema))
            responses: dict[int, tuple[Call, ...]] = {}
            for status, raw_response in status_codes(operation.get("responses") or {}):
                _, schema = pick_media_type(reader.deref(raw_response).get("content") or {})
                records = tuple(encrypted_records(reader, schema))
                if records:
                    responses[status] = records
            if request or responses:
                op_id = operation["operationId"]
                plans[op_id] = Call(
                    "OperationPlan", (("operation_id", op_id), ("request", request), ("responses", responses))
                )
    return {op_id: plans[op_id] for op_id in sorted(plans)}


def render_encryption(spec: Mapping[str, Any]) -> str:
    """Return the source of encryption.py, the encryption plan of every operation (before ruff formats it).

    Args:
        spec: The parsed OpenAPI document.

    Returns:
        The module's source, from ``templates/encryption.py.j2``.
    """
    return render("encryption.py.j2", plans=render_value(build_encryption_plans(spec)))


def plaintext_models(spec: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Decide which response models get a plaintext twin in the SDK, and the fields each overrides.

    A record schema of a response gets one (its JSON fields typed ``JsonValue``); so does every
    model whose property holds such a model, directly or as an array's items.

    Args:
        spec: The parsed OpenAPI document.

    Returns:
        Model name to ``{field: annotation}`` of the fields whose type changes, sorted by name.

    Raises:
        SpecError: A property leads to a twin in a shape other than ``$ref`` or an array of ``$ref``.
    """
    reader = SpecReader(spec)
    schemas = (spec.get("components") or {}).get("schemas") or {}
    twins: dict[str, dict[str, str]] = {}
    for plan in build_encryption_plans(spec).values():
        for places in dict(plan.kwargs)["responses"].values():
            for where in places:
                record = dict(dict(where.kwargs)["record"].kwargs)
                twins.setdefault(record["schema"], {})
                for json_field in record["json_fields"]:
                    twins[record["schema"]][json_field] = "JsonValue"
    changed = True
    while changed:
        changed = False
        for name in sorted(schemas):
            schema = reader.deref(schemas[name])
            required = set(schema.get("required") or ()) if isinstance(schema, Mapping) else set()
            for prop_name, prop in schema_properties(reader, schema).items():
                target = _twin_annotation(prop, twins)
                if target is None or twins.get(name, {}).get(prop_name):
                    continue
                twins.setdefault(name, {})[prop_name] = target if prop_name in required else f"{target} | None = None"
                changed = True
    for name, fields in twins.items():
        for prop_name, prop in schema_properties(reader, schemas[name]).items():
            if prop_name not in fields and reader.encrypted_properties(prop):
                raise SpecError(f"{name}.{prop_name} holds encrypted records in a shape the SDK cannot type")
    return {name: twins[name] for name in sorted(twins)}


def _twin_annotation(prop: Any, twins: Mapping[str, Any]) -> str | None:
    """Return the plaintext annotation of a property that holds a twinned model, or None."""
    if not isinstance(prop, Mapping):
        return None
    ref = str(prop.get("$ref", ""))
    if ref.startswith(SCHEMA_REF_PREFIX) and ref.removeprefix(SCHEMA_REF_PREFIX) in twins:
        return ref.removeprefix(SCHEMA_REF_PREFIX)
    branches = prop.get("oneOf") or prop.get("anyOf")
    if isinstance(branches, list) and len(branches) == 2 and {"type": "null"} in branches:
        # A nullable record: oneOf [record, null].
        (other,) = (branch for branch in branches if branch != {"type": "null"})
        inner = _twin_annotation(other, twins)
        return None if inner is None else f"{inner} | None"
    items = prop.get("items")
    if prop.get("type") == "array" and isinstance(items, Mapping):
        inner = _twin_annotation(items, twins)
        return None if inner is None else f"list[{inner}]"
    return None


def render_sdk_types(spec: Mapping[str, Any]) -> str:
    """Return the source of ``sdk/nexysync/types.py``: the plaintext models the SDK returns (before ruff tidies it).

    Args:
        spec: The parsed OpenAPI document.

    Returns:
        The module's source, from ``templates/sdk_types.py.j2``.
    """
    twins = plaintext_models(spec)
    responses = response_models(spec)
    # A list of encrypted records, each decrypted on its own (the SDK's DecryptedPage).
    pages = {
        responses[op_id][status]
        for op_id, plan in build_encryption_plans(spec).items()
        for status, places in dict(plan.kwargs)["responses"].items()
        if len(places) == 1 and dict(places[0].kwargs)["at"] == ("data", "[]")
    }
    models = [
        {
            "name": name,
            "page": name in pages,
            # A field typed as another twin stays compatible with the wire type (a subclass).
            "fields": [
                {"name": prop, "annotation": annotation, "compatible": annotation.split(" ")[0] in twins}
                for prop, annotation in sorted(fields.items())
            ],
        }
        for name, fields in twins.items()
    ]
    return render("sdk_types.py.j2", models=models)
