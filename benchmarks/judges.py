"""Judge-quality study — a SIMULATION: how good must a feedback model (an LLM judge) be before Relevance Feedback with
5 grades beats reranking 25, and hybrid search that costs nothing?

    python -m benchmarks.judges --shared ../shared            # 5 judge accuracies on SciFact (~10 min here)
    python -m benchmarks.judges --shared ../shared --mini     # smoke run on scifact-mini

No judge that ranks relevance can be had offline here, so the feedback model is simulated from SciFact's relevance
judgments with a controlled error. Noise model, per (query, document), deterministic (a hash of the seed, the query
and the document id, so the same document gets the same grade in calibration, evaluation and every search):

* the true label is "relevant" when the judgments grade the document above 0 for the query, else "not relevant";
* with probability ``accuracy`` the judge's verdict is the true label, otherwise it is flipped (a flip rate of
  1 - accuracy on relevant and non-relevant documents alike: at accuracy 0.6, 40% of irrelevant documents look
  relevant to it);
* the grade, on an LLM judge's 0-10 scale, is 6 + 4s for a "relevant" verdict and 4s for "not relevant", where
  s = 1 - exp(-bm25 / 10) in [0, 1) is the document's lexical match to the query (the product's BM25 over the
  collection): within a verdict, a judge grades a near miss above off-topic text, and documents with no word of the
  query in common tie.
Why graded: the training library mines its context pair among the top 5 candidates and counts a query as
"disagreeing" only when a candidate below them is graded above all five; a binary judge (10 or 0) can never do
that (0% signal at every accuracy, measured), and random grades within a verdict taught the fit random orders (a < 0).
The lexical part is the same at every accuracy, so the rows move with the verdicts' accuracy alone.

Calibration uses the 100 training queries with the training judgments, evaluation the held-out dev queries with the
dev judgments (never a calibration query), everything through the product's public API (``calibrate``,
``evaluate``), as ``benchmarks/quality.py`` does. Each row's nDCG@10 comes with a 95% bootstrap interval of its mean
over the judged queries; crossing points compare rows by the paired bootstrap interval of their per-query
difference. Writes ``JUDGES.md``, ``judges.json`` and ``judges.png`` beside this file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import shlex
import statistics
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from benchmarks import scifact
from benchmarks.scifact import COLLECTION, TEXT_FIELDS, bootstrap
from rf_mcp import RFError, Scorer, document_text, read_qrels, read_queries

OUT = Path(__file__).parent
ACCURACIES = (0.6, 0.7, 0.8, 0.9, 1.0)
ROWS = ["vanilla", "hybrid", "rerank top-5", "rerank top-25", "rf precision", "rf recall", "rf precision+sparse",
        "rf recall+sparse"]
COMPARISONS = [("rf precision", "rerank top-25"), ("rf precision", "hybrid"), ("rf precision+sparse", "hybrid"),
               ("rf recall", "rerank top-25"), ("rerank top-25", "hybrid"), ("rf precision", "rerank top-5")]


def _unit(*parts: str) -> float:
    """A uniform number in [0, 1) from a hash of ``parts`` (deterministic across runs and processes)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class SimulatedJudge(Scorer):
    """Grades 0-10 from the relevance judgments, right with probability ``accuracy`` (see the module's noise model)."""

    def __init__(self, accuracy: float, judgments: dict[str, dict[str, int]], doc_of_text: dict[str, str],
                 lexical: Scorer, seed: int = 11) -> None:
        self.accuracy = accuracy
        self.judgments = judgments  # query text -> document id -> grade
        self.doc_of_text = doc_of_text
        self.lexical = lexical
        self.seed = str(seed)
        self.identity = f"simulated-judge(accuracy={accuracy:g},seed={seed},scale=0-10,graded-by={lexical.identity})"

    def verdict(self, query: str, text: str) -> bool:
        doc = self.doc_of_text.get(text, text)
        relevant = self.judgments.get(query, {}).get(doc, 0) > 0
        return relevant if _unit(self.seed, "flip", query, doc) < self.accuracy else not relevant

    async def bind(self, collection: str, term_stats: Any, version: int = 0) -> None:
        await self.lexical.bind(collection, term_stats, version)

    async def score(self, query: str, documents: Sequence[str]) -> list[float]:
        match = [1.0 - math.exp(-x / 10.0) for x in await self.lexical.score(query, documents)]
        return [(6.0 if self.verdict(query, d) else 0.0) + 4.0 * s for d, s in zip(documents, match, strict=True)]


def judgments_by_text(shared: Path, data: scifact.SciFact) -> tuple[dict[str, dict[str, int]], dict[str, str]]:
    """Training and evaluation judgments keyed by query text, and each document's text (as scorers read it) -> id."""
    sf = shared / "data" / "scifact"
    texts = {q.id: q.text for q in read_queries(sf / "queries.jsonl")}
    by_text: dict[str, dict[str, int]] = {}
    for path in (sf / "qrels" / "train.tsv", sf / "qrels" / "dev.tsv"):
        for qid, rels in read_qrels(path).items():
            if qid in texts:
                by_text.setdefault(texts[qid], {}).update(rels)
    for q in data.eval:  # the mini set's own judgments
        by_text.setdefault(q.text, {}).update(data.qrels.get(q.id or "", {}))
    docs = [json.loads(line) for line in data.corpus.read_text().splitlines() if line.strip()]
    return by_text, {document_text(d, TEXT_FIELDS): d["_id"] for d in docs}


async def run_level(base: Any, data: scifact.SciFact, judge: SimulatedJudge) -> dict[str, Any]:
    rf = scifact.with_scorer(base, judge)
    cal = await rf.calibrate(COLLECTION, data.train)
    out: dict[str, Any] = {"accuracy": judge.accuracy, "usable": cal.profile.usable, "reasons": cal.profile.reasons,
                           "weights": cal.profile.weights.model_dump(),
                           "disagreement": cal.profile.signal.disagreement, "rows": {}, "verdicts": {}}
    per_query: dict[str, list[float]] = {}
    for fusion in ("none", "sparse"):
        try:
            ev = await rf.evaluate(COLLECTION, data.eval, qrels=data.qrels, fusion=fusion, store=False)
        except RFError as exc:  # an unusable calibration: only the rows that need none would be measurable
            out["verdicts"][fusion] = f"refused: {exc.problem}"
            continue
        gt = ev.evaluation.ground_truth
        assert gt is not None
        out["verdicts"][fusion] = ev.evaluation.verdict
        for m in gt.methods:
            per_query.setdefault(m.method, gt.per_query_ndcg10[m.method])
            out["rows"].setdefault(m.method, {"cost": m.feedback_cost})
    for name, values in per_query.items():
        mean, lo, hi = bootstrap(values)
        out["rows"][name].update({"ndcg_at_10": mean, "ci": [lo, hi]})
    out["differences"] = {f"{a} - {b}": bootstrap([x - y for x, y in zip(per_query[a], per_query[b], strict=True)])
                          for a, b in COMPARISONS if a in per_query and b in per_query}
    out["per_query_ndcg10"] = per_query
    return out


def crossings(levels: list[dict[str, Any]]) -> list[str]:
    """In words: from which simulated accuracy on each comparison's first row beats the second."""
    lines = []
    for a, b in COMPARISONS:
        key = f"{a} - {b}"
        measured = [(lv["accuracy"], lv["differences"][key]) for lv in levels if key in lv.get("differences", {})]
        if not measured:
            continue
        ahead = [acc for acc, (mean, _, _) in measured if mean > 0]
        sure = [acc for acc, (_, lo, _) in measured if lo > 0]
        behind = [acc for acc, (_, _, hi) in measured if hi < 0]
        top = max(acc for acc, _ in measured)
        if sure and all(acc in sure for acc, _ in measured if acc >= min(sure)):
            who = "Only with a perfect judge" if min(sure) == top == 1.0 else \
                f"With a judge right at least {min(sure):.0%} of the time"
            lines.append(f"{who}, {a} beats {b} (paired 95% interval above 0 from there on).")
        elif sure:
            lines.append(f"{a} beats {b} beyond noise at accuracies {', '.join(f'{x:.0%}' for x in sure)} only.")
        elif ahead:
            lines.append(f"{a} is ahead of {b} on average at {', '.join(f'{x:.0%}' for x in ahead)}, never beyond "
                         "the interval's noise.")
        else:
            lines.append(f"{a} never beats {b} at the accuracies simulated.")
        if behind:
            lines[-1] += f" It is worse beyond noise at {', '.join(f'{x:.0%}' for x in behind)}."
    return lines


async def run(args: argparse.Namespace) -> dict[str, Any]:
    shared = Path(args.shared)
    data = scifact.load(shared, args.mini)
    judgments, doc_of_text = judgments_by_text(shared, data)
    result: dict[str, Any] = {
        "command": " ".join(["python -m benchmarks.judges", *map(shlex.quote, sys.argv[1:])]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.system()}, python {platform.python_version()}",
        "mini": args.mini, "train_queries": len(data.train), "eval_queries": len(data.eval), "levels": []}
    async with scifact.indexed(data) as base:
        for accuracy in args.accuracies:
            lexical = scifact.with_scorer(base, base.scorer).adapters.scorer()  # a BM25 scorer of its own
            judge = SimulatedJudge(accuracy, judgments, doc_of_text, lexical, seed=args.seed)
            result["levels"].append(await run_level(base, data, judge))
            print(f"accuracy {accuracy}: done", file=sys.stderr, flush=True)
    result["crossings"] = crossings(result["levels"])
    return result


def markdown(r: dict[str, Any]) -> str:
    lines = ["# Judge-quality study (a SIMULATION, BEIR SciFact)", "",
             f"Command: `{r['command']}`  ", f"Date: {r['date']}  ", f"Machine: {r['machine']}, 2 cores  ",
             f"Training queries: {r['train_queries']} (training judgments); evaluation queries: {r['eval_queries']} "
             "(dev judgments, none used for calibration)  ",
             "The feedback model is **simulated** from the relevance judgments with a controlled error (noise model in "
             "`benchmarks/judges.py`: a verdict right with probability *accuracy*, else flipped; grade 6-10 for "
             "\"relevant\", 0-4 otherwise, ordered within a verdict by BM25 match). No real judge was run.", "",
             "nDCG@10 (95% bootstrap interval of the mean); cost = feedback grades per query. The reranking rows "
             "rerank the dense first pass (the product's `evaluate` has no fused reranking row); *+sparse* rows fuse the "
             "RF query with BM25.", ""]
    levels = r["levels"]
    header = "| row | cost | " + " | ".join(f"accuracy {lv['accuracy']:.0%}" for lv in levels) + " |"
    lines += [header, "|" + "---|" * (len(levels) + 2)]
    for row in ROWS:
        cells, cost = [], ""
        for lv in levels:
            v = lv["rows"].get(row)
            if v is None or "ndcg_at_10" not in v:
                cells.append("-")
                continue
            cost = str(v["cost"])
            cells.append(f"{v['ndcg_at_10']:.3f} [{v['ci'][0]:.3f}, {v['ci'][1]:.3f}]")
        lines.append(f"| {row} | {cost} | " + " | ".join(cells) + " |")
    lines += ["", "Calibration per accuracy: " + "; ".join(
        f"{lv['accuracy']:.0%}: {'usable' if lv['usable'] else 'UNUSABLE'} (disagreement {lv['disagreement']:.0%}, "
        f"verdicts {lv['verdicts']})" for lv in levels) + ".", "", "## Crossing points (simulation)", ""]
    lines += [f"- {c}" for c in r["crossings"]]
    lines += ["", "Paired differences of nDCG@10 (mean [95% interval]):", "",
              "| comparison | " + " | ".join(f"{lv['accuracy']:.0%}" for lv in levels) + " |",
              "|" + "---|" * (len(levels) + 1)]
    for a, b in COMPARISONS:
        key = f"{a} - {b}"
        cells = [f"{d[0]:+.3f} [{d[1]:+.3f}, {d[2]:+.3f}]" if (d := lv["differences"].get(key)) else "-"
                 for lv in levels]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(r: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(8, 5))
    for row in ROWS:
        pts = [(lv["accuracy"], lv["rows"][row]) for lv in r["levels"] if "ndcg_at_10" in lv["rows"].get(row, {})]
        if not pts:
            continue
        xs = [p[0] for p in pts]
        ax.plot(xs, [p[1]["ndcg_at_10"] for p in pts], marker="o", label=f"{row} ({pts[0][1]['cost']} grades)")
        ax.fill_between(xs, [p[1]["ci"][0] for p in pts], [p[1]["ci"][1] for p in pts], alpha=0.12)
    ax.set_xlabel("simulated judge accuracy")
    ax.set_ylabel("nDCG@10 (SciFact dev)")
    ax.set_title("Judge-quality study (SIMULATION): nDCG@10 against judge accuracy, 95% bootstrap bands")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def write(r: dict[str, Any], out: Path) -> None:
    stem = "judges-mini" if r["mini"] else "judges"
    out.mkdir(parents=True, exist_ok=True)
    slim = {**r, "levels": [{k: v for k, v in lv.items() if k != "per_query_ndcg10"} | {
        "per_query_ndcg10": {k: [round(x, 4) for x in v] for k, v in lv["per_query_ndcg10"].items()}}
        for lv in r["levels"]]}
    (out / f"{stem}.json").write_text(json.dumps(slim, indent=1))
    (out / ("JUDGES-mini.md" if r["mini"] else "JUDGES.md")).write_text(markdown(r))
    plot(r, out / f"{stem}.png")


def rewrite(out: Path) -> None:
    """JUDGES.md and the plot again from judges.json (e.g. after a change of wording), without re-running."""
    r = json.loads((out / "judges.json").read_text())
    r["crossings"] = crossings(r["levels"])
    write(r, out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shared", default="../shared")
    p.add_argument("--mini", action="store_true", help="smoke run on scifact-mini")
    p.add_argument("--accuracies", type=float, nargs="+", default=list(ACCURACIES))
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--out", default=str(OUT))
    a = p.parse_args()
    r = anyio.run(run, a)
    write(r, Path(a.out))
    print(markdown(r))
    print(f"mean per-query rows: {statistics.fmean(len(lv['rows']) for lv in r['levels']):.1f}", file=sys.stderr)


if __name__ == "__main__":
    main()
