"""Benchmark: what a tool call through ``nexysync-mcp`` costs on top of the same SDK call.

Times N sequential ``ns_meta action=whoami`` and ``ns_message action=send`` calls made by a real MCP
client over stdio to a ``nexysync-mcp`` process, against the same SDK calls
(``AsyncClient.me.get`` and ``AsyncClient.messages.send``) made directly, on one server (an
embedded database and one API process, as ``bench_send.py`` starts them), interleaved in rounds.
Prints the mean time per call of each and the MCP overhead per call in ms (goal: under 5 ms).

Run: ``python tests/bench/bench_mcp.py [--calls N] [--rounds R]`` (or ``tox -e bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _api import running_api, seed
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from nexysync import AsyncClient, KeyRing
from nexysync.crypto import new_key

MCP_COMMAND = str(Path(sys.executable).with_name("nexysync-mcp"))
PAYLOAD = "x" * 200


async def _per_call_ms(call: Callable[[], Awaitable[Any]], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        await call()
    return (time.perf_counter() - started) * 1000 / calls


async def bench(calls: int, rounds: int) -> None:
    """Print per-call times through MCP and through the SDK, and the difference."""
    with running_api() as api, tempfile.TemporaryDirectory() as tmp:
        project_id, api_key = seed(api.base_url)
        enc_key = new_key()
        workspace = Path(tmp)
        (workspace / ".nexysync").mkdir()
        (workspace / ".nexysync" / "key").write_text(
            json.dumps(
                {
                    "api_key": api_key,
                    "enc_key": base64.b64encode(enc_key).decode(),
                    "api_url": api.base_url,
                    "project_id": project_id,
                }
            )
        )
        # The SDK refuses a key file others may read, as `nexysync init` never writes one.
        os.chmod(workspace / ".nexysync" / "key", 0o600)
        params = StdioServerParameters(command=MCP_COMMAND, cwd=workspace)
        sdk = AsyncClient(base_url=api.base_url, api_key=api_key, key_ring=KeyRing([enc_key]), project_id=project_id)
        with (workspace / "mcp.err").open("w") as errlog:
            async with sdk, stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as mcp:
                await mcp.initialize()

                async def mcp_call(tool: str, **arguments: Any) -> None:
                    result = await mcp.call_tool(tool, arguments)
                    if result.is_error:
                        raise RuntimeError(f"{tool} failed: {result.content}")

                cases: dict[str, tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[Any]]]] = {
                    "whoami": (lambda: mcp_call("ns_meta", action="whoami"), sdk.me.get),
                    "send": (
                        lambda: mcp_call("ns_message", action="send", to="receiver", topic="bench", payload=PAYLOAD),
                        lambda: sdk.messages.send("receiver", topic="bench", payload=PAYLOAD),
                    ),
                }
                print(f"{calls} sequential calls per round, {rounds} rounds, best round shown (ms per call)")
                print(f"{'call':<8} {'via MCP':>9} {'SDK':>9} {'overhead':>9}")
                for name, (through_mcp, direct) in cases.items():
                    # Warm both paths (connections, imports, the server's caches) before timing.
                    for _ in range(20):
                        await through_mcp()
                        await direct()
                    mcp_ms, sdk_ms = [], []
                    for _ in range(rounds):
                        mcp_ms.append(await _per_call_ms(through_mcp, calls))
                        sdk_ms.append(await _per_call_ms(direct, calls))
                    best_mcp, best_sdk = min(mcp_ms), min(sdk_ms)
                    print(f"{name:<8} {best_mcp:>9.2f} {best_sdk:>9.2f} {best_mcp - best_sdk:>9.2f}")


def main() -> None:
    """Parse the options and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per round and case")
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    asyncio.run(bench(options.calls, options.rounds))


if __name__ == "__main__":
    main()
