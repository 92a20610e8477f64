"""Files (agent key): announce (and get a signed upload URL), list, get (with a download URL), delete.

The content never passes through the API: clients upload it to and download it from the CDN
with the signed URLs given here.
"""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi

from .. import caller, params, views
from ..cdn.signing import UrlSigner, blob_path
from ..errors import Problem, not_found
from ..store import files
from ..store.documents import FileDoc
from ..urls import absolute
from . import Context, page_body


def _conflict(file_id: str) -> Problem:
    return Problem(409, "ID_CONFLICT", f"File {file_id} was already announced with a different body.")


class FileUrls:
    """Signed CDN URLs for files.

    A ``NEXYSYNC_CDN_URL`` that is a path (``/``: the proxy routes ``/blobs/`` to the CDN on the
    API's own host) gives URLs on the origin the client reached, https behind HAProxy.
    """

    def __init__(self, signer: UrlSigner) -> None:
        self._signer = signer

    def upload(self, req: falcon.asgi.Request, doc: FileDoc) -> str:
        return absolute(req, self._signer.url("PUT", blob_path(doc["project_id"], doc["id"]), doc["size"]))

    def download(self, req: falcon.asgi.Request, doc: FileDoc) -> str | None:
        if doc["status"] != files.READY:
            return None
        return absolute(req, self._signer.url("GET", blob_path(doc["project_id"], doc["id"]), doc["size"]))

    def public(self, req: falcon.asgi.Request, doc: FileDoc) -> dict[str, Any]:
        return views.file(doc, self.download(req, doc))


async def _file(ctx: Context, req: falcon.asgi.Request, file_id: str) -> FileDoc:
    """Return a file of the caller's project, or raise 404 (also for other projects' ids)."""
    params.path_id(file_id, "File")
    doc = await ctx.store.files.get(caller.agent(req)["project_id"], file_id)
    if doc is None:
        raise not_found("File", "FILE_NOT_FOUND")
    return doc


class Collection:
    """``/v1/files``."""

    auth = "agent"

    def __init__(self, ctx: Context, signer: UrlSigner) -> None:
        self._ctx = ctx
        self._urls = FileUrls(signer)

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """List the project's ready files in id order, each with a fresh download URL."""
        resp.media = await files_page(self._ctx, req, caller.agent(req)["project_id"], self._urls)

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Announce a file (idempotent by client-made id) and answer a signed upload URL."""
        body = await self._ctx.body(req, "FileCreate")
        store = self._ctx.store
        uploader = caller.agent(req)
        project_id = uploader["project_id"]
        limit = self._ctx.settings.file_max_mb * 1024 * 1024
        if body["size"] > limit:
            raise Problem(
                413, "FILE_TOO_LARGE", f"A file may be at most {self._ctx.settings.file_max_mb} MiB (encrypted)."
            )
        # A retry is answered before the quota is asked: repeating an announcement must not be refused.
        stored = await store.files.get(project_id, body["id"])
        if stored is None:
            new, created = await self._ctx.services.quotas.store_within_storage(
                project_id, body["size"], lambda: store.files.create(project_id, uploader, body)
            )
            stored = new
            if created:
                resp.status = falcon.HTTP_201
                resp.location = f"/v1/files/{body['id']}"
        if not files.is_same(stored, uploader["_id"], body):
            raise _conflict(body["id"])
        resp.media = {"file": self._urls.public(req, stored), "upload_url": self._urls.upload(req, stored)}


class Item:
    """``/v1/files/{file_id}``."""

    auth = "agent"

    def __init__(self, ctx: Context, signer: UrlSigner) -> None:
        self._ctx = ctx
        self._urls = FileUrls(signer)

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, file_id: str) -> None:
        """Return a file with a fresh download URL (once it is ready)."""
        resp.media = self._urls.public(req, await _file(self._ctx, req, file_id))

    async def on_delete(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, file_id: str) -> None:
        """Delete a file the caller uploaded, with its content; give its storage back."""
        doc = await _file(self._ctx, req, file_id)
        agent = caller.agent(req)
        if doc["from_id"] != agent["_id"]:
            raise Problem(403, "NOT_FILE_UPLOADER", "Only the agent that uploaded a file may delete it.")
        deleted = await self._ctx.store.files.delete(agent["project_id"], file_id)
        if deleted is None:
            raise not_found("File", "FILE_NOT_FOUND")  # deleted meanwhile, and its storage given back then
        if self._ctx.store.blobs is not None:
            self._ctx.store.blobs.delete(agent["project_id"], file_id)
        await self._ctx.services.quotas.release_storage(agent["project_id"], deleted["size"])
        resp.status = falcon.HTTP_204


async def files_page(ctx: Context, req: falcon.asgi.Request, project_id: str, urls: FileUrls) -> dict[str, Any]:
    """Return a page of a project's ready files in id order, each with a fresh download URL."""
    docs, next_cursor = await ctx.store.files.list_ready(project_id, params.limit(req), params.cursor(req))
    return page_body([urls.public(req, doc) for doc in docs], next_cursor)
