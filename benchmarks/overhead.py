"""MCP tool-call overhead: median of N rf_search_precision calls through the protocol vs the same domain call.

usage: python benchmarks/overhead.py --config CONFIG --collection C [--calls 50] [--transport inproc|stdio]

The collection must be calibrated for the configured models. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import anyio
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

from rf_mcp.config import load_config
from rf_mcp.domain.service import RFService
from rf_mcp.server import build_server

QUERIES = ["APOE4 expression increases tau phosphorylation", "stem cells differentiate into neurons",
           "vitamin D deficiency and cancer risk", "antibiotic resistance in bacteria", "obesity and diabetes"]


async def main(args: argparse.Namespace) -> dict:
    cfg = load_config(args.config)
    domain: list[float] = []
    tool: list[float] = []
    async with RFService(cfg) as service:
        await service.search_precision(args.collection, QUERIES[0])  # warm up models and caches
        for i in range(args.calls):
            t0 = time.perf_counter()
            await service.search_precision(args.collection, QUERIES[i % len(QUERIES)])
            domain.append(time.perf_counter() - t0)
        if args.transport == "inproc":
            target = build_server(service)
            client = Client(target)
        else:
            await service.close()
            client = Client(StdioServerParameters(command=sys.executable, args=["-m", "rf_mcp", "serve"],
                                                  env={**os.environ, "RF_MCP_CONFIG": args.config}))
        async with client:
            await client.call_tool("rf_search_precision", {"collection": args.collection, "query": QUERIES[0]})
            for i in range(args.calls):
                t0 = time.perf_counter()
                r = await client.call_tool("rf_search_precision",
                                           {"collection": args.collection, "query": QUERIES[i % len(QUERIES)]})
                tool.append(time.perf_counter() - t0)
                assert not r.is_error, r.content
    md, mt = statistics.median(domain), statistics.median(tool)
    return {"calls": args.calls, "transport": args.transport, "domain_median_ms": round(md * 1000, 2),
            "tool_median_ms": round(mt * 1000, 2), "ratio": round(mt / md, 3)}


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--config", required=True)
    p.add_argument("--collection", required=True)
    p.add_argument("--calls", type=int, default=50)
    p.add_argument("--transport", choices=["inproc", "stdio"], default="inproc")
    print(json.dumps(anyio.run(main, p.parse_args())))
