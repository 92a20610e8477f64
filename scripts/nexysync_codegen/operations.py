"""``operations.py``: the operation table, one entry per operationId, as plain data."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from nexysync_codegen.render import render
from nexysync_codegen.spec import (
    HTTP_METHODS,
    JSON_MEDIA_TYPE,
    SCHEMA_REF_PREFIX,
    Call,
    SpecError,
    SpecReader,
    pick_media_type,
)


def _model_name(schema: Any, where: str, *, json_body: bool) -> str | None:
    """Return the component schema a body schema names, or None.

    Args:
        schema: The body's schema.
        where: What the body belongs to, for error messages.
        json_body: Whether the body is JSON, which must be a named model.

    Returns:
        The component schema name when the schema is a ``$ref`` to one.

    Raises:
        SpecError: A JSON body's schema is not a ``$ref`` to a component schema.
    """
    if isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str):
        ref: str = schema["$ref"]
        if ref.startswith(SCHEMA_REF_PREFIX):
            return ref.removeprefix(SCHEMA_REF_PREFIX)
    if json_body and schema is not None:
        raise SpecError(f"{where}: a JSON body must be a $ref to {SCHEMA_REF_PREFIX}<Name>")
    return None


def _security_scheme(requirements: Any, where: str) -> str | None:
    """Return the single security scheme a list of requirements names, or None.

    Args:
        requirements: An OpenAPI ``security`` list.
        where: The operation, for error messages.

    Returns:
        The scheme name, or None when no authentication is required.

    Raises:
        SpecError: The requirements name more than one scheme.
    """
    schemes = sorted({name for requirement in requirements or () for name in requirement})
    if len(schemes) > 1:
        raise SpecError(f"{where}: one security scheme per operation is supported, got {schemes}")
    return schemes[0] if schemes else None


def status_codes(responses: Mapping[Any, Any]) -> Iterator[tuple[int, Any]]:
    """Yield the success (2xx) responses as ``(status, response)``, ascending."""
    for status in sorted(int(str(code)) for code in responses if str(code).isdigit()):
        if 200 <= status < 300:
            key = str(status) if str(status) in responses else status
            yield status, responses[key]


def build_operations(spec: Mapping[str, Any]) -> list[Call]:
    """Build one ``Operation`` call per operationId, sorted by operationId.

    Args:
        spec: The parsed OpenAPI document.

    Returns:
        The calls to render.

    Raises:
        SpecError: An operation has no or a duplicate operationId, or breaks another convention.
    """
    reader = SpecReader(spec)
    calls: dict[str, Call] = {}
    for path, path_item in (spec.get("paths") or {}).items():
        path_item = reader.deref(path_item)
        shared_params = path_item.get("parameters") or []
        for method in HTTP_METHODS:
            if method not in path_item:
                continue
            operation = path_item[method]
            op_id = operation.get("operationId")
            where = f"{method.upper()} {path}"
            if not op_id:
                raise SpecError(f"{where} has no operationId")
            if op_id in calls:
                raise SpecError(f"operationId {op_id!r} is used twice")
            calls[op_id] = _build_operation(reader, path, method, operation, shared_params)
    return [calls[op_id] for op_id in sorted(calls)]


def _build_operation(
    reader: SpecReader, path: str, method: str, operation: Mapping[str, Any], shared_params: Iterable[Any]
) -> Call:
    """Build the ``Operation`` call of one operation.

    Args:
        reader: The spec reader.
        path: The path template.
        method: The HTTP method, lower case.
        operation: The operation object.
        shared_params: The path item's parameters, which the operation's own override.

    Returns:
        The call to render.
    """
    op_id: str = operation["operationId"]
    params: dict[tuple[str, str], Mapping[str, Any]] = {}
    for raw in [*shared_params, *(operation.get("parameters") or [])]:
        param = reader.deref(raw)
        params[(param["in"], param["name"])] = param

    def parameters(location: str) -> tuple[Call, ...]:
        chosen = [p for (where, _), p in params.items() if where == location]
        if location == "path":
            chosen.sort(key=lambda p: path.index("{" + p["name"] + "}") if "{" + p["name"] + "}" in path else -1)
        return tuple(
            Call(
                "Parameter",
                (
                    ("name", p["name"]),
                    ("required", bool(p.get("required", False)) or location == "path"),
                    ("schema", reader.inline_schema(p.get("schema") or {})),
                ),
            )
            for p in chosen
        )

    body = reader.deref(operation.get("requestBody")) or {}
    body_media_type, body_schema = pick_media_type(body.get("content") or {})
    request_body = _model_name(body_schema, f"{op_id} request body", json_body=body_media_type == JSON_MEDIA_TYPE)

    responses: dict[int, str | None] = {}
    media_types: dict[int, str | None] = {}
    response_encrypted: set[str] = set()
    page_items: set[str | None] = set()
    for status, raw_response in status_codes(operation.get("responses") or {}):
        response = reader.deref(raw_response)
        media_type, schema = pick_media_type(response.get("content") or {})
        media_types[status] = media_type
        responses[status] = _model_name(schema, f"{op_id} response {status}", json_body=media_type == JSON_MEDIA_TYPE)
        response_encrypted |= reader.encrypted_properties(schema)
        page_items.add(_page_item(reader, schema))

    is_list_page = bool(page_items) and None not in page_items
    security = operation.get("security", reader.spec.get("security"))
    tags = operation.get("tags") or []
    return Call(
        "Operation",
        (
            ("operation_id", op_id),
            ("method", method.upper()),
            ("path", path),
            ("tag", tags[0] if tags else None),
            ("summary", operation.get("summary", "")),
            ("security", _security_scheme(security, op_id)),
            ("path_params", parameters("path")),
            ("query_params", parameters("query")),
            ("header_params", parameters("header")),
            ("request_body", request_body),
            ("request_body_required", bool(body.get("required", False))),
            ("request_media_type", body_media_type),
            ("responses", responses),
            ("response_media_types", media_types),
            ("success_statuses", tuple(responses)),
            ("is_list_page", is_list_page),
            ("page_item", (next(iter(page_items)) or None) if is_list_page and len(page_items) == 1 else None),
            ("request_encrypted_fields", tuple(sorted(reader.encrypted_properties(body_schema)))),
            ("response_encrypted_fields", tuple(sorted(response_encrypted))),
        ),
    )


def _page_item(reader: SpecReader, schema: Any) -> str | None:
    """Return the item model name when ``schema`` is a page (``data`` array plus ``next_cursor``).

    Args:
        reader: The spec reader.
        schema: A response schema.

    Returns:
        The model name of the page's items, ``""`` for a page of unnamed items, or None when the
        schema is not a page.
    """
    schema = reader.deref(schema)
    if not isinstance(schema, Mapping):
        return None
    properties = schema.get("properties") or {}
    if "data" not in properties or "next_cursor" not in properties:
        return None
    data = reader.deref(properties["data"])
    if not isinstance(data, Mapping) or data.get("type") != "array":
        return None
    items = data.get("items") or {}
    ref = items.get("$ref", "") if isinstance(items, Mapping) else ""
    return ref.removeprefix(SCHEMA_REF_PREFIX) if ref.startswith(SCHEMA_REF_PREFIX) else ""


def model_encrypted_fields(spec: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Map each component schema with marked properties to their names, both sorted.

    Args:
        spec: The parsed OpenAPI document.

    Returns:
        Model name to the names of its own encrypted properties.
    """
    reader = SpecReader(spec)
    schemas = (spec.get("components") or {}).get("schemas") or {}
    result: dict[str, tuple[str, ...]] = {}
    for name in sorted(schemas):
        fields = reader.direct_encrypted_properties(schemas[name])
        if fields:
            result[name] = tuple(sorted(fields))
    return result


def render_value(value: Any) -> str:
    """Render a value on one line.

    Args:
        value: A str, int, bool, None, tuple, list, dict or ``Call``.

    Returns:
        The source text.

    Raises:
        TypeError: The value has a type this renderer does not know.
    """
    if value is None or isinstance(value, bool | int | float | str):
        return repr(value)
    if isinstance(value, Call):
        return f"{value.name}(" + ", ".join(f"{k}={render_value(v)}" for k, v in value.kwargs) + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{render_value(k)}: {render_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, tuple):
        inner = ", ".join(render_value(item) for item in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(render_value(item) for item in value) + "]"
    raise TypeError(f"cannot render {type(value).__name__}")


def render_operations(spec: Mapping[str, Any]) -> str:
    """Return the source of operations.py (before ruff formats it).

    Args:
        spec: The parsed OpenAPI document.

    Returns:
        The module's source, from ``templates/operations.py.j2``.
    """
    table = {call.kwargs[0][1]: call for call in build_operations(spec)}
    encrypted = render_value(model_encrypted_fields(spec))
    return render("operations.py.j2", operations=render_value(table), model_encrypted_fields=encrypted)


def response_models(spec: Mapping[str, Any]) -> dict[str, dict[int, str | None]]:
    """Return each operation's response model names by status."""
    return {dict(call.kwargs)["operation_id"]: dict(call.kwargs)["responses"] for call in build_operations(spec)}
