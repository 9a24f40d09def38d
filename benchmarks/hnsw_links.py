"""Links per point of the HNSW graph (``rf_mcp.ports.HNSW_M``) vs Qdrant's default of 16, side by side.

    python -m benchmarks.hnsw_links                      # 1M points, m = 16 and HNSW_M (~25 min)
    python -m benchmarks.hnsw_links --points 100000      # quick

Builds the latency benchmark's clustered vectors (``benchmarks.latency``) twice through the product's edge adapter,
once per ``hnsw_m``, and measures on each graph, with the same queries and feedback:
- *unreachable*: of ``--sample`` points drawn at random, how many a plain search for the point's own vector does not
  return first, at hnsw_ef 256 (plain searches) and 4096 (the widest RF breadth): such a point can never be found by a
  graph search, whatever the query;
- rf-mcp's RF query (``rf_mcp.domain.search.rf_query``) on the latency benchmark's two large-pull rows (c=0.3, where
  the RF top is made of outlying points): overlap@10 with exact search (mean, minimum, queries missing any exact
  top-10 point) and latency;
- build time.
Writes hnsw_links.json and the "hnsw_links" section of LATENCY.md.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

import anyio
import numpy as np

from benchmarks._report import publish
from benchmarks.latency import EXACT, SCENARIOS, build_collection, feedback_vectors, overlap, pct, queries, timed
from rf_mcp.config import QdrantSettings
from rf_mcp.domain import search
from rf_mcp.domain.models import Weights
from rf_mcp.factory import open_engine
from rf_mcp.ports import (
    HNSW_M,
    FeedbackItem,
    Nearest,
    QueryRequest,
    RelevanceFeedback,
    SearchParams,
)

REACH_EF = (search.NEAREST_EF, 4096)


async def measure(n: int, m: int, count: int, sample: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="rf-hnsw-links-"))
    settings = QdrantSettings(path=str(tmp / "edge"), backend="edge")
    engine = open_engine(settings)
    try:
        upsert_s, build_s = await build_collection(engine, n, m)
        info = await engine.describe("bench")
        print(f"m={m}: {n:,} points, upsert {upsert_s:.1f} s, HNSW {build_s:.1f} s", flush=True)
        ids = [int(i) + 1 for i in np.random.default_rng(3).choice(n, min(sample, n), replace=False)]
        unreachable = dict.fromkeys(REACH_EF, 0)
        for p in await engine.retrieve("bench", ids, with_vector="dense"):
            for ef in REACH_EF:
                got = await engine.query("bench", QueryRequest(Nearest(p.vector or [], "dense"), 1,
                                                               params=SearchParams(hnsw_ef=ef)))
                unreachable[ef] += not got or got[0].id != p.id
        row: dict[str, Any] = {"m": m, "points": n, "upsert_s": round(upsert_s, 1), "build_s": round(build_s, 1),
                               "sample": len(ids), "unreachable": {str(k): v for k, v in unreachable.items()}, "rows": []}
        qs = queries(n, count, seed=2007)  # neither the latency benchmark's queries nor its feedback
        rng = np.random.default_rng(2011)
        for label, c, source in SCENARIOS[2:]:
            weights = Weights(a=0.15, b=0.4, c=c)
            ovs: list[float] = []
            ms: list[float] = []
            for q in qs:
                feedback = await feedback_vectors(engine, q, n, source, rng)
                scores = [float(s) for s in rng.uniform(0, 1, len(feedback))]
                items = [FeedbackItem(f, s) for f, s in zip(feedback, scores, strict=True)]
                exact, _ = await timed(engine, QueryRequest(RelevanceFeedback(q.tolist(), items, weights.as_tuple(),
                                                                              "dense"), 10, params=EXACT))
                sent, params = search.rf_query(info, "dense", "Cosine", q, items, weights, 10, vectors=feedback)
                mine, took = await timed(engine, QueryRequest(sent, 10, params=params))
                ovs.append(overlap(mine, exact))
                ms.append(took)
            row["rows"].append({"query": f"RF, {label}", "queries": len(ovs), "overlap": round(float(np.mean(ovs)), 4),
                                "min_overlap": min(ovs), "missing_any": sum(o < 1 for o in ovs), **pct(ms)})
            print(row["rows"][-1], flush=True)
        return row
    finally:
        await engine.close()
        shutil.rmtree(tmp, ignore_errors=True)


def markdown(rows: list[dict[str, Any]]) -> str:
    n = rows[0]["points"]
    lines = ["## HNSW links per point: Qdrant's default vs rf-mcp's", "",
             f"The latency benchmark's clustered 384-d vectors, {n:,} points, built once per *m* (links per point) "
             "through the edge adapter. *unreachable*: of the sampled points, how many a plain search for the point's "
             "own vector does not return first (at hnsw_ef "
             f"{' / '.join(map(str, REACH_EF))}). RF rows: rf-mcp's RF query on "
             f"{rows[0]['rows'][0]['queries']} other queries and feedback than the latency section's, the same on both "
             "graphs; overlap@10 with exact search (mean / min), queries missing any exact top-10 point, p50 / p95 ms.",
             "", "| m | HNSW build s | unreachable | query | overlap mean / min | queries missing a point | p50 / p95 ms |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        reach = " / ".join(str(v) for v in r["unreachable"].values()) + f" of {r['sample']:,}"
        for q in r["rows"]:
            lines.append(f"| {r['m']} | {r['build_s']} | {reach} | {q['query']} | {q['overlap']} / {q['min_overlap']} | "
                         f"{q['missing_any']} | {q['p50']} / {q['p95']} |")
    return "\n".join(lines)


async def main(a: argparse.Namespace) -> None:
    rows = [await measure(a.points, m, a.queries, a.sample) for m in (16, HNSW_M)]
    publish("hnsw_links", {"runs": rows}, markdown(rows))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--points", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=200, help="queries per RF row")
    p.add_argument("--sample", type=int, default=3000, help="points checked for reachability")
    anyio.run(main, p.parse_args())
