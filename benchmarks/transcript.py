"""A transcript of the MCP server over stdio: the tool list and one call of each tool.

usage: python benchmarks/transcript.py --config CONFIG --collection C --corpus FILE.jsonl [--vectors V.npy]
       --train-queries FILE --eval-queries FILE [--qrels FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import anyio
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters


def short(obj: object, width: int = 600) -> str:
    s = json.dumps(obj, default=str)
    return s if len(s) <= width else s[:width] + f"... ({len(s)} chars)"


async def main(a: argparse.Namespace) -> None:
    params = StdioServerParameters(command=sys.executable, args=["-m", "rf_mcp", "serve"],
                                   env={**os.environ, "RF_MCP_CONFIG": a.config})
    query = "APOE4 expression in neurons increases tau phosphorylation"
    calls = [
        ("index", {"collection": a.collection, "input_path": a.corpus, **({"vectors_path": a.vectors} if a.vectors else {})}),
        ("calibrate", {"collection": a.collection, "queries_path": a.train_queries, "max_queries": 100}),
        ("evaluate", {"collection": a.collection, "queries_path": a.eval_queries,
                      **({"qrels_path": a.qrels} if a.qrels else {})}),
        ("list_collections", {"collection": a.collection}),
        ("rf_search_precision", {"collection": a.collection, "query": query, "limit": 3}),
        ("rf_search_recall", {"collection": a.collection, "query": query, "budget": 10, "limit": 3}),
    ]
    async with Client(params, read_timeout_seconds=1800) as client:
        tools = (await client.list_tools()).tools
        print("tools/list:")
        for t in tools:
            print(f"  {t.name}({', '.join(t.input_schema['properties'])}) read_only={t.annotations.read_only_hint}")
        for name, args in calls:
            r = await client.call_tool(name, args)
            print(f"\n> {name} {short(args, 300)}")
            if r.is_error:
                print("  is_error: " + " ".join(c.text for c in r.content))
            else:
                sc = dict(r.structured_content or {})
                for key in ("hits",):
                    if key in sc:
                        sc[key] = [{k: h[k] for k in ("rank", "doc_id", "score", "feedback_score", "source")}
                                   for h in sc[key]]
                sc.pop("payload", None)
                print("  " + short(sc, 1500))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    for name in ("config", "collection", "corpus", "train_queries", "eval_queries"):
        p.add_argument(f"--{name.replace('_', '-')}", required=True)
    p.add_argument("--vectors")
    p.add_argument("--qrels")
    anyio.run(main, p.parse_args())
