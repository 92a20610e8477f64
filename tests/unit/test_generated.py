"""Check that generated/nexysync_generated matches openapi.yaml and behaves as the SDK expects."""

from __future__ import annotations

import copy
import difflib
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = REPO_ROOT / "openapi.yaml"
PACKAGE_DIR = REPO_ROOT / "generated" / "nexysync_generated"
GENERATOR = REPO_ROOT / "scripts" / "generate.py"
SDK_TYPES = REPO_ROOT / "sdk" / "nexysync" / "types.py"
SDK_GENERATED = REPO_ROOT / "sdk" / "nexysync" / "_generated"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

try:
    import nexysync_generated
    from nexysync_generated import OPERATIONS, models
except ModuleNotFoundError:  # not installed: test the committed package in place
    sys.path.insert(0, str(PACKAGE_DIR.parent))
    import nexysync_generated
    from nexysync_generated import OPERATIONS, models

MESSAGE_SAMPLE: dict[str, Any] = {
    "id": "01HZX3K6V8Q9R2S3T4V5W6X7Y8",
    "project_id": "01HZX3K6V8Q9R2S3T4V5W6X7Y9",
    "from": "alice",
    "to": "bob",
    "broadcast": False,
    "type": "request",
    "priority": "normal",
    "reply_to": None,
    "topic": "v1.0a1b2c3d.AAAA",
    "payload": "v1.0a1b2c3d.BBBB",
    "metadata": None,
    "status": "unread",
    "pinned": False,
    "reactions": [{"emoji": "+1", "agent": "bob", "created_at": "2025-01-01T00:00:01Z"}],
    "created_at": "2025-01-01T00:00:00Z",
    "expires_at": "2025-01-02T00:00:00Z",
}


def _package_files(directory: Path) -> dict[str, bytes]:
    """Return the files of a package directory by relative path, without bytecode caches."""
    return {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def _load_generator() -> SimpleNamespace:
    """Import the generator's package (``scripts/nexysync_codegen``) and return what the tests call."""
    if str(GENERATOR.parent) not in sys.path:
        sys.path.insert(0, str(GENERATOR.parent))
    from nexysync_codegen import cli, encryption, operations, sdk, spec

    return SimpleNamespace(
        SpecError=spec.SpecError,
        build_operations=operations.build_operations,
        model_encrypted_fields=operations.model_encrypted_fields,
        build_encryption_plans=encryption.build_encryption_plans,
        render_sdk_layer=sdk.render_sdk_layer,
        write_package=cli.write_package,
    )


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """Return the contract, parsed."""
    document: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_bytes())
    return document


def test_committed_package_matches_a_fresh_generation(tmp_path: Path) -> None:
    """Regenerate into a temp dir (from another cwd) and demand byte-identical files, the SDK's too.

    The SDK's generated files are its plaintext models (types.py) and its resource layer
    (sdk/nexysync/_generated/: every resource's sync, async and raw-response classes).
    """
    out = tmp_path / "nexysync_generated"
    command = [sys.executable, str(GENERATOR), "--out", str(out), "--sdk-types", str(tmp_path / "types.py")]
    result = subprocess.run(
        [*command, "--sdk-resources", str(tmp_path / "sdk_generated")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"scripts/generate.py failed:\n{result.stderr}{result.stdout}"

    sdk = "../../sdk/nexysync/"
    fresh = {
        **_package_files(out),
        f"{sdk}types.py": (tmp_path / "types.py").read_bytes(),
        **{f"{sdk}_generated/{name}": data for name, data in _package_files(tmp_path / "sdk_generated").items()},
    }
    committed = {
        **_package_files(PACKAGE_DIR),
        f"{sdk}types.py": SDK_TYPES.read_bytes(),
        **{f"{sdk}_generated/{name}": data for name, data in _package_files(SDK_GENERATED).items()},
    }
    problems: list[str] = []
    for name in sorted(fresh.keys() - committed.keys()):
        problems.append(f"missing from generated/nexysync_generated: {name}")
    for name in sorted(committed.keys() - fresh.keys()):
        problems.append(f"not made by the generator (stale or hand-written): {name}")
    for name in sorted(fresh.keys() & committed.keys()):
        if fresh[name] != committed[name]:
            diff = difflib.unified_diff(
                committed[name].decode("utf-8", "replace").splitlines(keepends=True),
                fresh[name].decode("utf-8", "replace").splitlines(keepends=True),
                fromfile=f"committed/{name}",
                tofile=f"regenerated/{name}",
            )
            problems.append("".join(diff))
    assert not problems, (
        "generated/nexysync_generated is out of date; run `python scripts/generate.py`.\n\n" + "\n".join(problems)
    )


def test_every_operation_is_in_the_table_with_its_method_and_path(spec: dict[str, Any]) -> None:
    """Find each operationId of openapi.yaml in OPERATIONS, with the same method and path, and nothing else."""
    expected = {
        operation["operationId"]: (method.upper(), path)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }
    assert expected, "openapi.yaml declares no operations"
    actual = {op_id: (op.method, op.path) for op_id, op in OPERATIONS.items()}
    assert actual == expected
    assert all(op_id == op.operation_id for op_id, op in OPERATIONS.items())


def test_operation_entries_describe_auth_bodies_and_responses(spec: dict[str, Any]) -> None:
    """Check the table's security, body, response and parameter details against the spec."""
    for op_id, op in OPERATIONS.items():
        operation = spec["paths"][op.path][op.method.lower()]
        requirements = operation.get("security", spec.get("security")) or []
        schemes = {name for requirement in requirements for name in requirement}
        assert op.security == (schemes.pop() if schemes else None), op_id
        assert op.success_statuses == tuple(sorted(op.responses)), op_id
        assert all(200 <= status < 300 for status in op.success_statuses), op_id
        for name in [op.request_body, *op.responses.values()]:
            if name is not None:
                assert isinstance(getattr(models, name), type), f"{op_id}: no model {name}"
        for param in op.path_params:
            assert param.required and f"{{{param.name}}}" in op.path, op_id

    send = OPERATIONS["messages_send"]
    assert (send.security, send.request_body, send.responses) == (
        "AgentKey",
        "MessageCreate",
        {200: "Message", 201: "Message"},
    )
    assert OPERATIONS["auth_register"].security is None
    assert OPERATIONS["projects_create"].security == "HumanToken"
    assert OPERATIONS["projects_delete"].responses == {204: None}

    listing = OPERATIONS["messages_list"]
    assert (listing.is_list_page, listing.page_item) == (True, "Message")
    # A thread pages by cursor beyond the server's read budget, like a list.
    thread = OPERATIONS["messages_thread"]
    assert (thread.is_list_page, thread.page_item) == (True, "Message")
    assert not OPERATIONS["messages_get"].is_list_page
    query = {param.name: param for param in listing.query_params}
    assert {"limit", "cursor", "from"} <= query.keys()
    assert query["limit"].schema["maximum"] == 200 and not query["limit"].required
    assert "$ref" not in str(query["from"].schema), "parameter schemas must have their $refs resolved"
    assert [param.name for param in OPERATIONS["agents_update"].path_params] == ["project_id", "agent_id"]


def test_messages_send_encrypts_exactly_topic_payload_metadata() -> None:
    """Find the markers that sit next to a $ref in MessageCreate, and those of Message."""
    send = OPERATIONS["messages_send"]
    assert send.request_encrypted_fields == ("metadata", "payload", "topic")
    assert send.response_encrypted_fields == ("metadata", "payload", "topic")
    assert set(send.encrypted_fields) == {"topic", "payload", "metadata"}
    assert set(OPERATIONS["messages_list"].response_encrypted_fields) == {"topic", "payload", "metadata"}
    assert OPERATIONS["projects_create"].encrypted_fields == ()
    assert nexysync_generated.MODEL_ENCRYPTED_FIELDS["MessageCreate"] == ("metadata", "payload", "topic")


def test_encrypted_field_discovery_follows_refs_arrays_and_branches() -> None:
    """Collect markers beside a $ref, on a referenced schema, inside arrays and oneOf branches only."""
    generator = _load_generator()
    mini = {
        "openapi": "3.1.0",
        "paths": {
            "/things": {
                "post": {
                    "operationId": "things_create",
                    "requestBody": {
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ThingCreate"}}}
                    },
                    "responses": {
                        "201": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Page"}}}}
                    },
                }
            }
        },
        "components": {
            "schemas": {
                "Secret": {"type": "string", "x-nexysync-encrypted": True},
                "Plain": {"type": "string"},
                "ThingCreate": {
                    "type": "object",
                    "properties": {
                        "beside_ref": {"$ref": "#/components/schemas/Plain", "x-nexysync-encrypted": True},
                        "via_ref": {"$ref": "#/components/schemas/Secret"},
                        "clear": {"$ref": "#/components/schemas/Plain"},
                    },
                    "oneOf": [{"properties": {"in_branch": {"type": "string", "x-nexysync-encrypted": True}}}],
                },
                "Thing": {"type": "object", "properties": {"body": {"type": "string", "x-nexysync-encrypted": True}}},
                "Page": {
                    "type": "object",
                    "properties": {
                        "data": {"type": "array", "items": {"$ref": "#/components/schemas/Thing"}},
                        "next_cursor": {"type": ["string", "null"]},
                    },
                },
            }
        },
    }
    (call,) = generator.build_operations(mini)
    entry = dict(call.kwargs)
    assert entry["request_encrypted_fields"] == ("beside_ref", "in_branch", "via_ref")
    assert entry["response_encrypted_fields"] == ("body",)
    assert (entry["is_list_page"], entry["page_item"]) == (True, "Thing")
    assert generator.model_encrypted_fields(mini) == {
        "Thing": ("body",),
        "ThingCreate": ("beside_ref", "in_branch", "via_ref"),
    }

    mini["paths"]["/things"]["post"]["requestBody"]["content"]["application/json"]["schema"] = {"type": "object"}
    with pytest.raises(generator.SpecError, match="must be a \\$ref"):
        generator.build_operations(mini)


def test_message_round_trips_a_sample_with_from() -> None:
    """Read a response dict with `from` into `from_`, and write it back unchanged by alias."""
    message = models.Message.model_validate(MESSAGE_SAMPLE)
    assert message.from_ == "alice"
    assert message.id == MESSAGE_SAMPLE["id"], "Ulid fields should be plain strings"
    assert message.model_dump(mode="json", by_alias=True, exclude_unset=True) == MESSAGE_SAMPLE
    assert models.Message.model_validate_json(message.model_dump_json(by_alias=True)) == message

    by_name = models.Message.model_validate(
        {**{k: v for k, v in MESSAGE_SAMPLE.items() if k != "from"}, "from_": "alice"}
    )
    assert by_name == message


def test_models_carry_the_encryption_marker_and_constraints() -> None:
    """Expose `x-nexysync-encrypted` as json_schema_extra and enforce the envelope pattern."""
    for name in ("topic", "payload", "metadata"):
        assert models.Message.model_fields[name].json_schema_extra == {"x-nexysync-encrypted": True}
    assert models.Message.model_fields["status"].json_schema_extra is None
    assert models.Message.model_json_schema()["properties"]["topic"]["x-nexysync-encrypted"] is True

    envelope = "v1.0a1b2c3d." + "A" * 38
    direct = models.MessageCreate.model_validate(
        {"to": "bob", "type": "request", "topic": envelope, "payload": envelope}
    )
    assert direct.model_dump(exclude_none=True)["to"] == "bob"
    with pytest.raises(ValueError, match="pattern"):
        models.MessageCreate.model_validate({"to": "bob", "type": "request", "topic": "plaintext", "payload": envelope})


def test_models_import_without_warnings() -> None:
    """Import the models with every warning turned into an error, in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", "import nexysync_generated.models"],
        cwd=PACKAGE_DIR.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_packaged_spec_is_the_contract() -> None:
    """Ship openapi.yaml byte for byte, and a load_spec() that parses to the same document."""
    assert nexysync_generated.spec_path().read_bytes() == SPEC_PATH.read_bytes()
    assert nexysync_generated.load_spec() == yaml.safe_load(SPEC_PATH.read_bytes())
    assert nexysync_generated.__version__ == yaml.safe_load(SPEC_PATH.read_bytes())["info"]["version"]


def test_every_encrypted_field_has_a_plan_with_its_kind_and_id() -> None:
    """Cover each operation's encrypted fields, request and each response, by records of its plan."""
    plans = nexysync_generated.ENCRYPTION_PLANS
    for op_id, op in OPERATIONS.items():
        plan = plans.get(op_id)
        if not op.encrypted_fields:
            assert plan is None, f"{op_id} encrypts nothing but has a plan"
            continue
        assert plan is not None, f"{op_id} has encrypted fields {op.encrypted_fields} and no plan"
        assert {f for where in plan.request for f in where.record.fields} == set(op.request_encrypted_fields), op_id
        planned = {f for places in plan.responses.values() for where in places for f in where.record.fields}
        assert planned == set(op.response_encrypted_fields), op_id
    kinds = {
        op_id: {where.record.kind for places in (plan.request, *plan.responses.values()) for where in places}
        for op_id, plan in plans.items()
    }
    assert kinds["messages_send"] == kinds["messages_thread"] == {"message"}
    assert kinds["kv_put"] == {"kv"} and kinds["refs_share"] == {"ref"} and kinds["files_create"] == {"file"}
    (put,) = plans["kv_put"].request
    assert (put.record.id_in, put.record.id_name, put.record.author) == ("path", "key", "updated_by")
    (send,) = plans["messages_send"].request
    assert send.record.json_fields == ("metadata",)
    assert send.record.routing == (("to", "*"), ("reply_to", "-"))
    (listed,) = plans["messages_list"].responses[200]
    assert listed.at == ("data", "[]") and listed.record.schema == "Message"
    (upload,) = plans["files_create"].responses[201]
    assert upload.at == ("file",) and upload.record.kind == "file"


def test_an_encrypted_field_without_a_plan_fails_generation(spec: dict[str, Any]) -> None:
    """Refuse a record schema without its kind, and an encrypted property in an inline schema."""
    generator = _load_generator()
    broken = copy.deepcopy(spec)
    del broken["components"]["schemas"]["KvEntry"]["x-nexysync-record-kind"]
    with pytest.raises(generator.SpecError, match=r"KvEntry.*x-nexysync-record-kind"):
        generator.build_encryption_plans(broken)
    inline = copy.deepcopy(spec)
    inline["components"]["schemas"]["Thread"]["properties"]["note"] = {
        "type": "object",
        "properties": {"text": {"type": "string", "x-nexysync-encrypted": True}},
    }
    with pytest.raises(generator.SpecError, match="inline schema"):
        generator.build_encryption_plans(inline)


def test_the_sdk_layer_is_made_from_the_spec_and_refuses_an_operation_without_a_method(spec: dict[str, Any]) -> None:
    """Generate the resource modules from the spec: a new parameter shows up; an unmapped operation fails."""
    generator = _load_generator()
    widened = copy.deepcopy(spec)
    widened["paths"]["/v1/kv"]["get"]["parameters"].append(
        {"name": "owner", "in": "query", "schema": {"type": "string"}, "description": "Only this writer's."}
    )
    kv = generator.render_sdk_layer(widened)["kv.py"]
    # Declared and sent by the sync, async and both raw-response methods.
    assert kv.count("owner: str | None = None") == 4 and kv.count('"owner": owner') == 4
    unmapped = copy.deepcopy(spec)
    unmapped["paths"]["/v1/widgets"] = {"get": {**spec["paths"]["/v1/quota"]["get"], "operationId": "widgets_list"}}
    with pytest.raises(generator.SpecError, match="widgets_list"):
        generator.render_sdk_layer(unmapped)


def _rename_schema(document: Any, old: str, new: str) -> Any:
    """Return a copy of a spec in which component schema ``old`` is called ``new``, every $ref too."""
    if isinstance(document, dict):
        renamed = {}
        for key, value in document.items():
            if key == "$ref" and value == f"#/components/schemas/{old}":
                value = f"#/components/schemas/{new}"
            renamed[key] = _rename_schema(value, old, new)
        return renamed
    if isinstance(document, list):
        return [_rename_schema(item, old, new) for item in document]
    return document


def test_renaming_a_schema_keeps_the_record_kind_and_decryption(spec: dict[str, Any], tmp_path: Path) -> None:
    """Rename Message in a copy of the spec, regenerate, and decrypt today's envelopes with the new plan."""
    from nexysync._operations import Cipher, binding, open_body
    from nexysync.crypto import KeyRing

    renamed = _rename_schema(spec, "Message", "ChatMessage")
    schemas = renamed["components"]["schemas"]
    schemas["ChatMessage"] = schemas.pop("Message")
    spec_file = tmp_path / "openapi.yaml"
    spec_file.write_text(yaml.safe_dump(renamed, sort_keys=False), "utf-8")
    out = tmp_path / "nexysync_generated"
    _load_generator().write_package(out, spec_file)
    assert "class ChatMessage(" in (out / "models.py").read_text("utf-8")
    module_spec = importlib.util.spec_from_file_location("renamed_encryption", out / "encryption.py")
    assert module_spec is not None and module_spec.loader is not None
    regenerated = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(regenerated)

    (old_place,) = nexysync_generated.ENCRYPTION_PLANS["messages_get"].responses[200]
    (new_place,) = regenerated.ENCRYPTION_PLANS["messages_get"].responses[200]
    assert new_place.record.schema == "ChatMessage"
    assert (new_place.record.kind, new_place.record.fields) == (old_place.record.kind, old_place.record.fields)

    cipher = Cipher(KeyRing([bytes(range(32))]), MESSAGE_SAMPLE["project_id"], "alice")
    record = {**MESSAGE_SAMPLE}
    bound = binding(old_place.record, record, "alice")
    for field, value in (("topic", "Deploy"), ("payload", "ship it"), ("metadata", {"pr": 4})):
        record[field] = cipher.seal(value, record=old_place.record, record_id=record["id"], field=field, bound=bound)
    open_body(regenerated.ENCRYPTION_PLANS["messages_get"].responses[200], record, cipher, record["id"])
    assert (record["topic"], record["payload"], record["metadata"]) == ("Deploy", "ship it", {"pr": 4})
