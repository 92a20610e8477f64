"""A hostile server or proxy, played through ``httpx.MockTransport``: what the SDK refuses to pass on.

Each test stores what an honest client wrote, then answers with one thing changed: an encrypted
field that is not an envelope (a JSON object as ``metadata``), a relabelled sender or recipient, a
file served under the id the caller asked for. Each must end in :class:`~nexysync.DecryptionError`
(or, in a list, the record left out), never in data handed to the application as authenticated.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from nexysync import AsyncClient, Client, DecryptionError, KeyFileError, NexySyncError
from nexysync._operations import RECORD_PLANS, Cipher, binding
from nexysync.crypto import KeyRing, encrypt_file_stream

PROJECT = "01JAAAAAAAAAAAAAAAAAAAAAAA"
FILE_A = "01JAAAAAAAAAAAAAAAAAAAAAFA"
FILE_B = "01JAAAAAAAAAAAAAAAAAAAAAFB"
NOW = "2026-01-01T00:00:00Z"
KEY = bytes(range(32))
Tamper = Callable[[dict[str, Any]], None]


class MessageServer:
    """Store sent messages as an honest server would; answer reads through ``tamper``."""

    def __init__(self, tamper: Tamper | None = None) -> None:
        self.messages: dict[str, dict[str, Any]] = {}
        self.tamper = tamper

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/v1/messages":
            body = json.loads(request.content)
            self.messages[body["id"]] = {
                "id": body["id"],
                "project_id": PROJECT,
                "from": "alice",
                "to": body.get("to"),
                "broadcast": bool(body.get("broadcast", False)),
                "type": body["type"],
                "priority": "normal",
                "reply_to": body.get("reply_to"),
                "topic": body["topic"],
                "payload": body["payload"],
                "metadata": body.get("metadata"),
                "status": "sent",
                "pinned": False,
                "reactions": [],
                "created_at": NOW,
                "expires_at": NOW,
            }
            return httpx.Response(201, json=self.messages[body["id"]])
        records = [json.loads(json.dumps(m)) for m in self.messages.values()]
        if self.tamper is not None:
            for record in records:
                self.tamper(record)
        if request.url.path == "/v1/messages":
            return httpx.Response(200, json={"data": records, "next_cursor": None})
        return httpx.Response(200, json=next(r for r in records if request.url.path.endswith(r["id"])))


def client_for(handler: Callable[[httpx.Request], httpx.Response]) -> Client:
    """Return alice's client over a mock transport."""
    return Client(
        base_url="http://api.test",
        api_key="nsync_alice_" + "0" * 40,
        key_ring=KeyRing([KEY]),
        project_id=PROJECT,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        max_retries=0,
    )


def sent_then_read(tamper: Tamper, **send: Any) -> tuple[Client, str]:
    """Send a message through an honest store; return the client and the id, reads now tampered with."""
    server = MessageServer()
    client = client_for(server)
    sent = client.messages.send(send.pop("to", "bob"), topic="Deploy", payload="ship it", **send)
    server.tamper = tamper
    return client, sent.id


def test_an_untampered_message_reads_back_with_its_json_metadata() -> None:
    client, message_id = sent_then_read(lambda record: None, metadata={"pr": 4}, reply_to=None)
    got = client.messages.get(message_id)
    assert (got.from_, got.topic, got.metadata) == ("alice", "Deploy", {"pr": 4})


@pytest.mark.parametrize("forged", [{"evil": 1}, ["evil"], 7, True], ids=["object", "list", "number", "bool"])
def test_metadata_that_is_not_an_envelope_is_refused(forged: Any) -> None:
    """A JSON value where the plan says encrypted is a DecryptionError, never passed through."""

    def tamper(record: dict[str, Any]) -> None:
        record["metadata"] = forged

    client, message_id = sent_then_read(tamper, metadata={"pr": 4})
    with pytest.raises(DecryptionError, match="not an envelope") as raised:
        client.messages.get(message_id)
    assert raised.value.field == "metadata" and isinstance(raised.value, NexySyncError)
    pager = client.messages.list()
    assert list(pager) == []
    assert [e.field for e in pager.undecryptable] == ["metadata"]


def test_a_plaintext_string_in_an_encrypted_field_is_refused() -> None:
    def tamper(record: dict[str, Any]) -> None:
        record["payload"] = "trust me, I am alice"

    client, message_id = sent_then_read(tamper)
    with pytest.raises(DecryptionError, match="not a v1 or v2 envelope"):
        client.messages.get(message_id)


@pytest.mark.parametrize(
    ("field", "forged"),
    [("from", "mallory"), ("to", "carol"), ("to", None), ("reply_to", "01JAAAAAAAAAAAAAAAAAAAAAZZ")],
    ids=["relabelled-sender", "rerouted", "made-broadcast", "re-threaded"],
)
def test_a_relabelled_or_rerouted_message_fails_to_decrypt(field: str, forged: Any) -> None:
    def tamper(record: dict[str, Any]) -> None:
        record[field] = forged
        record["broadcast"] = record["to"] is None

    client, message_id = sent_then_read(tamper)
    with pytest.raises(DecryptionError, match="authentication failed"):
        client.messages.get(message_id)


def test_a_broadcast_reply_binds_star_and_the_parent() -> None:
    """Bind `to=*` for a broadcast and the parent's id, so a broadcast cannot be turned into a DM."""
    parent = "01JAAAAAAAAAAAAAAAAAAAAAPA"
    server = MessageServer()
    client = client_for(server)
    sent = client.messages.send(None, topic="All", payload="hands", broadcast=True, reply_to=parent)
    stored = server.messages[sent.id]
    ring = KeyRing([KEY])
    bound = (("from", "alice"), ("to", "*"), ("reply_to", parent))
    plain = ring.decrypt(
        stored["payload"], project_id=PROJECT, kind="message", record_id=sent.id, field="payload", bound=bound
    )
    assert plain == b"hands"
    server.tamper = lambda record: record.update(to="bob", broadcast=False)
    with pytest.raises(DecryptionError):
        client.messages.get(sent.id)


def test_v1_envelopes_stay_readable_and_leave_the_sender_unbound() -> None:
    """Read a v1 envelope (as older clients wrote); v1 does not bind `from`, which is why writers use v2."""
    ring = KeyRing([KEY])
    message_id = "01JAAAAAAAAAAAAAAAAAAAAAV1"

    def v1(field: str, text: str) -> str:
        return ring.encrypt(text.encode(), project_id=PROJECT, kind="message", record_id=message_id, field=field)

    record = {
        "id": message_id,
        "project_id": PROJECT,
        "from": "mallory",
        "to": "bob",
        "broadcast": False,
        "type": "request",
        "priority": "normal",
        "reply_to": None,
        "topic": v1("topic", "old"),
        "payload": v1("payload", "from an old client"),
        "metadata": None,
        "status": "unread",
        "pinned": False,
        "reactions": [],
        "created_at": NOW,
        "expires_at": NOW,
    }
    assert record["topic"].startswith("v1.")
    client = client_for(lambda request: httpx.Response(200, json=record))
    assert client.messages.get(message_id).payload == "from an old client"


def test_a_kv_value_relabelled_to_another_writer_fails() -> None:
    cipher = Cipher(KeyRing([KEY]), PROJECT, "alice")
    plan = RECORD_PLANS["KvEntry"]
    entry = {"key": "k", "version": 1, "updated_by": "alice", "updated_at": NOW}
    entry["value"] = cipher.seal("v", record=plan, record_id="k", field="value", bound=binding(plan, entry, "alice"))
    client = client_for(lambda request: httpx.Response(200, json=entry))
    assert client.kv.get("k").value == "v"
    entry["updated_by"] = "mallory"
    with pytest.raises(DecryptionError):
        client.kv.get("k")


class FileServer:
    """Serve file metadata and CDN content; answer a request for file A with file B's content."""

    def __init__(self, *, swap: bool) -> None:
        ring = KeyRing([KEY])
        cipher = Cipher(ring, PROJECT, "alice")
        plan = RECORD_PLANS["File"]
        self.content = {
            file_id: b"".join(encrypt_file_stream(ring, io.BytesIO(text).read, project_id=PROJECT, file_id=file_id))
            for file_id, text in ((FILE_A, b"the real report"), (FILE_B, b"a forged report"))
        }
        self.swap = swap
        meta = {"from": "alice"}
        # File A's name, properly sealed for A, so the metadata check alone does not catch the swap.
        self.name_a = cipher.seal(
            "report.txt", record=plan, record_id=FILE_A, field="name", bound=binding(plan, meta, "alice")
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "cdn.test":
            return httpx.Response(200, stream=httpx.ByteStream(self.content[request.url.path.rsplit("/", 1)[-1]]))
        served = FILE_B if self.swap else FILE_A
        return httpx.Response(
            200,
            json={
                "id": served,
                "project_id": PROJECT,
                "name": self.name_a,
                "size": len(self.content[served]),
                "content_type": "text/plain",
                "status": "ready",
                "from": "alice",
                "created_at": NOW,
                "expires_at": NOW,
                "download_url": f"http://cdn.test/files/{served}",
            },
        )


def test_a_download_is_bound_to_the_id_asked_for() -> None:
    honest = io.BytesIO()
    meta = client_for(FileServer(swap=False)).files.download(FILE_A, to=honest)
    assert (meta.name, honest.getvalue()) == ("report.txt", b"the real report")

    swapped = io.BytesIO()
    with pytest.raises(DecryptionError):
        client_for(FileServer(swap=True)).files.download(FILE_A, to=swapped)
    assert b"forged" not in swapped.getvalue()


def test_the_async_download_is_bound_to_the_id_asked_for() -> None:
    async def main() -> None:
        client = AsyncClient(
            base_url="http://api.test",
            api_key="nsync_alice_" + "0" * 40,
            key_ring=KeyRing([KEY]),
            project_id=PROJECT,
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(FileServer(swap=True))),
            max_retries=0,
        )
        with pytest.raises(DecryptionError):
            await client.files.download(FILE_A, to=io.BytesIO())

    asyncio.run(main())


def test_sdk_errors_share_one_base() -> None:
    from nexysync import BadRequestError, FileNotReadyError

    assert issubclass(DecryptionError, NexySyncError) and issubclass(FileNotReadyError, NexySyncError)
    assert issubclass(KeyFileError, NexySyncError)
    client = client_for(lambda request: httpx.Response(400, json={"status": 400, "code": "BAD_REQUEST"}))
    with pytest.raises(BadRequestError):
        client.me.get()


def test_the_async_client_encrypts_decrypts_and_touches_files_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """Run every segment's crypto and the file reads and writes on worker threads, never the loop's."""
    import threading

    from nexysync import crypto

    threads: dict[str, set[int]] = {"seal": set(), "feed": set(), "finish": set()}
    for cls, name in ((crypto.FileEncryptor, "seal"), (crypto.FileDecryptor, "feed"), (crypto.FileDecryptor, "finish")):
        original = getattr(cls, name)

        def spy(self: Any, *args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            threads[_name].add(threading.get_ident())
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, spy)

    stored: dict[str, Any] = {}
    source = tmp_path / "big.bin"
    source.write_bytes(b"x" * (3 * 1024 * 1024 + 5))

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "cdn.test":
            if request.method == "PUT":
                stored["content"] = await request.aread()
                return httpx.Response(201)
            return httpx.Response(200, stream=httpx.ByteStream(stored["content"]))
        if request.method == "POST":
            body = json.loads(request.content)
            stored["file"] = {
                "id": body["id"],
                "project_id": PROJECT,
                "name": body["name"],
                "size": body["size"],
                "content_type": None,
                "status": "ready",
                "from": "alice",
                "created_at": NOW,
                "expires_at": NOW,
                "download_url": f"http://cdn.test/files/{body['id']}",
            }
            return httpx.Response(201, json={"file": stored["file"], "upload_url": "http://cdn.test/up"})
        return httpx.Response(200, json=stored["file"])

    async def main() -> set[int]:
        client = AsyncClient(
            base_url="http://api.test",
            api_key="nsync_alice_" + "0" * 40,
            key_ring=KeyRing([KEY]),
            project_id=PROJECT,
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        )
        reported: list[tuple[int, int]] = []
        uploaded = await client.files.upload(source, name="big.bin", progress=lambda d, t: reported.append((d, t)))
        assert reported[-1] == (source.stat().st_size, source.stat().st_size)
        await client.files.download(uploaded.id, to=tmp_path / "copy.bin")
        return {threading.get_ident()}

    loop_thread = asyncio.run(main())
    assert (tmp_path / "copy.bin").read_bytes() == source.read_bytes()
    assert all(threads.values()), threads
    assert not (threads["seal"] | threads["feed"] | threads["finish"]) & loop_thread


def test_decrypt_record_applies_the_same_checks_without_a_client() -> None:
    """Decrypt a listed message as the CLI's hooks do, and refuse it once its sender is relabelled."""
    from nexysync import decrypt_record

    server = MessageServer()
    sent = client_for(server).messages.send("bob", topic="Deploy", payload="ship it")
    record = server.messages[sent.id]
    plain = decrypt_record(KeyRing([KEY]), PROJECT, "Message", record)
    assert (plain["topic"], plain["payload"]) == ("Deploy", "ship it") and record["payload"].startswith("v2.")
    with pytest.raises(DecryptionError):
        decrypt_record(KeyRing([KEY]), PROJECT, "Message", {**record, "from": "mallory"})
