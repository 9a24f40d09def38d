"""Why RF precision gains what it gains: RF precision nDCG@10 on the evaluation queries for several calibrations.

    python -m benchmarks.quality_sweep --shared ../shared

BM25 feedback; varies the training-query count, limit, context_limit, confidence_margin and the number of seeds,
and also scales the calibrated c (feedback strength) to show how far the learned weights are from the best ones.
"""

from __future__ import annotations

import argparse
import json
import statistics

import anyio

from benchmarks.quality import setup
from rf_mcp.adapters.scorers.bm25 import BM25Scorer
from rf_mcp.domain import search
from rf_mcp.domain.metrics import all_metrics
from rf_mcp.domain.models import ProfileRef, TrainSettings, Weights
from rf_mcp.domain.service import RFService


async def main(args: argparse.Namespace) -> None:
    env = await setup(args)
    data, cfg, embedder, engine = env["data"], env["cfg"], env["embedder"], env["engine"]
    rf = RFService(cfg, engine=engine, embedder=embedder, scorer=BM25Scorer())
    target = await rf.target("scifact")

    async def ndcg(weights: Weights, seeds: int = 5) -> float:
        ref = ProfileRef(fingerprint="sweep", weights=weights, created_at="-")
        vals = []
        for q in data["eval"]:
            try:
                res = await search.precision(target, q.text, weights, ref, seeds=seeds, limit=100)
                ranked = [h.doc_id for h in res.hits]
            except Exception:  # refused (no contrast): vanilla
                pts = await engine.nearest("scifact", "dense", embedder.embed_query_sync(q.text), 100)
                ranked = [p.payload["doc_id"] for p in pts]
            vals.append(all_metrics(ranked, data["qrels"][q.id])["ndcg_at_10"])
        return round(statistics.fmean(vals), 4)

    rows = []
    configs = [("default (100 queries, limit 50, context 5)", 100, TrainSettings()),
               ("50 queries", 50, TrainSettings()),
               ("limit 25", 100, TrainSettings(limit=25)),
               ("limit 100", 100, TrainSettings(limit=100)),
               ("context_limit 3", 100, TrainSettings(context_limit=3)),
               ("confidence_margin 1.0", 100, TrainSettings(confidence_margin=1.0))]
    for label, n, settings in configs:
        cal = await rf.calibrate("scifact", data["train"][:n], settings)
        w = cal.profile.weights
        rows.append({"calibration": label, "a": round(w.a, 4), "b": round(w.b, 4), "c": round(w.c, 5),
                     "disagreement": cal.profile.signal.disagreement, "ndcg10_rf_precision": await ndcg(w)})
        print(json.dumps(rows[-1]), flush=True)
    cal = await rf.calibrate("scifact", data["train"], TrainSettings())
    w = cal.profile.weights
    for scale in (0.0, 0.5, 2.0, 4.0):
        rows.append({"calibration": f"default, c x {scale}", "ndcg10_rf_precision":
                     await ndcg(Weights(a=w.a, b=w.b, c=w.c * scale))})
        print(json.dumps(rows[-1]), flush=True)
    for seeds in (3, 10):
        rows.append({"calibration": f"default, {seeds} seeds", "ndcg10_rf_precision": await ndcg(w, seeds)})
        print(json.dumps(rows[-1]), flush=True)
    await env["base"].close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--shared", default="../shared")
    p.add_argument("--mini", action="store_true")
    p.add_argument("--queries")
    p.add_argument("--qrels")
    anyio.run(main, p.parse_args())
