"""Bounded load test (loopback only): N concurrent MCP clients over streamable HTTP issuing precision searches.

usage: python -m benchmarks.load --url http://127.0.0.1:8000/mcp --collection C [--clients 50] [--seconds 30]

Stops by itself after --seconds; prints one JSON document (throughput, p50/p99 latency, errors).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from urllib.parse import urlsplit

import anyio
from mcp.client.client import Client

QUERIES = ["APOE4 expression increases tau phosphorylation", "stem cells differentiate into neurons",
           "vitamin D deficiency and cancer risk", "antibiotic resistance in bacteria", "obesity and insulin resistance",
           "microRNA regulation of gene expression", "T cell activation in autoimmunity", "aspirin and heart attack"]


def _loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"refusing to load-test {host}: loopback addresses only")


async def run_load(url: str, collection: str, clients: int = 50, seconds: float = 30.0) -> dict:
    _loopback(url)
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.monotonic() + seconds

    async def one(i: int) -> None:
        async with Client(url, read_timeout_seconds=120) as client:
            n = 0
            while time.monotonic() < deadline:
                q = QUERIES[(i + n) % len(QUERIES)] + f" (client {i})"
                t0 = time.perf_counter()
                try:
                    r = await client.call_tool("rf_search_precision", {"collection": collection, "query": q})
                    if r.is_error:
                        errors.append(" ".join(getattr(c, "text", "") for c in r.content)[:200])
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                latencies.append(time.perf_counter() - t0)
                n += 1

    t0 = time.monotonic()
    with anyio.fail_after(seconds + 300):
        async with anyio.create_task_group() as tg:
            for i in range(clients):
                tg.start_soon(one, i)
    wall = time.monotonic() - t0
    lat = sorted(latencies)
    return {"clients": clients, "seconds": round(wall, 1), "requests": len(lat), "errors": len(errors),
            "error_samples": errors[:3], "throughput_rps": round(len(lat) / wall, 1),
            "p50_ms": round(statistics.median(lat) * 1000, 1) if lat else None,
            "p99_ms": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000, 1) if lat else None}


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--collection", required=True)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=float, default=30.0)
    a = p.parse_args()
    print(json.dumps(anyio.run(run_load, a.url, a.collection, a.clients, a.seconds)))
