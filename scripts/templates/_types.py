# (template of scripts/generate.py: the generated module starts below this line)
"""The record types of the operation table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Parameter:
    """Describe one path, query or header parameter of an operation.

    Attributes:
        name: The parameter's name on the wire.
        required: Whether a request must carry it.
        schema: Its JSON schema, with every `$ref` resolved in place.
    """

    name: str
    required: bool
    schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Operation:
    """Describe one operation of the API, as openapi.yaml defines it.

    Attributes:
        operation_id: The operationId (`resource_verb`), which names the SDK method.
        method: The HTTP method, upper case.
        path: The path template, e.g. `/v1/messages/{message_id}`.
        tag: The operation's first tag, or None.
        summary: The one-line summary.
        security: The security scheme that authorises it (`HumanToken`, `AgentKey`), or None.
        path_params: Path parameters, in the order they appear in the path.
        query_params: Query parameters, in the order the spec lists them.
        header_params: Header parameters, in the order the spec lists them.
        request_body: The model name of the request body, or None when there is none.
        request_body_required: Whether the request body is required.
        request_media_type: The request body's media type, or None.
        responses: For each success status, the response model name (None when there is no body
            or its schema is not a named model).
        response_media_types: For each success status, the response media type, or None.
        success_statuses: The success statuses, ascending.
        is_list_page: Whether the response is a page of `data` with a `next_cursor`.
        page_item: For a list page, the model name of its items; otherwise None.
        request_encrypted_fields: Property names marked `x-nexysync-encrypted` in the request body,
            at any depth.
        response_encrypted_fields: Property names marked `x-nexysync-encrypted` in the success
            responses, at any depth (for a page: those of its items).
    """

    operation_id: str
    method: str
    path: str
    tag: str | None
    summary: str
    security: str | None
    path_params: tuple[Parameter, ...]
    query_params: tuple[Parameter, ...]
    header_params: tuple[Parameter, ...]
    request_body: str | None
    request_body_required: bool
    request_media_type: str | None
    responses: dict[int, str | None]
    response_media_types: dict[int, str | None]
    success_statuses: tuple[int, ...]
    is_list_page: bool
    page_item: str | None
    request_encrypted_fields: tuple[str, ...]
    response_encrypted_fields: tuple[str, ...]

    @property
    def encrypted_fields(self) -> tuple[str, ...]:
        """Return the encrypted property names of the request body and the responses, sorted."""
        return tuple(sorted(set(self.request_encrypted_fields) | set(self.response_encrypted_fields)))


@dataclass(frozen=True, slots=True)
class RecordPlan:
    """Describe how the envelopes of one record schema are bound, as its `x-nexysync-*` keys say.

    Attributes:
        schema: The component schema (and model) name; only a label, never bound.
        kind: `x-nexysync-record-kind`, the record kind bound into the associated data.
        id_in: Where the record id comes from: `body` (a property of the record) or `path`.
        id_name: The property or path parameter that holds the record id.
        fields: The record's encrypted properties, sorted.
        json_fields: Those whose plaintext is any JSON value (`x-nexysync-plaintext: json`).
        author: `x-nexysync-author`: the property naming the writer, bound as `<author>=<slug>`
            (on a request, the caller is the writer).
        routing: `x-nexysync-routing`: the routing properties bound after the author, each with the
            value it is bound as when it is null or absent.
    """

    schema: str
    kind: str
    id_in: str
    id_name: str
    fields: tuple[str, ...]
    json_fields: tuple[str, ...]
    author: str
    routing: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class EncryptedAt:
    """Place one kind of encrypted record inside a request or response body.

    Attributes:
        at: The steps from the body to the records: a property name, or `[]` for each item of an
            array; `()` when the body is the record.
        record: How the records found there are bound.
    """

    at: tuple[str, ...]
    record: RecordPlan


@dataclass(frozen=True, slots=True)
class OperationPlan:
    """Describe what one operation encrypts and decrypts.

    Attributes:
        operation_id: The operation.
        request: The encrypted records of the request body.
        responses: For each success status, the encrypted records of its body.
    """

    operation_id: str
    request: tuple[EncryptedAt, ...]
    responses: dict[int, tuple[EncryptedAt, ...]]
