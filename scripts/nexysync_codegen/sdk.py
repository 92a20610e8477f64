"""The SDK's resource layer, ``sdk/nexysync/_generated/``: from the spec and ``resources.yaml``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nexysync_codegen.encryption import build_encryption_plans, plaintext_models
from nexysync_codegen.operations import build_operations
from nexysync_codegen.render import render, ruff_tidy
from nexysync_codegen.spec import (
    HTTP_METHODS,
    REPO_ROOT,
    Call,
    SpecError,
    SpecReader,
    pick_media_type,
    schema_properties,
)

SDK_GENERATED = REPO_ROOT / "sdk" / "nexysync" / "_generated"
#: The SDK's names for the operations (client attribute, method, positional parameters, ...).
RESOURCES_CONFIG = Path(__file__).resolve().parent / "resources.yaml"
#: Python keywords a parameter cannot be named (``from`` becomes ``from_``, as the models alias it).
_RENAMED = {"from": "from_", "in": "in_", "async": "async_", "class": "class_", "with": "with_"}


def _annotation(schema: Any) -> str:
    """Return the Python annotation of a JSON schema (``$ref``s inlined), as the SDK's signatures use it."""
    if not isinstance(schema, Mapping):
        return "Any"
    for keyword in ("anyOf", "oneOf"):
        if keyword in schema:
            branches = [b for b in schema[keyword] if not (isinstance(b, Mapping) and b.get("type") == "null")]
            inner = " | ".join(dict.fromkeys(_annotation(b) for b in branches)) or "None"
            return inner if len(branches) == len(schema[keyword]) else f"{inner} | None"
    kind = schema.get("type")
    if isinstance(kind, list):
        inner = " | ".join(_annotation({**schema, "type": k}) for k in kind if k != "null") or "None"
        return f"{inner} | None" if "null" in kind else inner
    if kind == "string":
        return "dt.datetime" if schema.get("format") == "date-time" else "str"
    if kind == "array":
        return f"builtins.list[{_annotation(schema.get('items'))}]"
    simple = {"integer": "int", "number": "float", "boolean": "bool", "object": "dict[str, Any]"}
    return simple.get(kind, "Any") if isinstance(kind, str) else "Any"


@dataclass
class _Param:
    """One parameter of a generated method: where it goes on the wire and how it is declared."""

    wire: str
    where: str  # path, query, header or body
    name: str
    annotation: str
    required: bool
    default: str | None = None
    convert: str | None = None
    omit_default: bool = False

    def declaration(self) -> str:
        """Return the parameter as the signature declares it."""
        if self.default is None:
            return f"{self.name}: {self.annotation}"
        annotation = self.annotation
        if self.default == "None" and "None" not in annotation.split(" | ") and annotation != "Any":
            annotation += " | None"
        return f"{self.name}: {annotation} = {self.default}"

    def value(self) -> str:
        """Return the expression of the value sent."""
        value = self.convert.replace("{}", self.name) if self.convert else self.name
        if not self.omit_default:
            return value
        same = "is" if self.default in ("True", "False", "None") else "=="
        return f"None if {self.name} {same} {self.default} else {value}"


def _request_record(plans: Mapping[str, Call], op_id: str) -> dict[str, Any] | None:
    """Return the record plan of an operation's encrypted request body, as keyword arguments, or None."""
    plan = plans.get(op_id)
    places = dict(plan.kwargs)["request"] if plan is not None else ()
    return dict(dict(places[0].kwargs)["record"].kwargs) if places else None


@dataclass
class _Method:
    """One operation method of a generated resource."""

    name: str
    operation_id: str
    shape: str  # call, none, replay or page
    result: str
    params: list[_Param]
    positional: int
    request: str
    prelude: str
    doc: str
    replay: str

    @property
    def signature(self) -> str:
        """Its parameters after ``self``: path and positional ones, then keyword-only ones."""
        head = [p.declaration() for p in self.params[: self.positional]]
        tail = [p.declaration() for p in self.params[self.positional :]]
        return ", ".join([*head, *(["*", *tail] if tail else [])])

    @property
    def summary(self) -> str:
        """The first line of its docstring."""
        return self.doc.strip().splitlines()[0]


@dataclass(frozen=True)
class _SpecView:
    """What the SDK layer is made from, read once: the spec, its operations, their table entries and plans."""

    reader: SpecReader
    operations: dict[str, Mapping[str, Any]]
    table: dict[str, dict[str, Any]]
    plans: dict[str, Call]
    twins: dict[str, dict[str, str]]

    @classmethod
    def of(cls, spec: Mapping[str, Any]) -> _SpecView:
        """Read ``spec``."""
        reader = SpecReader(spec)
        operations = {}
        for path_item in (spec.get("paths") or {}).values():
            path_item = reader.deref(path_item)
            operations.update({path_item[m]["operationId"]: path_item[m] for m in HTTP_METHODS if m in path_item})
        table = {dict(call.kwargs)["operation_id"]: dict(call.kwargs) for call in build_operations(spec)}
        return cls(reader, operations, table, build_encryption_plans(spec), plaintext_models(spec))


def build_method(view: _SpecView, name: str, config: Mapping[str, Any]) -> _Method:
    """Describe the method ``name`` of a resource from its operation in the spec and its lines of resources.yaml.

    Args:
        view: The spec, read.
        name: The method's name.
        config: Its entry in resources.yaml.

    Returns:
        What the templates need.

    Raises:
        SpecError: The entry names an unknown operation or parameter.
    """
    op_id = config["operation"]
    if op_id not in view.operations:
        raise SpecError(f"resources.yaml: {name} names an unknown operation {op_id!r}")
    entry = view.table[op_id]
    hidden = {"Idempotency-Key", *(config.get("const") or {})}
    if entry["is_list_page"]:
        hidden.add("cursor")  # the pager follows it
    found = [_Param(p.kwargs[0][1], "path", p.kwargs[0][1], "str", True) for p in entry["path_params"]]
    body = view.reader.deref(view.operations[op_id].get("requestBody")) or {}
    _, body_schema = pick_media_type(body.get("content") or {})
    record = _request_record(view.plans, op_id) or {}
    # A client-made record id is made by the SDK unless the caller gives one.
    client_id = record.get("id_name") if record.get("id_in") == "body" else None
    if body_schema is not None:
        schema = view.reader.deref(body_schema)
        required = set(schema.get("required") or ())
        for prop, prop_schema in schema_properties(view.reader, schema).items():
            json_value = prop in record.get("json_fields", ())
            annotation = "Any" if json_value else _annotation(view.reader.inline_schema(prop_schema))
            found.append(_Param(prop, "body", prop, annotation, prop in required and prop != client_id))
    for where in ("query", "header"):
        for given in (dict(p.kwargs) for p in entry[f"{where}_params"]):
            if given["name"] not in hidden:
                python = given["name"].lower().replace("-", "_")
                found.append(_Param(given["name"], where, python, _annotation(given["schema"]), given["required"]))
    shaped = config.get("params") or {}
    unknown = set(shaped) - {_RENAMED.get(p.name, p.name) for p in found}
    if unknown:
        raise SpecError(f"resources.yaml: {op_id} shapes parameters it does not have: {sorted(unknown)}")
    for param in found:
        param.name = _RENAMED.get(param.name, param.name)
        shape = shaped.get(param.name) or {}
        param.annotation = shape.get("type", param.annotation)
        param.default = shape.get("default", None if param.required else "None")
        param.convert = shape.get("convert")
        param.omit_default = bool(shape.get("omit_default"))
    by_name = {p.name: p for p in found}
    if set(config.get("positional") or ()) - set(by_name):
        raise SpecError(f"resources.yaml: {op_id} has no parameter {sorted(set(config['positional']) - set(by_name))}")
    leading = [p for p in found if p.where == "path"] + [by_name[n] for n in config.get("positional") or ()]
    # Keyword-only: the required ones first, then the rest, each in the spec's order; a client-made id last.
    rest = [p for p in found if p not in leading]
    ordered = leading + sorted(rest, key=lambda p: (p.default is not None, p.where == "body" and p.wire == client_id))
    model = entry["responses"][min(entry["responses"])] if entry["responses"] else None
    if entry["is_list_page"] and config.get("page", True) is not False:
        result, shape_name = _model_annotation(entry["page_item"], view.twins), "page"
    elif model is None:
        result, shape_name = "None", "none"
    else:
        result, shape_name = _model_annotation(model, view.twins), "replay" if config.get("replay") else "call"
    return _Method(
        name=name,
        operation_id=op_id,
        shape=shape_name,
        result=result,
        params=ordered,
        positional=len(leading),
        request=_request_arguments(ordered, config.get("const") or {}),
        prelude=config.get("check", ""),
        doc=config.get("doc") or entry["summary"] or name,
        replay=config.get("replay", ""),
    )


def _model_annotation(name: str, twins: Mapping[str, Any]) -> str:
    """Return how a generated module names a model: its plaintext twin (``types.``) when it has one."""
    return f"types.{name}" if name in twins else f"models.{name}"


def _request_arguments(params: list[_Param], const: Mapping[str, Any]) -> str:
    """Return the keyword arguments of ``client.call`` that send a method's parameters."""
    groups: dict[str, list[str]] = {"path": [], "query": [], "header": [], "body": []}
    for param in params:
        groups[param.where].append(f"{param.wire!r}: {param.value()}")
    groups["query"] += [f"{wire!r}: {value!r}" for wire, value in const.items()]
    keywords = {"path": "path_params", "query": "query", "header": "headers"}
    parts = [
        f"{keywords[where]}={{{', '.join(items)}}}" for where, items in groups.items() if items and where != "body"
    ]
    if groups["body"]:
        parts.append(f"body=compact({{{', '.join(groups['body'])}}})")
    return ", ".join(parts)


def load_resources_config() -> dict[str, Any]:
    """Return resources.yaml, parsed."""
    config: dict[str, Any] = yaml.safe_load(RESOURCES_CONFIG.read_bytes())
    return config


def render_resource_module(attribute: str, resource: Mapping[str, Any], methods: list[_Method]) -> str:
    """Return the source of one generated resource module: sync, async and both raw-response classes.

    Args:
        attribute: The client attribute, e.g. ``messages``.
        resource: Its entry in resources.yaml.
        methods: Its operation methods.

    Returns:
        The module's source, before ruff tidies and formats it.
    """
    cls = resource["class"]
    doc = resource["doc"]
    names = sorted([cls, f"Async{cls}", f"{cls}WithRawResponse", f"Async{cls}WithRawResponse"])
    return render(
        "resource.py.j2",
        attribute=attribute,
        summary=f"{doc[:1].lower()}{doc[1:]}",
        cls=cls,
        doc=doc.rstrip("."),
        names=names,
        methods=methods,
    )


def render_clients_module(config: Mapping[str, Any]) -> str:
    """Return the source of ``_generated/_clients.py``: the clients' resources and their raw-response views.

    Args:
        config: resources.yaml, parsed.

    Returns:
        The module's source, before ruff tidies and formats it.
    """
    resources = [{"attribute": attribute, "cls": r["class"]} for attribute, r in config["resources"].items()]
    return render("clients.py.j2", resources=resources)


def render_sdk_layer(spec: Mapping[str, Any]) -> dict[str, str]:
    """Return the generated modules of the SDK's resource layer by file name, formatted.

    Raises:
        SpecError: resources.yaml and the spec disagree (an operation mapped twice, none at all, ...).
    """
    config = load_resources_config()
    view = _SpecView.of(spec)
    seen: dict[str, str] = {}
    files: dict[str, str] = {"__init__.py": render("sdk_generated_init.py.j2")}
    for attribute, resource in config["resources"].items():
        methods = []
        for name, entry in resource["methods"].items():
            op_id = entry["operation"]
            if op_id in seen:
                raise SpecError(f"resources.yaml maps {op_id} twice ({seen[op_id]} and {attribute}.{name})")
            seen[op_id] = f"{attribute}.{name}"
            methods.append(build_method(view, name, entry))
        files[f"{attribute}.py"] = render_resource_module(attribute, resource, methods)
    missing = set(view.operations) - set(seen) - set(config.get("unmapped") or ())
    if missing:
        raise SpecError(f"resources.yaml gives no SDK method to {sorted(missing)} (or list them as unmapped)")
    files["_clients.py"] = render_clients_module(config)
    return ruff_tidy(files)
