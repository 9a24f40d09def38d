"""Quality benchmark: RF vs vanilla, reranking and hybrid search at their feedback cost, on BEIR SciFact.

    python -m benchmarks.quality --shared ../shared          # full run (~5 min here), writes benchmarks/RESULTS.md
    python -m benchmarks.quality --shared ../shared --mini   # smoke run on scifact-mini (seconds)

Every row runs through the product's public API (``RFService``): ``calibrate`` on the training queries, then
``evaluate`` with the relevance judgments for each fusion (its ground-truth rows: vanilla, hybrid, the feedback
model as a reranker of the top 5 and 25, RF precision and recall, alone and fused with BM25), and
``search_precision(vanilla=True)`` for the check that a=1, b=0, c=0 through RF equals vanilla search. Per-query
nDCG@10 of every row is saved in the JSON (for paired tests by others); bootstrap intervals compare rows here.
Feedback models and data: see :mod:`benchmarks.scifact`. Partial results are written after each feedback model.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from benchmarks import scifact
from benchmarks.scifact import COLLECTION, bootstrap
from rf_mcp import ranking_metrics

OUT = Path(__file__).parent
METRICS = ["ndcg_at_1", "ndcg_at_3", "ndcg_at_10", "recall_at_10", "recall_at_100"]
VANILLA_RF = "vanilla through RF (a=1,b=0,c=0)"
COMPARISONS = [("rf precision", "vanilla"), ("rf precision", "rerank top-25"), ("rf precision", "hybrid"),
               ("rf recall", "rerank top-25"), ("rf precision+sparse", "hybrid"), ("rf recall+sparse", "hybrid"),
               ("rf precision+sparse", "rf precision")]


async def run_model(rf: Any, name: str, data: scifact.SciFact) -> dict[str, Any]:
    t0 = time.perf_counter()
    cal = await rf.calibrate(COLLECTION, data.train)
    cal_s = time.perf_counter() - t0
    profile = cal.profile
    rows: dict[str, dict[str, Any]] = {}
    per_query: dict[str, list[float]] = {}
    verdicts, advice, library = {}, {}, {}
    for fusion in ("none", "sparse"):
        if not profile.usable:
            break
        t1 = time.perf_counter()
        ev = await rf.evaluate(COLLECTION, data.eval, qrels=data.qrels, fusion=fusion)
        gt = ev.evaluation.ground_truth
        assert gt is not None
        verdicts[fusion], advice[fusion] = ev.evaluation.verdict, gt.advice
        library[fusion] = {k: getattr(ev.evaluation, k) for k in (
            "queries", "queries_evaluated", "rf_above_threshold", "vanilla_above_threshold", "relative_gain_pct",
            "dcg_rf_wins_pct", "dcg_vanilla_wins_pct", "dcg_ties_pct")}
        for m in gt.methods:
            rows[m.method] = {"cost": m.feedback_cost, **{k: getattr(m, k) for k in METRICS}}
            per_query[m.method] = gt.per_query_ndcg10[m.method]
        rows.setdefault("_seconds", {})[f"evaluate fusion={fusion}"] = round(time.perf_counter() - t1, 1)
        query_ids = gt.query_ids
    timings = rows.pop("_seconds", {})
    # a=1, b=0, c=0 through the RF API, on every judged query, against the evaluation's plain vector search
    same = None
    if profile.usable:
        judged = {q.id: q for q in data.eval}
        through = []
        for qid in query_ids:
            res = await rf.search_precision(COLLECTION, judged[qid].text, vanilla=True, fusion="none", limit=100)
            through.append(round(ranking_metrics([h.doc_id or str(h.id) for h in res.hits], data.qrels[qid])["ndcg_at_10"], 6))
        per_query[VANILLA_RF] = through
        same = through == per_query["vanilla"]
        rows[VANILLA_RF] = {"cost": 0, "ndcg_at_10": round(statistics.fmean(through), 4)}
    ci = {f"{a} - {b}": bootstrap([x - y for x, y in zip(per_query[a], per_query[b], strict=True)])
          for a, b in COMPARISONS if a in per_query and b in per_query}
    return {"identity": rf.scorer.identity, "weights": profile.weights.model_dump(), "usable": profile.usable,
            "reasons": profile.reasons, "signal": profile.signal.model_dump(), "trainer": profile.trainer,
            "pairing": profile.pairing, "calibration_seconds": round(cal_s, 1), "evaluate_seconds": timings,
            "verdicts": verdicts, "advice": advice, "library": library, "table": rows, "ci_ndcg10": ci,
            "per_query_ndcg10": per_query, "query_ids": query_ids if profile.usable else [],
            "vanilla_through_rf_equals_vanilla": same}


async def run(args: argparse.Namespace, out: Path | None = None) -> dict[str, Any]:
    data = scifact.load(Path(args.shared), args.mini, args.queries, args.qrels)
    results: dict[str, Any] = {
        "command": " ".join(["python -m benchmarks.quality", *map(shlex.quote, sys.argv[1:])]) if out else None,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.system()}, python {platform.python_version()}",
        "mini": args.mini, "eval_queries": len(data.eval), "train_queries": len(data.train), "feedback_models": {}}
    if data.notes:
        results["notes"] = list(data.notes)
    async with scifact.indexed(data) as base:
        models = await scifact.feedback_models(base, data)
        missing = [q.text for q in data.eval if q.text not in data.mpnet_queries]
        if missing:  # the cached dense feedback model has no encoder here: only the queries it has vectors for
            for name in ("mpnet", "fused"):
                models.pop(name, None)
            results.setdefault("notes", []).append(
                f"mpnet and fused feedback skipped: {len(missing)} evaluation queries have no cached mpnet vector "
                "(the mpnet model itself is not available offline); BM25 rows only.")
        for name, scorer in models.items():
            rf = scifact.with_scorer(base, scorer)
            results["feedback_models"][name] = await run_model(rf, name, data)
            results["embedded_queries"] = len(base.retriever.embedded)  # type: ignore[attr-defined]
            if out is not None:  # partial results, as each feedback model finishes
                write(results, out)
    return results


def markdown(r: dict[str, Any]) -> str:
    lines = [f"# Quality benchmark ({'scifact-mini smoke run' if r['mini'] else 'BEIR SciFact'})", "",
             f"Command: `{r['command']}`  ", f"Date: {r['date']}  ", f"Machine: {r['machine']}, 2 cores  ",
             f"Training queries: {r['train_queries']}; evaluation queries (judged): {r['eval_queries']}; queries "
             f"embedded with the model (not in the vector cache): {r.get('embedded_queries', 0)}  ",
             "Every row comes from the product's `calibrate` / `evaluate` / `search_precision`; per-query nDCG@10 of "
             "every row is in the JSON. Latency: [LATENCY.md](LATENCY.md).", ""]
    lines += [f"Note: {n}" for n in r.get("notes", [])] + ([""] if r.get("notes") else [])
    for name, fm in r["feedback_models"].items():
        w = fm["weights"]
        lines += [f"## Feedback model: {name} (`{fm['identity']}`)", "",
                  f"Calibration ({fm['trainer']}, pairing {fm['pairing']}): a={w['a']:.4g} b={w['b']:.4g} "
                  f"c={w['c']:.4g}, disagreement {fm['signal']['disagreement']:.1%}, usable={fm['usable']} "
                  f"({fm['calibration_seconds']} s)." + (f" Reasons: {'; '.join(fm['reasons'])}." if fm["reasons"] else ""),
                  ""]
        for fusion, v in fm["verdicts"].items():
            lines.append(f"- evaluation gate, fusion={fusion}: **{v}**. Advice: {fm['advice'][fusion]}")
        if fm["table"]:
            lines += ["", "| method | feedback calls/query | nDCG@1 | nDCG@3 | nDCG@10 | R@10 | R@100 |",
                      "|---|---|---|---|---|---|---|"]
            for m, row in fm["table"].items():
                lines.append(f"| {m} | {row['cost']} | " + " | ".join(f"{row[k]:.3f}" if k in row else "" for k in METRICS)
                             + " |")
            lines += ["", "Paired bootstrap (10,000 resamples), nDCG@10 difference, mean [95% CI]:", ""]
            for k, (m, lo, hi) in fm["ci_ndcg10"].items():
                lines.append(f"- {k}: {m:+.4f} [{lo:+.4f}, {hi:+.4f}]")
            lib = fm["library"].get("none")
            if lib:
                lines += ["", f"Library metrics (agreement with the feedback model, not relevance), {lib['queries_evaluated']}/"
                          f"{lib['queries']} queries: RF {lib['rf_above_threshold']} vs vanilla "
                          f"{lib['vanilla_above_threshold']} above threshold, DCG wins RF {lib['dcg_rf_wins_pct']}% / "
                          f"vanilla {lib['dcg_vanilla_wins_pct']}%."]
            lines.append(f"Vanilla through RF equals vanilla on every query: {fm.get('vanilla_through_rf_equals_vanilla')}.")
        lines.append("")
    return "\n".join(lines)


def write(r: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stem = "quality-mini" if r["mini"] else "quality"
    (out / f"{stem}.json").write_text(json.dumps(r, indent=1))
    (out / ("RESULTS-mini.md" if r["mini"] else "RESULTS.md")).write_text(markdown(r))


def plot(r: dict[str, Any], path: Path) -> bool:
    """nDCG@10 against feedback calls per query: colour = method, marker = feedback model; zero-cost rows as lines."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(8.5, 5.2))
    marks = {"bm25": "o", "mpnet": "s", "fused": "^"}
    tables = [fm["table"] for fm in r["feedback_models"].values() if fm["table"]]
    if not tables:
        return False
    methods = list(tables[0])
    colours = dict(zip(methods, plt.get_cmap("tab10").colors, strict=False))
    for m, style in (("vanilla", ":"), ("hybrid", "--")):
        if m in tables[0]:
            ax.axhline(tables[0][m]["ndcg_at_10"], color=colours[m], linestyle=style, label=f"{m} (0 calls)")
    for name, fm in r["feedback_models"].items():
        for m, row in fm["table"].items():
            if row["cost"]:
                jitter = {"bm25": -0.4, "mpnet": 0.0, "fused": 0.4}.get(name, 0.0)
                ax.scatter(row["cost"] + jitter, row["ndcg_at_10"], marker=marks.get(name, "o"), color=colours[m], s=60)
    for m in methods:
        if tables[0][m]["cost"]:
            ax.scatter([], [], color=colours[m], marker="o", label=m)
    for name, mk in marks.items():
        ax.scatter([], [], color="grey", marker=mk, label=f"feedback: {name}")
    ax.set_xlabel("feedback-model calls per query")
    ax.set_ylabel("nDCG@10")
    ax.set_title(f"SciFact ({r['eval_queries']} judged queries): quality vs feedback cost")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--shared", default="../shared")
    p.add_argument("--mini", action="store_true", help="smoke run on scifact-mini")
    p.add_argument("--queries", help="queries JSONL (default: scifact/queries.jsonl)")
    p.add_argument("--qrels", help="relevance judgments TSV (default: scifact/qrels/dev.tsv)")
    p.add_argument("--out", default=str(OUT), help="folder for RESULTS.md / quality.json / quality.png")
    a = p.parse_args()
    out = Path(a.out)
    r = anyio.run(run, a, out)
    write(r, out)
    plot(r, out / ("quality-mini.png" if a.mini else "quality.png"))
    print(markdown(r))


if __name__ == "__main__":
    main()
