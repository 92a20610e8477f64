"""Benchmark: what the A2A bridge adds to a request and its answer.

One ``nexysync-server dev``, a scripted NexySync agent that answers every request at once (the
end-to-end tests' ``ScriptedAgent``), and ``nexysync a2a serve`` exposing it. Timed, one after
another (median and p95 of ``--count`` each, after a warm-up):

- **direct**: the bridge's agent sends the request with the SDK and waits for the reply on a
  stream it keeps open (NexySync alone: encrypt, store, fan out, decrypt, answer, back);
- **A2A**: an A2A client (the official ``a2a-sdk``) sends ``SendMessage`` over JSON-RPC, blocking,
  to the bridge, which does the same NexySync round trip and answers with the completed task.

The difference is the bridge's cost: the A2A SDK's request handling, the task store's writes
(SQLite, on the bridge's machine) and the receipt it waits for before ``working``.

Run: ``python tests/bench/bench_a2a.py [--count 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from a2a.client import ClientConfig, create_client
from a2a.types.a2a_pb2 import Message, Part, Role, SendMessageRequest, TaskState

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "e2e")]

from a2a_support import BridgeProcess, ScriptedAgent  # noqa: E402
from cli_support import provision_project  # noqa: E402

from conftest import DevServer  # noqa: E402
from nexysync import AsyncClient  # noqa: E402


def _summary(name: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    return f"{name:<8} median {statistics.median(ms):7.1f} ms   p95 {p95:7.1f} ms   ({len(ms)} round trips)"


async def _direct(key_file: Path, count: int) -> list[float]:
    times: list[float] = []
    async with AsyncClient.from_key_file(key_file) as client, client.stream() as stream:
        await stream.open()
        events = stream.__aiter__()
        for n in range(count):
            started = time.perf_counter()
            sent = await client.messages.send("backend", topic="bench", payload=f"echo {n}", type="request")
            while True:
                event = await anext(events)
                if event.type == "new_message" and event.data.get("reply_to") == sent.id:
                    await event.message(mark_read=False)  # fetched and decrypted, as the bridge does
                    break
            times.append(time.perf_counter() - started)
    return times


async def _a2a(url: str, count: int) -> list[float]:
    times: list[float] = []
    async with httpx.AsyncClient(timeout=60) as http:
        client = await create_client(url, ClientConfig(streaming=False, httpx_client=http))
        try:
            for n in range(count):
                message = Message(message_id=str(uuid.uuid4()), role=Role.ROLE_USER, parts=[Part(text=f"echo {n}")])
                started = time.perf_counter()
                [response] = [r async for r in client.send_message(SendMessageRequest(message=message))]
                times.append(time.perf_counter() - started)
                assert response.task.status.state == TaskState.TASK_STATE_COMPLETED, response
        finally:
            await client.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200, help="round trips of each kind (default: 200)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        roomy = {"NEXYSYNC_RATE_LIMIT_PER_MINUTE": "1000000", "NEXYSYNC_QUOTA_MESSAGES_PER_DAY": "1000000"}
        server = DevServer(root / "data", root / "logs", roomy).start()
        try:
            project = provision_project(server.base_url, root, ("gateway", "backend"))
            backend = ScriptedAgent(project.workspaces["backend"] / ".nexysync" / "key")
            bridge = BridgeProcess(
                ["--expose", "backend"], config_dir=project.config_dir, workspace=project.workspaces["gateway"]
            ).start("backend")
            try:
                key = project.workspaces["gateway"] / ".nexysync" / "key"
                asyncio.run(_direct(key, 10))  # warm-up
                asyncio.run(_a2a(f"{bridge.url}/backend", 10))
                direct = asyncio.run(_direct(key, args.count))
                a2a = asyncio.run(_a2a(f"{bridge.url}/backend", args.count))
            finally:
                bridge.stop()
                backend.close()
        finally:
            server.kill()
    print("A2A bridge: one request and its answer, one at a time, on loopback")
    print(_summary("direct", direct))
    print(_summary("A2A", a2a))
    print(f"A2A / direct (medians): {statistics.median(a2a) / statistics.median(direct):.2f}x")


if __name__ == "__main__":
    main()
