"""Where an HTTP tool call's extra time goes: one trivial request and one precision search, in process and over
streamable HTTP with the single-client settings (engine in the server's process, two ONNX threads), side by side.

    python -m benchmarks.http_probe --shared ../shared                 # ~1 min: medians, printed
    python -m benchmarks.http_probe --shared ../shared --loop 30 &     # then, while it loops over HTTP:
    py-spy record -p "$(cat /tmp/rf-http-probe.pid)" -d 20 -f raw -o server.txt   # the server's stacks
    python -m benchmarks.http_probe --summarize server.txt             # busy samples by layer

Prints medians in ms; writes nothing but the server's pid (for a profiler).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import anyio
from mcp.client.client import Client

from benchmarks import store
from benchmarks.overhead import SINGLE_CLIENT, free_port, wait_for
from rf_mcp import load_config, open_service
from rf_mcp.server import build_server

PID_FILE = Path(tempfile.gettempdir()) / "rf-http-probe.pid"


async def run(a: argparse.Namespace) -> None:
    shared = Path(a.shared)
    tmp = Path(tempfile.mkdtemp(prefix="rf-http-probe-"))
    proc = None
    try:
        base = tmp / "base"
        base.mkdir()
        await store.prepare(shared, base)
        local, served = store.copy(shared, base, tmp / "a"), store.copy(shared, base, tmp / "b")
        queries = store.distinct_queries(shared, 2 * a.queries)
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "rf_mcp", "--config", str(served), "serve", "--transport",
                                 "streamable-http", "--port", str(port)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env={**os.environ, **SINGLE_CLIENT})
        wait_for(port, proc)
        PID_FILE.write_text(str(proc.pid))
        async with open_service(load_config(local, env={})) as rf, Client(build_server(rf)) as inproc, \
                Client(f"http://127.0.0.1:{port}/mcp", read_timeout_seconds=300) as http:
            clients = {"in process": inproc, "streamable HTTP": http}
            for c in clients.values():  # loads the models (not timed)
                await c.call_tool("rf_search_precision", {"query": "effect of statins", "fusion": "none"})
            for i, (name, c) in enumerate(clients.items()):
                trivial, search = [], []
                for _ in range(200):
                    t = time.perf_counter()
                    await c.list_prompts()
                    trivial.append((time.perf_counter() - t) * 1000)
                for q in queries[i * a.queries:(i + 1) * a.queries]:  # distinct queries per path: no shared cache
                    t = time.perf_counter()
                    await c.call_tool("rf_search_precision", {"query": q, "fusion": "none"})
                    search.append((time.perf_counter() - t) * 1000)
                print(f"{name}: list_prompts {statistics.median(trivial):.2f} ms, precision search "
                      f"{statistics.median(search):.2f} ms (medians)", flush=True)
            end, n = time.monotonic() + a.loop, 0
            while time.monotonic() < end:  # for a profiler attached to the server
                await http.call_tool("rf_search_precision", {"query": queries[n % len(queries)], "fusion": "none"})
                n += 1
            if a.loop:
                print(f"looped {n} HTTP searches in {a.loop:g} s", flush=True)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        PID_FILE.unlink(missing_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)


IDLE = ("EpollSelector.select", "Condition.wait")  # threads waiting, not working
LAYERS = {  # py-spy names a frame's file relative to its sys.path entry
    "engine query": ("(edge.py:", "rf_mcp/adapters/engines/"), "query embedding (onnxruntime)": ("(onnxruntime/",),
    "BM25 feedback scoring": ("rf_mcp/adapters/analyzer.py",), "domain": ("rf_mcp/domain/",),
    "rf-mcp server layer (tools, validation, HTTP guards)": ("rf_mcp/server/",),
    "MCP SDK (transport, session, runner)": ("(mcp/", "(mcp_types/"),
    "uvicorn, starlette, h11": ("(uvicorn/", "(starlette/", "(h11/"),
}


def summarize(path: Path) -> None:
    """Shares of the busy samples of a py-spy raw profile, each sample counted for the innermost layer on its stack
    (time in pydantic, json or asyncio counts for the layer that called it)."""
    shares: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not stack or frames[-1].startswith(IDLE):
            continue
        layer = next((name for f in reversed(frames) for name, marks in LAYERS.items() if any(m in f for m in marks)),
                     "other (event loop, threads)")
        shares[layer] += int(count)
    total = sum(shares.values())
    print(f"{total} busy samples")
    for name, n in shares.most_common():
        print(f"{n / total:6.1%}  {name}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--shared", default="../shared")
    p.add_argument("--queries", type=int, default=150, help="distinct queries per path")
    p.add_argument("--loop", type=float, default=0.0, help="seconds of HTTP searches afterwards (for a profiler)")
    p.add_argument("--summarize", type=Path, help="a py-spy raw profile to summarise by layer (and nothing else)")
    a = p.parse_args()
    if a.summarize:
        summarize(a.summarize)
    else:
        anyio.run(run, a)


if __name__ == "__main__":
    main()
