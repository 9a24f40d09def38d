"""Latency of the embedded engines: qdrant-client local mode vs qdrant-edge (exact search), and a whole
rf_search_precision call on SciFact split into its parts.

    python -m benchmarks.latency --shared ../shared            # 10k and 100k synthetic + SciFact (~10 min)
    python -m benchmarks.latency --sizes 10000 --skip-scifact  # quick

Synthetic: clustered 384-d vectors; RF queries with 5 feedback vectors and weights a=0.15 b=0.4 c=0.005.
The local-mode baseline uses its folder (path) mode at 10k; at 100k it runs in memory, because its path
mode writes one SQLite row per point (the upsert alone takes many minutes), and with few queries.
Writes benchmarks/LATENCY.md and latency.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import numpy as np

from rf_mcp.adapters.edge_engine import EdgeEngine
from rf_mcp.adapters.engine import QdrantEngine
from rf_mcp.config import QdrantSettings

OUT = Path(__file__).parent
DIM = 384
WEIGHTS = (0.15, 0.4, 0.005)


def clustered(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(10, n // 500), DIM))
    v = centres[rng.integers(0, len(centres), n)] + 0.5 * rng.normal(size=(n, DIM))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def pct(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    return {"p50": round(statistics.median(xs), 2), "p95": round(xs[min(len(xs) - 1, int(0.95 * len(xs)))], 2),
            "n": len(xs)}


async def measure(engine: Any, vectors: np.ndarray, queries: int, rf_queries: int) -> dict[str, Any]:
    n = len(vectors)
    t0 = time.perf_counter()
    await engine.create_collection("bench", "dense", DIM)
    for s in range(0, n, 2000):
        ids = list(range(s + 1, min(n, s + 2000) + 1))
        await engine.upsert("bench", "dense", ids, vectors[s:s + 2000], [{"i": i} for i in ids])
    upsert = time.perf_counter() - t0
    return {"upsert_s": round(upsert, 1), **await measure_queries(engine, vectors, queries, rf_queries)}


async def measure_queries(engine: Any, vectors: np.ndarray, queries: int, rf_queries: int) -> dict[str, Any]:
    n = len(vectors)
    rng = np.random.default_rng(1)
    near, rf = [], []
    for i in range(queries):
        q = vectors[rng.integers(n)] + 0.05 * rng.normal(size=DIM)
        t = time.perf_counter()
        await engine.nearest("bench", "dense", q, 10)
        near.append((time.perf_counter() - t) * 1000)
    for i in range(rf_queries):
        q = vectors[rng.integers(n)] + 0.05 * rng.normal(size=DIM)
        fb = [(vectors[rng.integers(n)], float(s)) for s in rng.uniform(0, 10, 5)]
        t = time.perf_counter()
        await engine.relevance_feedback("bench", "dense", q, fb, WEIGHTS, 10)
        rf.append((time.perf_counter() - t) * 1000)
    return {"nearest_ms": pct(near), "rf_ms": pct(rf)}


async def reopen_seconds(make: Any) -> float:
    t = time.perf_counter()
    engine = make()
    await engine.describe("bench")
    out = time.perf_counter() - t
    await engine.close()
    return round(out, 2)


async def synthetic(sizes: list[int]) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        vectors = clustered(n)
        tmp = Path(tempfile.mkdtemp(prefix="rf-latency-"))
        edge = EdgeEngine(QdrantSettings(path=str(tmp / "edge"), backend="edge"))
        r = await measure(edge, vectors, 50, 50)
        t = time.perf_counter()
        await edge.optimize("bench")
        build = round(time.perf_counter() - t, 1)
        await edge.close()
        r["reopen_s"] = await reopen_seconds(lambda: EdgeEngine(QdrantSettings(path=str(tmp / "edge"), backend="edge")))
        rows.append({"points": n, "backend": "edge (exact)", **r})
        print(json.dumps(rows[-1]), flush=True)
        hnsw = EdgeEngine(QdrantSettings(path=str(tmp / "edge"), backend="edge"))
        r = await measure_queries(hnsw, vectors, 50, 50)
        await hnsw.close()
        r["reopen_s"] = await reopen_seconds(lambda: EdgeEngine(QdrantSettings(path=str(tmp / "edge"), backend="edge")))
        rows.append({"points": n, "backend": f"edge (HNSW, built in {build} s)", "upsert_s": None, **r})
        print(json.dumps(rows[-1]), flush=True)
        if n <= 20_000:
            local = QdrantEngine(QdrantSettings(path=str(tmp / "local")))
            r = await measure(local, vectors, 20, 20)
            await local.close()
            r["reopen_s"] = await reopen_seconds(lambda: QdrantEngine(QdrantSettings(path=str(tmp / "local"))))
            rows.append({"points": n, "backend": "local (path mode)", **r})
        else:
            local = QdrantEngine(QdrantSettings(path=":memory:"))
            r = await measure(local, vectors, 10, 5)
            await local.close()
            rows.append({"points": n, "backend": "local (in memory)", **r, "reopen_s": None})
        print(json.dumps(rows[-1]), flush=True)
    return rows


async def scifact(shared: Path, queries: int) -> list[dict[str, Any]]:
    """A whole precision search (real int8 MiniLM query embedding, BM25 feedback) on SciFact, per backend."""
    from rf_mcp.config import Config, FeedbackSettings, RetrieverSettings
    from rf_mcp.domain.datasets import read_qrels, read_queries
    from rf_mcp.domain.models import TrainSettings
    from rf_mcp.domain.service import RFService

    sf = shared / "data" / "scifact"
    dev = read_queries(sf / "queries.jsonl", ids=set(read_qrels(sf / "qrels" / "dev.tsv")))[:queries]
    train = read_queries(sf / "queries.jsonl", ids=set(read_qrels(sf / "qrels" / "train.tsv")))[:100]
    rows = []
    for backend in ("edge", "local"):
        tmp = Path(tempfile.mkdtemp(prefix="rf-latency-sf-"))
        cfg = Config(qdrant=QdrantSettings(path=str(tmp / "data"), backend=backend),
                     retriever=RetrieverSettings(model="local/all-MiniLM-L6-v2",
                                                 model_path=str(shared / "models" / "all-MiniLM-L6-v2-int8"),
                                                 dim=384, pooling="mean"),
                     feedback=FeedbackSettings(type="bm25"))
        async with RFService(cfg) as rf:
            await rf.index("scifact", sf / "corpus.jsonl", vectors_path=sf / "embeddings" / "minilm_corpus.npy")
            await rf.calibrate("scifact", [q.text for q in train], TrainSettings())
            await rf.search_precision("scifact", train[0].text)  # warm up models and caches
            parts: dict[str, list[float]] = {k: [] for k in ("total", "embed", "ann", "scoring", "rf_query", "overhead")}
            from rf_mcp.errors import GuardrailError

            for q in dev:
                t = time.perf_counter()
                try:
                    res = await rf.search_precision("scifact", q.text)
                except GuardrailError:  # no contrast among the seeds: not a timed search
                    continue
                total = (time.perf_counter() - t) * 1000
                parts["total"].append(total)
                for k in ("embed", "ann", "scoring", "rf_query"):
                    parts[k].append(res.timings_ms.get(k, 0.0))
                parts["overhead"].append(total - sum(res.timings_ms.get(k, 0.0) for k in ("embed", "ann", "scoring", "rf_query")))
        row = {"backend": backend, "points": 5183, **{k: round(statistics.median(v), 2) for k, v in parts.items()}}
        row["overhead_share"] = round(row["overhead"] / row["total"], 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def markdown(syn: list[dict[str, Any]], sf: list[dict[str, Any]], command: str) -> str:
    lines = ["# Latency of the embedded engines", "", f"Command: `{command}`  ",
             f"Date: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}; machine: 2 cores, 24 GiB", "",
             "Synthetic clustered 384-d vectors, top-10, RF with 5 feedback vectors (ms):", "",
             "| points | backend | upsert s | reopen s | nearest p50 / p95 | RF p50 / p95 | queries |",
             "|---|---|---|---|---|---|---|"]
    for r in syn:
        lines.append(f"| {r['points']:,} | {r['backend']} | {r['upsert_s'] if r['upsert_s'] is not None else '-'} | {r['reopen_s'] if r['reopen_s'] is not None else '-'} | "
                     f"{r['nearest_ms']['p50']} / {r['nearest_ms']['p95']} | {r['rf_ms']['p50']} / {r['rf_ms']['p95']} | "
                     f"{r['nearest_ms']['n']} / {r['rf_ms']['n']} |")
    if sf:
        lines += ["", "A whole `rf_search_precision` (domain call) on SciFact, 5,183 points, int8 MiniLM query "
                  "embedding, BM25 feedback; medians in ms:", "",
                  "| backend | total | embed | ANN | scoring | RF query | overhead (rest) | overhead share |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in sf:
            lines.append(f"| {r['backend']} | {r['total']} | {r['embed']} | {r['ann']} | {r['scoring']} | "
                         f"{r['rf_query']} | {r['overhead']} | {r['overhead_share']:.1%} |")
    return "\n".join(lines) + "\n"


async def main(a: argparse.Namespace) -> None:
    syn = await synthetic([int(s) for s in a.sizes.split(",")])
    sf = [] if a.skip_scifact else await scifact(Path(a.shared), a.queries)
    (OUT / "latency.json").write_text(json.dumps({"synthetic": syn, "scifact": sf}, indent=2))
    cmd = "python -m benchmarks.latency --shared ../shared" + (f" --sizes {a.sizes}" if a.sizes != "10000,100000" else "")
    md = markdown(syn, sf, cmd + (" --skip-scifact" if a.skip_scifact else ""))
    (OUT / "LATENCY.md").write_text(md)
    print(md)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--shared", default="../shared")
    p.add_argument("--sizes", default="10000,100000")
    p.add_argument("--queries", type=int, default=30)
    p.add_argument("--skip-scifact", action="store_true")
    anyio.run(main, p.parse_args())
