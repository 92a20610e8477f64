"""The generated operation layer: requests and responses driven by ``nexysync_generated.OPERATIONS``.

Nothing here knows a URL or a field by hand: the method, path, parameters and response model of
every call come from the operation table, and what it encrypts (which records, with which kind,
id, author and routing) from the encryption plan, both generated from openapi.yaml.
"""

from __future__ import annotations

import copy
import datetime as dt
import enum
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel

import nexysync_generated.models as generated_models
from nexysync._errors import APIError, DecryptionError, error_from_response
from nexysync._pages import DecryptedPage, UndecryptableRecord
from nexysync._ulid import new_ulid
from nexysync.crypto import Binding, KeyRing
from nexysync.types import PLAINTEXT_MODELS
from nexysync_generated import ENCRYPTION_PLANS, OPERATIONS, EncryptedAt, Operation, RecordPlan

__all__ = [
    "Cipher",
    "PreparedCall",
    "decrypt_record",
    "parse_response",
    "prepare_call",
]

logger = logging.getLogger("nexysync")

#: Each record schema's plan, by model name (one name per schema, as the generator wrote both).
RECORD_PLANS: dict[str, RecordPlan] = {
    where.record.schema: where.record
    for plan in ENCRYPTION_PLANS.values()
    for where in (*plan.request, *(w for ws in plan.responses.values() for w in ws))
}


@dataclass(frozen=True)
class Cipher:
    """The key ring, the project the envelopes are bound to, and the caller's slug (the author of what it writes)."""

    ring: KeyRing
    project_id: str
    author: str | None = None

    def seal(self, value: Any, *, record: RecordPlan, record_id: str, field: str, bound: Binding) -> str:
        """Encrypt one plaintext field value into a v2 envelope (JSON-serialised first for JSON fields)."""
        if field in record.json_fields:
            plaintext = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        elif isinstance(value, str):
            plaintext = value.encode()
        else:
            raise TypeError(f"field {field!r} takes a str, got {type(value).__name__}")
        return self.ring.encrypt(
            plaintext, project_id=self.project_id, kind=record.kind, record_id=record_id, field=field, bound=bound
        )

    def open(self, envelope: Any, *, record: RecordPlan, record_id: str, field: str, bound: Binding) -> Any:
        """Decrypt one envelope into its plaintext value (parsed for JSON fields).

        Raises:
            DecryptionError: not an envelope, tampered with, moved, relabelled, or made with a key
                not in the ring.
        """
        if not isinstance(envelope, str):
            raise DecryptionError(
                f"not an envelope: the server sent a {type(envelope).__name__} where the plan says encrypted",
                record=f"{record.kind}/{record_id}",
                field=field,
            )
        plaintext = self.ring.decrypt(
            envelope, project_id=self.project_id, kind=record.kind, record_id=record_id, field=field, bound=bound
        )
        if field in record.json_fields:
            return json.loads(plaintext)
        return plaintext.decode()


def binding(record: RecordPlan, data: Mapping[str, Any], author: str) -> Binding:
    """Return what a v2 envelope of the record binds after its field: the author, then the routing.

    Args:
        record: The record's plan.
        data: The record (a request body or a response record), for its routing fields.
        author: The writer's slug.
    """
    bound = [(record.author, author)]
    for name, when_null in record.routing:
        value = data.get(name)
        bound.append((name, when_null if value is None else str(value)))
    return tuple(bound)


def _records_at(data: Any, at: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """Yield the records found at the plan's steps (a property name, or ``[]`` for each item)."""
    if not at:
        if isinstance(data, dict):
            yield data
        return
    step, rest = at[0], at[1:]
    if step == "[]":
        if isinstance(data, list):
            for item in data:
                yield from _records_at(item, rest)
    elif isinstance(data, dict):
        yield from _records_at(data.get(step), rest)


def open_record(record: RecordPlan, data: dict[str, Any], cipher: Cipher, record_id: str | None = None) -> None:
    """Decrypt, in place, every encrypted field of one response record.

    Args:
        record: The record's plan.
        data: The record as received.
        cipher: The key ring and project.
        record_id: The id the caller named (a path parameter, or the id it sent), which binds the
            record instead of the one it carries, so the server cannot swap in another record.

    Raises:
        APIError: the record carries no id.
        DecryptionError: a field is not an envelope, or fails to decrypt.
    """
    rid = record_id if record_id is not None else data.get(record.id_name)
    if not isinstance(rid, str):
        raise APIError(f"a {record.kind} record without an id cannot be decrypted", body=data)
    author = data.get(record.author)
    bound = binding(record, data, author if isinstance(author, str) else "")
    for field in record.fields:
        value = data.get(field)
        if value is not None:
            data[field] = cipher.open(value, record=record, record_id=rid, field=field, bound=bound)


def open_body(places: tuple[EncryptedAt, ...], data: Any, cipher: Cipher, record_id: str | None = None) -> None:
    """Decrypt, in place, every encrypted record of a response body, as its plan places them.

    Records outside any array are bound to ``record_id`` when given; those of an array to their own id.
    """
    for where in places:
        own = record_id if "[]" not in where.at else None
        for found in _records_at(data, where.at):
            open_record(where.record, found, cipher, own)


def decrypt_record(key_ring: KeyRing, project_id: str, schema: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of one record as the API sends it, its encrypted fields decrypted by the encryption plan.

    For code that reads the API without a client (a hook that must start fast): the same checks
    as the client's, the author and routing of a v2 envelope included.

    Args:
        key_ring: The project keys.
        project_id: The record's project.
        schema: The record's wire model name, e.g. ``Message`` or ``KvEntry``.
        record: The record as received.

    Raises:
        KeyError: ``schema`` has no encrypted fields.
        DecryptionError: a field is not an envelope or fails to decrypt.
    """
    plain = copy.deepcopy(dict(record))
    open_record(RECORD_PLANS[schema], plain, Cipher(key_ring, project_id))
    return plain


def page_records(places: tuple[EncryptedAt, ...]) -> RecordPlan | None:
    """Return the record plan of a list of encrypted records (all of them in ``data[]``), else None.

    Those records are decrypted one by one, and a page of them degrades per record (see
    :class:`DecryptedPage`).
    """
    if len(places) == 1 and places[0].at == ("data", "[]"):
        return places[0].record
    return None


def _model(name: str) -> type[BaseModel]:
    model = getattr(generated_models, name)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{name} is not a generated model")
    return model


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True)
class PreparedCall:
    """One operation call ready for the transport.

    Attributes:
        operation: The operation's table entry.
        path: The path with its parameters filled in.
        params: The query string.
        json: The JSON body (encrypted fields already sealed), or None.
        headers: Header parameters of the operation (``If-Match``, ...).
        idempotency_key: For writes: the client-made record id, or None for a fresh key.
        record_id: The id that binds the response's top-level record, when known.
    """

    operation: Operation
    path: str
    params: dict[str, str]
    json: Any
    headers: dict[str, str]
    idempotency_key: str | None
    record_id: str | None


def needs_cipher(operation_id: str) -> bool:
    """Return whether a call of the operation encrypts or decrypts anything."""
    return operation_id in ENCRYPTION_PLANS


def prepare_call(
    operation_id: str,
    *,
    path_params: Mapping[str, Any] | None = None,
    query: Mapping[str, Any] | None = None,
    body: Mapping[str, Any] | BaseModel | None = None,
    headers: Mapping[str, Any] | None = None,
    cipher: Cipher | None = None,
    idempotency_key: str | None = None,
) -> PreparedCall:
    """Turn an operation id and plaintext arguments into a request.

    Args:
        operation_id: A key of ``OPERATIONS``.
        path_params: Values of the path template's parameters.
        query: Query parameters; None values are left out.
        body: The request body, plaintext in encrypted fields; a pydantic model is dumped by alias.
        headers: Header parameters; None values are left out, names must be the operation's.
        cipher: Needed when the operation has encrypted fields.
        idempotency_key: A caller's key for a write; by default the record id of an encrypted body.

    Raises:
        KeyError: unknown operation id.
        ValueError: a missing or unknown path parameter, a required query parameter missing, or a
            header that is not a parameter of the operation.
    """
    operation = OPERATIONS[operation_id]
    given = dict(path_params or {})
    names = {p.name for p in operation.path_params}
    if set(given) != names:
        raise ValueError(f"{operation_id} takes path parameters {sorted(names)}, got {sorted(given)}")
    path = operation.path
    for name, value in given.items():
        path = path.replace("{" + name + "}", quote(str(value), safe=""))
    params = {key: _query_value(value) for key, value in (query or {}).items() if value is not None}
    for param in operation.query_params:
        if param.required and param.name not in params:
            raise ValueError(f"{operation_id} needs the query parameter {param.name!r}")
    header_names = {p.name.lower(): p.name for p in operation.header_params}
    header_values: dict[str, str] = {}
    for name, value in (headers or {}).items():
        if name.lower() not in header_names:
            raise ValueError(f"{operation_id} takes no header {name!r}")
        if value is not None:
            header_values[header_names[name.lower()]] = _query_value(value)
    # The record a path names (its last parameter: a message id, a kv key) binds its envelopes.
    record_id = _query_value(given[operation.path_params[-1].name]) if operation.path_params else None
    payload: Any = None
    if body is not None:
        if isinstance(body, BaseModel):
            payload = body.model_dump(mode="json", by_alias=True, exclude_unset=True)
        else:
            payload = dict(body)
        plan = ENCRYPTION_PLANS.get(operation_id)
        if plan is not None and plan.request:
            if cipher is None:
                raise ValueError(f"{operation_id} has encrypted fields; the client needs a key ring")
            record_id, idempotency_key = _seal_request(
                operation_id, plan.request, payload, given, cipher, idempotency_key
            )
    elif operation.request_body_required:
        raise ValueError(f"{operation_id} needs a request body")
    return PreparedCall(operation, path, params, payload, header_values, idempotency_key, record_id)


def _seal_request(
    operation_id: str,
    places: tuple[EncryptedAt, ...],
    payload: dict[str, Any],
    path_params: Mapping[str, Any],
    cipher: Cipher,
    idempotency_key: str | None,
) -> tuple[str | None, str | None]:
    """Encrypt, in place, the encrypted fields of a request body; return its record id and idempotency key.

    The body is one record, or holds records at the plan's places (a claim's ``leases``, say),
    each with a client-made id of its own; then no single id binds the answer (``None``), and the
    first record's id is the idempotency key.

    Raises:
        ValueError: records inside the body are bound to a path parameter, or the caller's slug is unknown.
    """
    author = cipher.author
    if author is None:
        raise ValueError(f"{operation_id}: the client does not know its agent's slug, the author it binds")
    if len(places) == 1 and places[0].at == ():
        record = places[0].record
        if record.id_in == "path":
            record_id = _query_value(path_params[record.id_name])
        else:
            # A client-made id: bound into the ciphertext, and the write's idempotency key.
            record_id = _seal_record(record, payload, cipher, author, None)
            return record_id, idempotency_key or record_id
        _seal_record(record, payload, cipher, author, record_id)
        return record_id, idempotency_key
    if any(place.at == () or place.record.id_in != "body" for place in places):
        raise ValueError(f"{operation_id}: records inside a request body must carry their own ids")
    ids = [
        _seal_record(place.record, item, cipher, author, None)
        for place in places
        for item in _records_at(payload, place.at)
    ]
    return None, idempotency_key or (ids[0] if ids else None)


def _seal_record(record: RecordPlan, data: dict[str, Any], cipher: Cipher, author: str, record_id: str | None) -> str:
    """Encrypt one record's fields in place, bound to ``record_id`` (else its own id, made when missing)."""
    if record_id is None:
        record_id = data.get(record.id_name) or new_ulid()
        data[record.id_name] = record_id
    bound = binding(record, data, author)
    for field in record.fields:
        if data.get(field) is not None:
            data[field] = cipher.seal(data[field], record=record, record_id=record_id, field=field, bound=bound)
    return record_id


def parse_response(call: PreparedCall, response: httpx.Response, cipher: Cipher | None) -> Any:
    """Check the status, then parse (and decrypt) the body into its response model.

    A list of encrypted records (a :class:`DecryptedPage`: message, kv, ref and file pages, a
    thread) keeps the records that decrypt and lists the others in ``undecryptable``; any other
    response raises on the first envelope that fails.

    Returns:
        The plaintext model instance, None for a body-less success, or the text of a non-JSON one.

    Raises:
        APIStatusError: (a subclass of it) for any status that is not a success of the operation.
        DecryptionError: an envelope of a single record failed to decrypt.
    """
    operation = call.operation
    if response.status_code not in operation.success_statuses:
        raise error_from_response(response)
    model_name = operation.responses.get(response.status_code)
    if model_name is None:
        return response.text if response.content else None
    model = _model(model_name)
    data = response.json()
    skipped: list[UndecryptableRecord] = []
    places = (
        ENCRYPTION_PLANS[operation.operation_id].responses.get(response.status_code, ())
        if (operation.operation_id in ENCRYPTION_PLANS)
        else ()
    )
    if places:
        if cipher is None:
            raise ValueError(f"{operation.operation_id} returns encrypted fields; the client needs a key ring")
        record = page_records(places)
        if record is not None and isinstance(data, dict) and isinstance(data.get("data"), list):
            data["data"], skipped = _decrypt_records(record, data["data"], cipher, model.__name__)
        else:
            open_body(places, data, cipher, call.record_id)
    result = PLAINTEXT_MODELS.get(model.__name__, model).model_validate(data)
    if isinstance(result, DecryptedPage):
        result._undecryptable = skipped
    return result


def _decrypt_records(
    record: RecordPlan, records: list[Any], cipher: Cipher, page: str
) -> tuple[list[Any], list[UndecryptableRecord]]:
    """Decrypt the records of a page one by one; return those that decrypted and those that did not."""
    kept: list[Any] = []
    skipped: list[UndecryptableRecord] = []
    for item in records:
        # Decrypted in a copy: a record that fails halfway keeps every field as it came.
        trial = copy.deepcopy(item)
        try:
            if not isinstance(trial, dict):
                raise DecryptionError("not a record", record=f"{record.kind}/?", field="")
            open_record(record, trial, cipher)
        except DecryptionError as error:
            logger.warning("skipped a record of a %s page that could not be decrypted: %s", page, error)
            skipped.append(UndecryptableRecord(error, item if isinstance(item, dict) else {}))
        else:
            kept.append(trial)
    return kept, skipped
