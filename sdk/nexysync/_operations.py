"""The generated operation layer: requests and responses driven by ``nexysync_generated.OPERATIONS``.

Nothing here knows a URL or a field by hand: the method, path, parameters, response model and
the encrypted fields of every call come from the operation table generated from openapi.yaml.
"""

from __future__ import annotations

import copy
import datetime as dt
import enum
import functools
import json
import logging
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union
from urllib.parse import quote

import httpx
from pydantic import BaseModel, PrivateAttr, create_model

import nexysync_generated.models as generated_models
from nexysync._errors import APIError, error_from_response
from nexysync._ulid import new_ulid
from nexysync.crypto import DecryptionError, KeyRing
from nexysync_generated import MODEL_ENCRYPTED_FIELDS, OPERATIONS, Operation

__all__ = [
    "JSON_FIELDS",
    "Cipher",
    "DecryptedPage",
    "DecryptedThread",
    "PreparedCall",
    "UndecryptableRecord",
    "parse_response",
    "plain_model",
    "prepare_call",
    "record_kind",
]

logger = logging.getLogger("nexysync")

#: Encrypted fields whose plaintext is any JSON value (serialised before encryption).
JSON_FIELDS = frozenset({"metadata"})
_KIND_SUFFIX = re.compile(r"(Create|Update|Put|Entry)\d*$")
#: Fields that identify a record, in order of preference (messages have ids, kv entries keys).
RECORD_ID_FIELDS = ("id", "key")


def record_kind(model_name: str) -> str:
    """Return the record kind bound into a model's envelopes (``MessageCreate``: ``message``; ``KvEntry``: ``kv``)."""
    base = _KIND_SUFFIX.sub("", model_name)
    return re.sub(r"(?<!^)(?=[A-Z])", "_", base).lower()


class UndecryptableRecord(DecryptionError):
    """A record of a list page that failed to decrypt: the page left it out and kept the others.

    A :class:`~nexysync.DecryptionError` (same message, ``record`` and ``field``), with the record
    as the server sent it.

    Attributes:
        record: ``<record kind>/<record id>`` of the envelope (``message/01J...``, ``kv/<key>``).
        field: The field whose envelope failed.
        raw: The record as received: routing fields (``id``, ``from``, ``to``, ``key``, ...) in
            plaintext, every encrypted field still an envelope.
    """

    def __init__(self, error: DecryptionError, raw: dict[str, Any]) -> None:
        message = str(error).removesuffix(f" (record {error.record}, field {error.field!r})")
        super().__init__(message, record=error.record, field=error.field)
        self.raw = raw
        self.__cause__ = error


class DecryptedPage(BaseModel):
    """The base of the plaintext twin of every list of encrypted records (``MessageList``, ``Thread``, ...).

    One record that fails to decrypt (made with a key not in the ring, or tampered with) does not
    fail the page: it is left out of ``data`` and listed in :attr:`undecryptable`, and a warning
    is logged on the ``nexysync`` logger. The server could always leave a record out, so this
    hides nothing it could not; a tampered record is still never returned as data.
    """

    _undecryptable: list[UndecryptableRecord] = PrivateAttr(default_factory=list)

    @property
    def undecryptable(self) -> list[UndecryptableRecord]:
        """The records of this page left out of ``data`` because they failed to decrypt."""
        return self._undecryptable


class DecryptedThread(generated_models.Thread, DecryptedPage):
    """What ``messages.thread()`` answers: the thread's messages decrypted, with :attr:`undecryptable`.

    The plaintext ``Thread`` that :func:`plain_model` builds subclasses this, so a thread is an
    instance of it at run time as well as for type checkers (``thread.undecryptable``).
    """


#: Lists of encrypted records whose plaintext twin gets a named, typed base instead of the plain pair.
_TYPED_PAGES: dict[type[BaseModel], type[DecryptedPage]] = {generated_models.Thread: DecryptedThread}


@dataclass(frozen=True)
class Cipher:
    """The key ring and the project the envelopes are bound to."""

    ring: KeyRing
    project_id: str

    def seal(self, value: Any, *, kind: str, record_id: str, field: str) -> str:
        """Encrypt one plaintext field value (JSON-serialised first for JSON fields)."""
        if field in JSON_FIELDS:
            plaintext = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        elif isinstance(value, str):
            plaintext = value.encode()
        else:
            raise TypeError(f"field {field!r} takes a str, got {type(value).__name__}")
        return self.ring.encrypt(plaintext, project_id=self.project_id, kind=kind, record_id=record_id, field=field)

    def open(self, envelope: str, *, kind: str, record_id: str, field: str) -> Any:
        """Decrypt one envelope into its plaintext value (parsed for JSON fields).

        Raises:
            DecryptionError: tampered, moved, or made with a key not in the ring.
        """
        plaintext = self.ring.decrypt(envelope, project_id=self.project_id, kind=kind, record_id=record_id, field=field)
        if field in JSON_FIELDS:
            return json.loads(plaintext)
        return plaintext.decode()


def _model(name: str) -> type[BaseModel]:
    model = getattr(generated_models, name)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{name} is not a generated model")
    return model


def model_field_names(model: type[BaseModel]) -> set[str]:
    """Return a model's field names; for a root model over a union, those of every member."""
    if "root" in model.model_fields and len(model.model_fields) == 1:
        return {name for sub in _nested_models(model.model_fields["root"].annotation) for name in sub.model_fields}
    return set(model.model_fields)


def record_id_field(model: type[BaseModel]) -> str | None:
    """Return the field that identifies a record of the model (``id``, else ``key``), or None."""
    names = model_field_names(model)
    return next((field for field in RECORD_ID_FIELDS if field in names), None)


def _rewrite(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return plain_model(annotation)
    origin = typing.get_origin(annotation)
    if origin is None:
        return annotation
    args = typing.get_args(annotation)
    new = tuple(_rewrite(arg) for arg in args)
    if new == args:
        return annotation
    if origin is list:
        return list[new[0]]  # type: ignore[valid-type]
    if origin in (Union, types.UnionType):
        return Union[new]  # noqa: UP007 (a runtime tuple of types)
    return annotation


@functools.cache
def plain_model(model: type[BaseModel]) -> type[BaseModel]:
    """Return the model that holds a generated model's data after decryption.

    It subclasses the generated model; JSON fields (``metadata``) hold any JSON value instead of
    an envelope string, and nested models are their plaintext twins. A model without encrypted
    data is returned unchanged.
    """
    encrypted = MODEL_ENCRYPTED_FIELDS.get(model.__name__, ())
    overrides: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if name in encrypted and name in JSON_FIELDS:
            overrides[name] = (Any, info)
            continue
        rewritten = _rewrite(info.annotation)
        if rewritten is not info.annotation:
            overrides[name] = (rewritten, info)
    if page_record_model(model) is not None:
        # A list of encrypted records: one that fails to decrypt is skipped, not fatal.
        bases = (_TYPED_PAGES[model],) if model in _TYPED_PAGES else (model, DecryptedPage)
        plain: type[BaseModel] = create_model(model.__name__, __base__=bases, __module__=__name__, **overrides)
        plain.__doc__ = (
            f"{model.__name__} with its records decrypted; those that failed to decrypt are in ``undecryptable``."
        )
        return plain
    if not overrides:
        return model
    plain = create_model(model.__name__, __base__=model, __module__=__name__, **overrides)
    plain.__doc__ = f"{model.__name__} with its encrypted fields decrypted."
    return plain


@functools.cache
def page_record_model(model: type[BaseModel]) -> type[BaseModel] | None:
    """Return the record model of a list of encrypted records (``data: list[Message]``), else None.

    Only a model whose encrypted content is all in the records of ``data`` counts: those records
    are decrypted one by one, and a page of them degrades per record (see :class:`DecryptedPage`).
    """
    info = model.model_fields.get("data")
    if info is None or typing.get_origin(info.annotation) is not list:
        return None
    (item,) = typing.get_args(info.annotation) or (None,)
    if not (isinstance(item, type) and issubclass(item, BaseModel) and item.__name__ in MODEL_ENCRYPTED_FIELDS):
        return None
    if model.__name__ in MODEL_ENCRYPTED_FIELDS or any(
        _has_encrypted(sub)
        for name, other in model.model_fields.items()
        if name != "data"
        for sub in _nested_models(other.annotation)
    ):
        return None
    return item


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_nested_models(arg))
    return found


def _has_encrypted(model: type[BaseModel], seen: frozenset[str] = frozenset()) -> bool:
    if model.__name__ in MODEL_ENCRYPTED_FIELDS:
        return True
    if model.__name__ in seen:
        return False
    return any(
        _has_encrypted(sub, seen | {model.__name__})
        for info in model.model_fields.values()
        for sub in _nested_models(info.annotation)
    )


def decrypt_tree(model: type[BaseModel], data: Any, cipher: Cipher, record_id: str | None = None) -> Any:
    """Decrypt, in place, every encrypted field of ``data`` parsed as ``model``, at any depth.

    The top-level record's id is ``record_id`` when given (the id the caller asked for, so the
    server cannot swap in another record); nested records use their own ``id`` (or ``key``).
    """
    if not isinstance(data, dict):
        return data
    encrypted = MODEL_ENCRYPTED_FIELDS.get(model.__name__, ())
    if encrypted:
        id_field = record_id_field(model)
        rid = record_id if record_id is not None else data.get(id_field) if id_field else None
        if not isinstance(rid, str):
            raise APIError(f"a {model.__name__} record without an id cannot be decrypted", body=data)
        kind = record_kind(model.__name__)
        for field in encrypted:
            value = data.get(field)
            if isinstance(value, str):
                data[field] = cipher.open(value, kind=kind, record_id=rid, field=field)
    for name, info in model.model_fields.items():
        key = info.alias or name
        value = data.get(key)
        for sub in _nested_models(info.annotation):
            if not _has_encrypted(sub):
                continue
            if isinstance(value, list):
                for item in value:
                    decrypt_tree(sub, item, cipher)
            elif isinstance(value, dict):
                decrypt_tree(sub, value, cipher)
            break
    return data


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
    return bool(OPERATIONS[operation_id].encrypted_fields)


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
        if operation.request_encrypted_fields:
            if cipher is None:
                raise ValueError(f"{operation_id} has encrypted fields; the client needs a key ring")
            request_model = _model(operation.request_body or "")
            if record_id_field(request_model) == "id":
                # A client-made id: bound into the ciphertext, and the write's idempotency key.
                record_id = payload.get("id") or new_ulid()
                payload["id"] = record_id
                idempotency_key = idempotency_key or record_id
            if record_id is None:
                raise ValueError(f"{operation_id}: no record id to bind the encrypted fields to")
            kind = record_kind(request_model.__name__)
            for field in operation.request_encrypted_fields:
                if payload.get(field) is not None:
                    payload[field] = cipher.seal(payload[field], kind=kind, record_id=record_id, field=field)
    elif operation.request_body_required:
        raise ValueError(f"{operation_id} needs a request body")
    return PreparedCall(operation, path, params, payload, header_values, idempotency_key, record_id)


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
    if _has_encrypted(model):
        if cipher is None:
            raise ValueError(f"{operation.operation_id} returns encrypted fields; the client needs a key ring")
        record_model = page_record_model(model)
        if record_model is not None and isinstance(data, dict) and isinstance(data.get("data"), list):
            data["data"], skipped = _decrypt_records(record_model, data["data"], cipher, model.__name__)
        else:
            top_is_record = model.__name__ in MODEL_ENCRYPTED_FIELDS
            decrypt_tree(model, data, cipher, call.record_id if top_is_record else None)
    result = plain_model(model).model_validate(data)
    if isinstance(result, DecryptedPage):
        result._undecryptable = skipped
    return result


def _decrypt_records(
    model: type[BaseModel], records: list[Any], cipher: Cipher, page: str
) -> tuple[list[Any], list[UndecryptableRecord]]:
    """Decrypt the records of a page one by one; return those that decrypted and those that did not."""
    kept: list[Any] = []
    skipped: list[UndecryptableRecord] = []
    for record in records:
        # Decrypted in a copy: a record that fails halfway keeps every field as it came.
        trial = copy.deepcopy(record)
        try:
            decrypt_tree(model, trial, cipher)
        except DecryptionError as error:
            logger.warning("skipped a record of a %s page that could not be decrypted: %s", page, error)
            skipped.append(UndecryptableRecord(error, record if isinstance(record, dict) else {}))
        else:
            kept.append(trial)
    return kept, skipped
