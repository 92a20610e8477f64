"""File uploads (nexysync.resources.files): a lost answer or a refused first attempt."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import pytest
from sdk_fakes import NOW, PROJECT, make_client, problem

import nexysync
import nexysync.types
from nexysync import (
    KeyRing,
)


def test_an_upload_whose_answer_was_lost_is_not_undone_by_its_retry() -> None:
    """The CDN stored the content but the connection dropped before its 201: the retry's 409 is success."""
    ring = KeyRing([bytes(range(32))])
    files: dict[str, dict[str, Any]] = {}
    calls: list[str] = []
    stored: list[bytes] = []

    def file_json(file_id: str, status: str, body: dict[str, Any]) -> dict[str, Any]:
        ready = status == "ready"
        return {
            "id": file_id,
            "project_id": PROJECT,
            "name": body["name"],
            "size": body["size"],
            "content_type": None,
            "status": status,
            "from": "alice",
            "created_at": NOW,
            "expires_at": NOW,
            "download_url": f"http://cdn.test/blobs/{PROJECT}/{file_id}?sig=d" if ready else None,
        }

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        if request.method == "POST" and request.url.path == "/v1/files":
            body = json.loads(request.content)
            files[body["id"]] = body
            upload = {"file": file_json(body["id"], "pending", body), "upload_url": f"http://cdn.test/u/{body['id']}"}
            return httpx.Response(201, json=upload)
        if request.method == "PUT":
            if not stored:
                stored.append(request.read())
                raise httpx.ReadError("connection reset after the content was stored")
            return problem(409, "FILE_ALREADY_UPLOADED")
        if request.method == "GET" and request.url.path.startswith("/v1/files/"):
            file_id = request.url.path.rsplit("/", 1)[1]
            return httpx.Response(200, json=file_json(file_id, "ready", files[file_id]))
        return httpx.Response(500, json={"code": "UNEXPECTED", "title": "unexpected call"})

    client, _ = make_client(handler, key_ring=ring)
    uploaded = client.files.upload(io.BytesIO(b"quarterly numbers"), name="q3.txt")

    assert uploaded.status.value == "ready" and uploaded.name == "q3.txt"
    assert [call.split(" ")[0] for call in calls] == ["POST", "PUT", "PUT", "GET"]
    assert not any(call.startswith("DELETE") for call in calls)
    assert len(stored) == 1


def test_an_upload_refused_on_its_first_attempt_is_withdrawn() -> None:
    """A 409 without a lost earlier attempt is a real refusal: it raises, and the announcement goes."""
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if request.method == "POST":
            body = json.loads(request.content)
            pending = {
                "id": body["id"],
                "project_id": PROJECT,
                "name": body["name"],
                "size": body["size"],
                "content_type": None,
                "status": "pending",
                "from": "alice",
                "created_at": NOW,
                "expires_at": NOW,
                "download_url": None,
            }
            return httpx.Response(201, json={"file": pending, "upload_url": "http://cdn.test/u/x"})
        if request.method == "PUT":
            return problem(409, "FILE_ALREADY_UPLOADED")
        return httpx.Response(204)

    client, _ = make_client(handler)
    with pytest.raises(nexysync.ConflictError):
        client.files.upload(io.BytesIO(b"x"), name="x.txt")
    assert calls == ["POST", "PUT", "DELETE"]
