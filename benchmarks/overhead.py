"""What each layer adds to a precision search: the raw parts, the domain call, an MCP tool call in process, over
stdio and over streamable HTTP, measured side by side on the same distinct queries.

    python -m benchmarks.overhead --shared ../shared            # 3 rounds x 150 distinct queries (~4 min)

A calibrated SciFact store (BM25 feedback, int8 MiniLM) is prepared once, and each path gets its own copy and its own
process or service (an embedded folder belongs to one process; no path shares another's query-embedding cache). The
rounds interleave the paths in chunks of 25 queries, so drift of the machine hits them alike. *raw parts*: the sum of
the search's own timings (embed, ANN, scoring, RF query). Writes overhead.json and the "overhead" section of
LATENCY.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

from benchmarks import store
from benchmarks._report import publish
from rf_mcp import load_config, open_service
from rf_mcp.server import build_server

PATHS = ["domain", "mcp in process", "stdio", "streamable HTTP", "streamable HTTP, single-client settings"]
SINGLE_CLIENT = {"RF_MCP_QDRANT__ENGINE_PROCESS": "off", "RF_MCP_RETRIEVER__THREADS": "2"}
"""The HTTP server with the stdio defaults (engine in the server's process, both cores per query embedding): what the
protocol costs, apart from the settings that trade one client's latency for throughput under load."""
CHUNK = 25


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int, proc: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the HTTP server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit("the HTTP server did not start")


async def run(a: argparse.Namespace) -> dict[str, Any]:
    shared = Path(a.shared)
    tmp = Path(tempfile.mkdtemp(prefix="rf-overhead-"))
    queries = store.distinct_queries(shared, a.rounds * a.queries)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        base = tmp / "base"
        base.mkdir()
        await store.prepare(shared, base)
        configs = {p: store.copy(shared, base, tmp / f"path{i}") for i, p in enumerate(PATHS)}
        times: dict[str, list[float]] = {p: [] for p in PATHS}
        raw: list[float] = []
        async with AsyncExitStack() as stack:
            domain = await stack.enter_async_context(open_service(load_config(configs["domain"], env={})))
            served = await stack.enter_async_context(open_service(load_config(configs["mcp in process"], env={})))
            inproc = await stack.enter_async_context(Client(build_server(served)))
            env = {**os.environ}
            stdio = await stack.enter_async_context(Client(StdioServerParameters(
                command=sys.executable, args=["-m", "rf_mcp", "--config", str(configs["stdio"]), "serve"], env=env),
                read_timeout_seconds=300))
            http_clients = {}
            for p, extra in (("streamable HTTP", {}), ("streamable HTTP, single-client settings", SINGLE_CLIENT)):
                port = free_port()
                http_proc = subprocess.Popen([sys.executable, "-m", "rf_mcp", "--config", str(configs[p]), "serve",
                                              "--transport", "streamable-http", "--port", str(port)],
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**env, **extra})
                procs.append(http_proc)
                wait_for(port, http_proc)
                http_clients[p] = await stack.enter_async_context(Client(f"http://127.0.0.1:{port}/mcp",
                                                                         read_timeout_seconds=300))

            async def tool(client: Client, q: str) -> None:
                r = await client.call_tool("rf_search_precision", {"query": q, "fusion": "none"})
                if r.is_error:
                    raise RuntimeError(r.content[0].text)  # type: ignore[union-attr]

            async def direct(q: str) -> None:
                res = await domain.search_precision(None, q, fusion="none")
                raw.append(sum(res.timings_ms.get(k, 0.0) for k in ("embed", "ann", "scoring", "rf_query")))

            calls: dict[str, Callable[[str], Awaitable[None]]] = {
                "domain": direct, "mcp in process": lambda q: tool(inproc, q), "stdio": lambda q: tool(stdio, q),
                "streamable HTTP": lambda q: tool(http_clients["streamable HTTP"], q),
                "streamable HTTP, single-client settings":
                    lambda q: tool(http_clients["streamable HTTP, single-client settings"], q)}
            warm = "effect of statins on muscle"  # loads the models of every path (not timed)
            for p in PATHS:
                await calls[p](warm)
            raw.clear()
            for start in range(0, len(queries), CHUNK):
                chunk = queries[start:start + CHUNK]
                order = PATHS[(start // CHUNK) % len(PATHS):] + PATHS[:(start // CHUNK) % len(PATHS)]
                for p in order:
                    for q in chunk:
                        t = time.perf_counter()
                        try:
                            await calls[p](q)
                        except Exception as exc:  # a refused search (no contrast among seeds): not timed
                            if "refused" not in str(exc) and "contrast" not in str(exc):
                                raise
                            continue
                        times[p].append((time.perf_counter() - t) * 1000)
        med = {p: round(statistics.median(v), 2) for p, v in times.items()}
        result = {"queries": len(queries), "raw_parts_ms": round(statistics.median(raw), 2), "median_ms": med,
                  "calls": {p: len(v) for p, v in times.items()},
                  "ratio_to_domain": {p: round(med[p] / med["domain"], 3) for p in PATHS},
                  "domain_to_raw": round(med["domain"] / statistics.median(raw), 3)}
        return result
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


def markdown(r: dict[str, Any]) -> str:
    lines = ["## Protocol overhead per transport", "",
             f"A precision search (fusion none) on SciFact, medians over {r['queries']} distinct queries, each path "
             "with its own process or service and store copy, interleaved in chunks. *streamable HTTP*: the HTTP "
             "defaults (engine process, one ONNX thread per call: throughput under load); *single-client settings*: "
             "the same server with the engine in its process and two ONNX threads (as stdio).", "",
             "| path | median ms | vs domain call |", "|---|---|---|",
             f"| raw parts (embed + ANN + scoring + RF query) | {r['raw_parts_ms']} | "
             f"{r['raw_parts_ms'] / r['median_ms']['domain']:.2f}x |"]
    lines += [f"| {p} | {r['median_ms'][p]} | {r['ratio_to_domain'][p]:.2f}x |" for p in PATHS]
    lines += ["", f"Domain call / raw parts: {r['domain_to_raw']:.2f}x."]
    return "\n".join(lines)


async def main(a: argparse.Namespace) -> None:
    r = await run(a)
    publish("overhead", r, markdown(r))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--shared", default="../shared")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--queries", type=int, default=150, help="distinct queries per round")
    anyio.run(main, p.parse_args())
