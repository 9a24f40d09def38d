"""Which pairing should a search use? The training library fits one context pair per query, a 5-seed search sums
over every ordered pair with a positive score difference (up to 10). Three variants, measured on SciFact dev:

  (a) library weights, every seed sent as feedback (the product before this study);
  (b) the same weights, only the best and the worst seed sent (the one pair the weights were fitted to);
  (c) weights fitted to the formula the search runs (every pair of the top 5: the library's data preparation,
      ranking loss and training loop, with the all-pairs formula), every seed sent.

    python -m benchmarks.pairing --shared ../shared      # ~4 min here; writes benchmarks/PAIRING.md, pairing.json

Every number comes from the product's calibrate / evaluate (public API); paired bootstrap intervals per query.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from benchmarks import scifact
from benchmarks.scifact import COLLECTION, bootstrap

OUT = Path(__file__).parent
VARIANTS = {"a": {"trainer": "library", "pairing": "all"}, "b": {"trainer": "library", "pairing": "extremes"},
            "c": {"trainer": "all-pairs", "pairing": "all"}}
ROWS = ["rf precision", "rf recall", "rf precision+sparse", "rf recall+sparse"]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    data = scifact.load(Path(args.shared), args.mini)
    out: dict[str, Any] = {"command": " ".join(["python -m benchmarks.pairing", *map(shlex.quote, sys.argv[1:])]),
                           "date": datetime.now(UTC).isoformat(timespec="seconds"), "eval_queries": len(data.eval),
                           "models": {}}
    async with scifact.indexed(data) as base:
        for name, scorer in (await scifact.feedback_models(base, data)).items():
            model: dict[str, Any] = {}
            for variant, calibration in VARIANTS.items():
                rf = scifact.with_scorer(base, scorer, calibration=calibration)
                cal = await rf.calibrate(COLLECTION, data.train)
                per_query: dict[str, list[float]] = {}
                means: dict[str, float] = {}
                for fusion in ("none", "sparse"):
                    ev = await rf.evaluate(COLLECTION, data.eval, qrels=data.qrels, fusion=fusion)
                    gt = ev.evaluation.ground_truth
                    assert gt is not None
                    for m in gt.methods:
                        if m.method in ROWS:
                            per_query[m.method] = gt.per_query_ndcg10[m.method]
                            means[m.method] = m.ndcg_at_10
                model[variant] = {"weights": cal.profile.weights.model_dump(), "usable": cal.profile.usable,
                                  "disagreement": cal.profile.signal.disagreement, "ndcg10": means,
                                  "per_query_ndcg10": per_query}
            model["ci"] = {f"({v}) - (a) {row}": bootstrap([x - y for x, y in zip(
                model[v]["per_query_ndcg10"][row], model["a"]["per_query_ndcg10"][row], strict=True)])
                for v in ("b", "c") for row in ROWS}
            out["models"][name] = model
    return out


def markdown(r: dict[str, Any]) -> str:
    lines = ["# Pairing: one context pair or all of them", "", f"Command: `{r['command']}`  ", f"Date: {r['date']}  ",
             f"SciFact dev, {r['eval_queries']} judged queries; nDCG@10. (a) library weights, all seeds; (b) the same "
             "weights, best and worst seed only; (c) weights fitted to the all-pairs formula, all seeds.", ""]
    for name, m in r["models"].items():
        lines += [f"## {name}", "", "| variant | a | b | c | " + " | ".join(ROWS) + " |",
                  "|---|---|---|---|" + "---|" * len(ROWS)]
        for v in VARIANTS:
            w = m[v]["weights"]
            lines.append(f"| ({v}) | {w['a']:.4g} | {w['b']:.4g} | {w['c']:.4g} | "
                         + " | ".join(f"{m[v]['ndcg10'].get(row, float('nan')):.3f}" for row in ROWS) + " |")
        lines += ["", "Paired bootstrap, difference to (a), mean [95% CI]:", ""]
        lines += [f"- {k}: {mean:+.4f} [{lo:+.4f}, {hi:+.4f}]" for k, (mean, lo, hi) in m["ci"].items()]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--shared", default="../shared")
    p.add_argument("--mini", action="store_true")
    p.add_argument("--out", default=str(OUT))
    a = p.parse_args()
    r = anyio.run(run, a)
    out = Path(a.out)
    stem = "pairing-mini" if a.mini else "pairing"
    (out / f"{stem}.json").write_text(json.dumps(r, indent=1))
    (out / ("PAIRING-mini.md" if a.mini else "PAIRING.md")).write_text(markdown(r))
    print(markdown(r))


if __name__ == "__main__":
    main()
