"""Speed and accuracy of the embedded engine's HNSW path for RF queries, and a whole precision search on SciFact.

    python -m benchmarks.latency --shared ../shared                       # 10k, 100k, 1M x 3 builds + SciFact (~30 min)
    python -m benchmarks.latency --sizes 10000 --skip-scifact             # quick
    python -m benchmarks.latency --sizes none                             # SciFact only

Synthetic: clustered 384-d unit vectors (one cluster per 500 points); queries drawn like the data (a cluster centre
plus noise). Each size is built ``--builds`` times from the same vectors (each HNSW graph differs, and so does its worst
query), with other queries and feedback on each build. Each row
compares, on the same edge shard with its HNSW index built, the engine's RF query at its default HNSW breadth and the
query rf-mcp sends (``rf_mcp.domain.search.rf_query``: the breadth chosen from the feedback's pull, the RF formula
scored on the union of its graph search and the plain neighbourhoods of the query and of the feedback examples) with
exact search: overlap@10 of result ids (mean, minimum, 5th percentile, per build and pooled) and latency. RF queries:
a=0.15, b=0.4 and c=0.007 (a small pull, like the BM25 calibrations) or c=0.3 (a large one), 5 feedback vectors with
random scores in [0, 1], taken either from the query's top 5 or at random from the collection (feedback chosen by a
user: seed_ids). Everything goes through the engine port
(``rf_mcp.factory.open_engine``, the product's adapter), not the engine library.

SciFact: a whole ``RFService.search_precision`` (real int8 MiniLM query embedding, BM25 feedback, calibrated on 100
training queries) split into its parts, on the default edge engine and on qdrant-client's local mode.
Writes latency.json and the "latency" and "scifact" sections of LATENCY.md.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import numpy as np

from benchmarks._report import OUT, write_section
from rf_mcp import Config
from rf_mcp.config import Bm25Feedback, QdrantSettings, RetrieverSettings
from rf_mcp.domain import search
from rf_mcp.domain.models import Weights
from rf_mcp.factory import open_engine
from rf_mcp.ports import (
    HNSW_M,
    CollectionSpec,
    Engine,
    FeedbackItem,
    Nearest,
    PointInput,
    QueryRequest,
    RelevanceFeedback,
    SearchParams,
)

DIM = 384
SCENARIOS = [("c=0.007, top-5 feedback", 0.007, "top"), ("c=0.007, random feedback", 0.007, "random"),
             ("c=0.3, top-5 feedback", 0.3, "top"), ("c=0.3, random feedback", 0.3, "random")]
EXACT = SearchParams(exact=True)


def centres(n: int) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(max(10, n // 500), DIM))


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def batches(n: int, size: int = 5000):  # type: ignore[no-untyped-def]
    """The collection's vectors, generated batch by batch (1M x 384 floats is 1.5 GB)."""
    c = centres(n)
    rng = np.random.default_rng(1)
    for start in range(0, n, size):
        stop = min(n, start + size)
        yield start, unit(c[rng.integers(0, len(c), stop - start)] + 0.5 * rng.normal(size=(stop - start, DIM)))


def queries(n: int, count: int, seed: int = 7) -> np.ndarray:
    c = centres(n)
    rng = np.random.default_rng(seed)
    return unit(c[rng.integers(0, len(c), count)] + 0.5 * rng.normal(size=(count, DIM)))


async def build_collection(engine: Engine, n: int, hnsw_m: int = HNSW_M) -> tuple[float, float]:
    """Create collection "bench" with ``n`` points of :func:`batches` and build its HNSW index: (upsert s, build s)."""
    t = time.perf_counter()
    await engine.create_collection("bench", CollectionSpec("dense", DIM, hnsw_m=hnsw_m))
    for start, vectors in batches(n):
        await engine.upsert("bench", [PointInput(start + i + 1, {"dense": v.tolist()}, {}) for i, v in enumerate(vectors)])
    upsert_s = time.perf_counter() - t
    t = time.perf_counter()
    await engine.optimize("bench")
    return upsert_s, time.perf_counter() - t


async def feedback_vectors(engine: Engine, q: np.ndarray, n: int, source: str,
                           rng: np.random.Generator) -> list[list[float]]:
    """Five feedback examples: the query's top 5 ("top") or five points drawn at random ("random")."""
    if source == "top":
        top = await engine.query("bench", QueryRequest(Nearest(q.tolist(), "dense"), 5, with_vector="dense"))
        return [p.vector or [] for p in top]
    ids = [int(i) + 1 for i in rng.integers(0, n, 5)]
    return [p.vector or [] for p in await engine.retrieve("bench", ids, with_vector="dense")]


def pct(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    return {"p50": round(statistics.median(xs), 2), "p95": round(xs[min(len(xs) - 1, int(0.95 * len(xs)))], 2)}


async def timed(engine: Engine, request: QueryRequest) -> tuple[list[int | str], float]:
    t = time.perf_counter()
    points = await engine.query("bench", request)
    return [p.id for p in points], (time.perf_counter() - t) * 1000


def spread(overlaps: list[float]) -> dict[str, Any]:
    """Mean, minimum and 5th percentile of per-query overlaps (the per-query values are kept for pooling builds)."""
    return {"overlap": round(float(np.mean(overlaps)), 3), "min_overlap": round(float(np.min(overlaps)), 2),
            "p5_overlap": round(float(np.percentile(overlaps, 5)), 2), "overlaps": [round(o, 2) for o in overlaps]}


def overlap(a: list[int | str], b: list[int | str]) -> float:
    return len(set(a) & set(b)) / max(1, len(b))


async def synthetic(n: int, count: int, build: int) -> list[dict[str, Any]]:
    """One build of an ``n``-point collection and every row measured on it (per-query values in ``raw``)."""
    tmp = Path(tempfile.mkdtemp(prefix="rf-latency-"))
    settings = QdrantSettings(path=str(tmp / "edge"), backend="edge")
    engine = open_engine(settings)
    try:
        upsert_s, build_s = await build_collection(engine, n)
        await engine.close()
        t = time.perf_counter()
        engine = open_engine(settings)
        info = await engine.describe("bench")
        reopen_s = time.perf_counter() - t
        print(f"{n:,} points: upsert {upsert_s:.1f} s, HNSW build {build_s:.1f} s, reopen {reopen_s:.2f} s "
              f"({info.indexed_vectors:,} indexed)", flush=True)
        common = {"points": n, "build": build, "upsert_s": round(upsert_s, 1), "build_s": round(build_s, 1),
                  "reopen_s": round(reopen_s, 2)}
        rows = []
        qs = queries(n, count, seed=7 + 100 * build)  # other queries (and feedback) on each build
        near: dict[str, list[float]] = {"default_ov": [], "default_ms": [], "auto_ov": [], "auto_ms": [], "exact_ms": []}
        for q in qs:
            exact, exact_ms = await timed(engine, QueryRequest(Nearest(q.tolist(), "dense"), 10, params=EXACT))
            got, ms = await timed(engine, QueryRequest(Nearest(q.tolist(), "dense"), 10))
            mine, mine_ms = await timed(engine, QueryRequest(Nearest(q.tolist(), "dense"), 10,
                                                             params=SearchParams(hnsw_ef=search.NEAREST_EF)))
            for k, v in (("default_ov", overlap(got, exact)), ("default_ms", ms), ("auto_ov", overlap(mine, exact)),
                         ("auto_ms", mine_ms), ("exact_ms", exact_ms)):
                near[k].append(v)
        rows.append({**common, "query": "nearest", "raw": near, "hnsw_ef": [search.NEAREST_EF]})
        print(json.dumps(brief(summary([rows[-1]]))), flush=True)
        rng = np.random.default_rng(11 + 100 * build)
        for label, c, source in SCENARIOS:
            weights = Weights(a=0.15, b=0.4, c=c)
            acc: dict[str, list[float]] = {k: [] for k in ("default_ov", "default_ms", "auto_ov", "auto_ms", "exact_ms",
                                                           "ef", "pull")}
            for q in qs:
                feedback = [np.asarray(v) for v in await feedback_vectors(engine, q, n, source, rng)]
                scores = [float(s) for s in rng.uniform(0, 1, len(feedback))]
                rf = RelevanceFeedback(q.tolist(), [FeedbackItem(f.tolist(), s) for f, s in zip(feedback, scores, strict=True)],
                                       weights.as_tuple(), "dense")
                exact, exact_ms = await timed(engine, QueryRequest(rf, 10, params=EXACT))
                default, default_ms = await timed(engine, QueryRequest(rf, 10))
                pull = search.feedback_pull(q, [f.tolist() for f in feedback], scores, weights, "Cosine")
                sent, params = search.rf_query(info, "dense", "Cosine", q, rf.feedback, weights, 10,  # what rf-mcp sends
                                               vectors=[f.tolist() for f in feedback])
                auto, auto_ms = await timed(engine, QueryRequest(sent, 10, params=params))
                for k, v in (("default_ov", overlap(default, exact)), ("default_ms", default_ms),
                             ("auto_ov", overlap(auto, exact)), ("auto_ms", auto_ms), ("exact_ms", exact_ms),
                             ("ef", float((params.hnsw_ef or 0) if params else 0)), ("pull", pull)):
                    acc[k].append(v)
            rows.append({**common, "query": f"RF, {label}", "raw": acc, "hnsw_ef": sorted({int(e) for e in acc["ef"]}),
                         "pull_p50": round(statistics.median(acc["pull"]), 2)})
            print(json.dumps(brief(summary([rows[-1]]))), flush=True)
        return rows
    finally:
        await engine.close()
        shutil.rmtree(tmp, ignore_errors=True)


async def scifact(shared: Path, count: int) -> list[dict[str, Any]]:
    """A whole precision search on SciFact, per backend, with the overlap of its RF results with exact search."""
    from rf_mcp import GuardrailError, TrainSettings, open_service, read_qrels, read_queries

    sf = shared / "data" / "scifact"
    dev = read_queries(sf / "queries.jsonl", ids=set(read_qrels(sf / "qrels" / "dev.tsv")))[:count]
    train = read_queries(sf / "queries.jsonl", ids=set(read_qrels(sf / "qrels" / "train.tsv")))[:100]
    rows = []
    for backend in ("edge", "local"):
        tmp = Path(tempfile.mkdtemp(prefix="rf-latency-sf-"))
        cfg = Config(qdrant=QdrantSettings(path=str(tmp / "data"), backend=backend),
                     retriever=RetrieverSettings(model="local/all-MiniLM-L6-v2",
                                                 model_path=str(shared / "models" / "all-MiniLM-L6-v2-int8"),
                                                 dim=384, pooling="mean"),
                     feedback=Bm25Feedback())
        try:
            async with open_service(cfg) as rf:
                await rf.index("scifact", sf / "corpus.jsonl", vectors_path=sf / "embeddings" / "minilm_corpus.npy",
                               build_index=backend == "edge")
                await rf.calibrate("scifact", [q.text for q in train], TrainSettings())
                await rf.search_precision("scifact", train[0].text, fusion="none")  # warm up models and caches
                parts: dict[str, list[float]] = {k: [] for k in ("total", "embed", "ann", "scoring", "rf_query", "rest")}
                overlaps: list[float] = []
                seen: dict[str, int] = {}  # how the engine searched, per query
                fused: list[float] = []  # fused vs plain precision search, both with the query embedding cached
                plain: list[float] = []
                for q in dev:
                    t = time.perf_counter()
                    try:
                        res = await rf.search_precision("scifact", q.text, fusion="none")
                    except GuardrailError:  # no contrast among the seeds: not a timed search
                        continue
                    total = (time.perf_counter() - t) * 1000
                    seen[res.search_params.split(" (")[0]] = seen.get(res.search_params.split(" (")[0], 0) + 1
                    parts["total"].append(total)
                    for k in ("embed", "ann", "scoring", "rf_query"):
                        parts[k].append(res.timings_ms.get(k, 0.0))
                    parts["rest"].append(total - sum(res.timings_ms.get(k, 0.0) for k in ("embed", "ann", "scoring",
                                                                                          "rf_query")))
                    exact = await rf.search_precision("scifact", q.text, fusion="none", exact=True)
                    overlaps.append(overlap([h.id for h in res.hits], [h.id for h in exact.hits]))
                    if backend == "edge":  # the same search fused with BM25 (one prefetch + RRF query)
                        await rf.search_precision("scifact", q.text + " ", fusion="sparse")  # embedding cached
                        t = time.perf_counter()
                        await rf.search_precision("scifact", q.text, fusion="sparse")
                        fused.append((time.perf_counter() - t) * 1000)
                        t = time.perf_counter()
                        await rf.search_precision("scifact", q.text, fusion="none")
                        plain.append((time.perf_counter() - t) * 1000)
                info = await rf.engine.describe("scifact")
                params = ", ".join(f"{k}: {v}" for k, v in sorted(seen.items(), key=lambda kv: -kv[1]))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        row = {"backend": backend, "points": info.points_count, "indexed": info.indexed_vectors or 0,
               "search_params": params, "queries": len(parts["total"]),
               "overlap_vs_exact": round(float(np.mean(overlaps)), 3),
               **{k: round(statistics.median(v), 2) for k, v in parts.items()}}
        if fused:
            row |= {"cached_plain_ms": round(statistics.median(plain), 2),
                    "cached_fused_ms": round(statistics.median(fused), 2)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def summary(builds: list[dict[str, Any]]) -> dict[str, Any]:
    """One table row from the same row of one or more builds: per-query values pooled over the builds."""
    raw = {k: [v for r in builds for v in r["raw"][k]] for k in ("default_ov", "default_ms", "auto_ov", "auto_ms",
                                                                  "exact_ms")}
    return {"points": builds[0]["points"], "query": builds[0]["query"], "builds": len(builds),
            "queries": len(raw["auto_ov"]),
            "default": {"overlap": round(float(np.mean(raw["default_ov"])), 3), **pct(raw["default_ms"])},
            "rf_mcp": {**spread(raw["auto_ov"]), **pct(raw["auto_ms"]),
                       "hnsw_ef": sorted({e for r in builds for e in r["hnsw_ef"]}),
                       "per_build": [spread(r["raw"]["auto_ov"]) | pct(r["raw"]["auto_ms"]) for r in builds]},
            "exact": pct(raw["exact_ms"])}


def brief(row: dict[str, Any]) -> dict[str, Any]:
    """A summary row without its per-query values (for the progress lines)."""
    m = {k: v for k, v in row["rf_mcp"].items() if k not in ("overlaps", "per_build")}
    return {**row, "rf_mcp": m}


def latency_md(rows: list[dict[str, Any]]) -> str:
    """The table (one row per size and query, pooled over the builds) and each build's own figures."""
    keys = list(dict.fromkeys((r["points"], r["query"]) for r in rows))
    table = [summary([r for r in rows if (r["points"], r["query"]) == k]) for k in keys]
    lines = ["## HNSW vs exact search on the edge engine", "",
             f"Clustered 384-d vectors, top 10, {table[0]['queries'] // table[0]['builds']} queries per build; each size "
             "built (upsert + HNSW) from the same vectors several times, since an HNSW graph differs from build to build, "
             "with other queries and feedback on each build. "
             "*overlap*: share of the exact top-10 ids found, over every query of every build: mean, minimum and 5th "
             "percentile; latencies in ms (p50 / p95). *default*: the engine's RF query at its default HNSW breadth; "
             "*rf-mcp*: the query rf-mcp sends (`rf_mcp.domain.search.rf_query`: its breadth chosen from the "
             "feedback's pull, the RF formula scored on the union of its graph search and the plain neighbourhoods of "
             "the query and of each feedback example); *exact*: no index.", "",
             "| points | query | builds | default overlap | default p50 / p95 | rf-mcp overlap mean / min / p5 | "
             "rf-mcp p50 / p95 | rf-mcp hnsw_ef | exact p50 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        d, m, x = r["default"], r["rf_mcp"], r["exact"]
        breadth = ",".join("exact" if e == 0 else str(e) for e in m["hnsw_ef"])
        lines.append(f"| {r['points']:,} | {r['query']} | {r['builds']} | {d['overlap']} | {d['p50']} / {d['p95']} | "
                     f"{m['overlap']} / {m['min_overlap']} / {m['p5_overlap']} | {m['p50']} / {m['p95']} | {breadth} | "
                     f"{x['p50']} |")
    lines += ["", "Per build, rf-mcp: overlap mean (min), p50 ms:", ""]
    for r in table:
        lines.append(f"- {r['points']:,}, {r['query']}: " + "; ".join(
            f"{b['overlap']} ({b['min_overlap']}), {b['p50']}" for b in r["rf_mcp"]["per_build"]))
    builds = [r for r in rows if r["query"] == "nearest"]
    lines += ["", "Builds: " + "; ".join(
        f"{r['points']:,} points #{r['build'] + 1}: upsert {r['upsert_s']} s, HNSW {r['build_s']} s, reopen "
        f"{r['reopen_s']} s" for r in builds) + "."]
    return "\n".join(lines)


def scifact_md(rows: list[dict[str, Any]]) -> str:
    lines = ["## A whole precision search on SciFact", "",
             "`RFService.search_precision` (fusion none), 5,183 points, int8 MiniLM query embedding, BM25 feedback "
             "calibrated on 100 training queries; medians in ms over the dev queries; *overlap*: RF top-10 vs the "
             "same search with exact=true.", "",
             "| backend | HNSW | search | overlap | total | embed | ANN | scoring | RF query | rest |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['indexed']:,} | {r['search_params']} | {r['overlap_vs_exact']} | "
                     f"{r['total']} | {r['embed']} | {r['ann']} | {r['scoring']} | {r['rf_query']} | {r['rest']} |")
    for r in rows:
        if "cached_fused_ms" in r:
            lines += ["", f"Fused with BM25 (fusion sparse) vs not, {r['backend']}, query embedding cached, medians: "
                          f"{r['cached_fused_ms']} ms vs {r['cached_plain_ms']} ms "
                          f"(+{r['cached_fused_ms'] - r['cached_plain_ms']:.2f} ms)."]
    return "\n".join(lines)


def save(part: str, rows: list[dict[str, Any]]) -> None:
    """Replace one part of latency.json (written as soon as it is measured, like its LATENCY.md section)."""
    previous = json.loads((OUT / "latency.json").read_text()) if (OUT / "latency.json").exists() else {}
    text = json.dumps({**previous, part: rows}, indent=2)
    text = re.sub(r"\[\s+([-0-9.e,\s]+?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text)  # one line each
    (OUT / "latency.json").write_text(text)


async def main(a: argparse.Namespace) -> None:
    syn: list[dict[str, Any]] = []
    for n in [int(s) for s in a.sizes.split(",") if s.strip() and s != "none"]:
        for build in range(a.builds):
            syn += await synthetic(n, a.queries, build)
    if syn:
        save("synthetic", syn)
        write_section("latency", latency_md(syn))
    sf = [] if a.skip_scifact else await scifact(Path(a.shared), a.scifact_queries)
    if sf:
        save("scifact", sf)
        write_section("scifact", scifact_md(sf))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--shared", default="../shared")
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--queries", type=int, default=50, help="queries per synthetic build")
    p.add_argument("--builds", type=int, default=3, help="separate builds of each synthetic size")
    p.add_argument("--scifact-queries", type=int, default=150)
    p.add_argument("--skip-scifact", action="store_true")
    anyio.run(main, p.parse_args())
