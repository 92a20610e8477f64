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
from ..store.documents import FileDoc
from ..store.files import READY
from ..urls import absolute
from . import Context, page_body


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
        if doc["status"] != READY:
            return None
        return absolute(req, self._signer.url("GET", blob_path(doc["project_id"], doc["id"]), doc["size"]))

    def public(self, req: falcon.asgi.Request, doc: FileDoc) -> dict[str, Any]:
        return views.file(doc, self.download(req, doc))


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
        doc, created = await self._ctx.services.files.announce(caller.agent(req), body)
        if created:
            resp.status = falcon.HTTP_201
            resp.location = f"/v1/files/{doc['id']}"
        resp.media = {"file": self._urls.public(req, doc), "upload_url": self._urls.upload(req, doc)}


class Item:
    """``/v1/files/{file_id}``."""

    auth = "agent"

    def __init__(self, ctx: Context, signer: UrlSigner) -> None:
        self._ctx = ctx
        self._urls = FileUrls(signer)

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, file_id: str) -> None:
        """Return a file with a fresh download URL (once it is ready)."""
        params.path_id(file_id, "File")
        doc = await self._ctx.services.files.get(caller.agent(req)["project_id"], file_id)
        resp.media = self._urls.public(req, doc)

    async def on_delete(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, file_id: str) -> None:
        """Delete a file the caller uploaded, with its content; give its storage back."""
        params.path_id(file_id, "File")
        await self._ctx.services.files.delete(caller.agent(req), file_id)
        resp.status = falcon.HTTP_204


async def files_page(ctx: Context, req: falcon.asgi.Request, project_id: str, urls: FileUrls) -> dict[str, Any]:
    """Return a page of a project's ready files in id order, each with a fresh download URL."""
    docs, next_cursor = await ctx.services.files.page(project_id, params.limit(req), params.cursor(req))
    return page_body([urls.public(req, doc) for doc in docs], next_cursor)
