"""Concurrent MCP clients over streamable HTTP: throughput, latency, and how much of the machine the server uses.

    python -m benchmarks.load --shared ../shared                  # 1, 2, 4 and 50 clients, 15 s each (~3 min)
    python -m benchmarks.load --url http://127.0.0.1:8000/mcp     # against a server you started (loopback only)

Without --url it prepares a calibrated SciFact store (BM25 feedback, int8 MiniLM), starts ``rf-mcp serve --transport
streamable-http`` on it, and measures each phase: precision searches from N clients, every query distinct (SciFact's
1,109 queries, each suffixed with a number when they run out, so every search embeds), CPU time of the server process
and its children (psutil). *CPU-ms/req* at one client is the work a request costs; *efficiency* = saturated req/s /
(cores / CPU-seconds per request): 1.0 means every core busy with useful work. Writes load.json and the "load"
section of LATENCY.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
from mcp.client.client import Client

from benchmarks import store
from benchmarks._report import OUT, write_section
from benchmarks.overhead import free_port, wait_for


def _loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"refusing to load-test {host}: loopback addresses only")


class Queries:
    """Distinct queries, handed out once each."""

    def __init__(self, texts: list[str]) -> None:
        self.texts, self.n = texts, 0

    def next(self) -> str:
        q = self.texts[self.n % len(self.texts)]
        rounds = self.n // len(self.texts)
        self.n += 1
        return q if rounds == 0 else f"{q} ({rounds})"


def cpu_seconds(proc: Any) -> float:
    """User + system CPU seconds of a psutil process and its children."""
    import psutil

    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


async def phase(url: str, clients: int, seconds: float, queries: Queries, server: Any = None,
                collection: str | None = None) -> dict[str, Any]:
    """``clients`` MCP clients searching for ``seconds``; ``server``: a psutil process whose CPU time is measured."""
    latencies: list[float] = []
    errors: list[str] = []
    ready = anyio.Event()
    connected = 0

    async def one() -> None:
        nonlocal connected
        async with Client(url, read_timeout_seconds=120) as client:
            connected += 1
            if connected == clients:
                ready.set()
            await ready.wait()
            while time.monotonic() < deadline:
                t = time.perf_counter()
                args = {"query": queries.next(), "fusion": "none"} | ({"collection": collection} if collection else {})
                r = await client.call_tool("rf_search_precision", args)
                if r.is_error and "contrast" not in r.content[0].text:  # type: ignore[union-attr]
                    errors.append(r.content[0].text[:200])  # type: ignore[union-attr]
                latencies.append((time.perf_counter() - t) * 1000)

    deadline = float("inf")
    async with anyio.create_task_group() as tg:
        for _ in range(clients):
            tg.start_soon(one)
        await ready.wait()
        cpu0, t0 = (cpu_seconds(server) if server else 0.0), time.monotonic()
        deadline = t0 + seconds
    wall = time.monotonic() - t0
    cpu = (cpu_seconds(server) - cpu0) if server else None
    lat = sorted(latencies)
    out: dict[str, Any] = {"clients": clients, "requests": len(lat), "errors": len(errors), "seconds": round(wall, 1),
                           "req_per_s": round(len(lat) / wall, 1), "p50_ms": round(statistics.median(lat), 1),
                           "p99_ms": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 1)}
    if cpu is not None:
        out |= {"cores_used": round(cpu / wall, 2), "cpu_ms_per_req": round(1000 * cpu / max(1, len(lat)), 2)}
    if errors:
        out["first_error"] = errors[0]
    print(json.dumps(out), flush=True)
    return out


async def run(a: argparse.Namespace) -> dict[str, Any]:
    import psutil

    shared = Path(a.shared)
    texts = store.distinct_queries(shared, 1100)
    cores = psutil.cpu_count(logical=True) or 1
    tmp = Path(tempfile.mkdtemp(prefix="rf-load-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        url = a.url
        server = None
        if url is None:
            await store.prepare(shared, tmp)
            port = free_port()
            proc = subprocess.Popen([sys.executable, "-m", "rf_mcp", "--config", str(tmp / "config.toml"), "serve",
                                     "--transport", "streamable-http", "--port", str(port), *a.serve_args],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
            wait_for(port, proc)
            url = f"http://127.0.0.1:{port}/mcp"
            server = psutil.Process(proc.pid)
        _loopback(url)
        queries = Queries(texts)
        await phase(url, 1, 3, queries, server)  # warm-up: models loaded, caches of code paths (not reported)
        phases = [await phase(url, n, a.seconds, queries, server) for n in a.clients]
        one = phases[0]
        best = max(phases, key=lambda p: p["req_per_s"])
        result: dict[str, Any] = {"cores": cores, "phases": phases, "serve_args": a.serve_args}
        if server is not None and one["clients"] == 1:
            capacity = cores / (one["cpu_ms_per_req"] / 1000)
            result |= {"capacity_req_per_s": round(capacity, 1), "saturated_req_per_s": best["req_per_s"],
                       "efficiency": round(best["req_per_s"] / capacity, 2),
                       "p99_at_max_over_p50_at_1": round(phases[-1]["p99_ms"] / one["p50_ms"], 1)}
        return result
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


def markdown(r: dict[str, Any]) -> str:
    lines = ["## Load over streamable HTTP", "",
             f"Precision searches (fusion none) on SciFact from concurrent clients, distinct queries, {r['cores']} "
             f"cores; server options: `{' '.join(r['serve_args']) or '(defaults)'}`.", "",
             "| clients | requests | errors | req/s | p50 ms | p99 ms | cores used | CPU-ms/req |",
             "|---|---|---|---|---|---|---|---|"]
    for p in r["phases"]:
        lines.append(f"| {p['clients']} | {p['requests']} | {p['errors']} | {p['req_per_s']} | {p['p50_ms']} | "
                     f"{p['p99_ms']} | {p.get('cores_used', '-')} | {p.get('cpu_ms_per_req', '-')} |")
    if "efficiency" in r:
        lines += ["", f"Capacity at one client's CPU cost: {r['capacity_req_per_s']} req/s on {r['cores']} cores; "
                      f"saturated: {r['saturated_req_per_s']} req/s; **efficiency {r['efficiency']}**; p99 at "
                      f"{r['phases'][-1]['clients']} clients / p50 at 1 client: {r['p99_at_max_over_p50_at_1']}x."]
    return "\n".join(lines)


async def main(a: argparse.Namespace) -> None:
    r = await run(a)
    (OUT / "load.json").write_text(json.dumps(r, indent=2))
    if a.url is None:
        write_section("load", markdown(r))
    print(markdown(r))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--shared", default="../shared")
    p.add_argument("--url", help="an already running server (loopback only); default: start one")
    p.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4, 50])
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--serve-args", nargs=argparse.REMAINDER, default=[], help="extra `rf-mcp serve` arguments")
    anyio.run(main, p.parse_args())
