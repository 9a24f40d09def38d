"""Ground-truth ranking metrics (BEIR conventions: graded nDCG, binary recall)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def ndcg_at(ranked: Sequence[str], rels: dict[str, int], k: int) -> float:
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]) if rels.get(d, 0) > 0)
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: Sequence[str], rels: dict[str, int], k: int) -> float:
    relevant = {d for d, r in rels.items() if r > 0}
    if not relevant:
        return 0.0
    return len(relevant & set(ranked[:k])) / len(relevant)


def all_metrics(ranked: Sequence[str], rels: dict[str, int]) -> dict[str, float]:
    """nDCG@1/3/10 and recall@10/100 of a ranking (a document listed twice counts once, where it first appears)."""
    ranked = list(dict.fromkeys(ranked))
    return {"ndcg_at_1": ndcg_at(ranked, rels, 1), "ndcg_at_3": ndcg_at(ranked, rels, 3),
            "ndcg_at_10": ndcg_at(ranked, rels, 10), "recall_at_10": recall_at(ranked, rels, 10),
            "recall_at_100": recall_at(ranked, rels, 100)}


CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 20240520  # fixed: the same judgments always give the same interval


def paired_interval(a: Sequence[float], b: Sequence[float], *, confidence: float = CONFIDENCE,
                    resamples: int = RESAMPLES, seed: int = SEED) -> tuple[float, float, float]:
    """Mean of ``a[i] - b[i]`` over paired per-query values, and its percentile bootstrap interval (the queries are
    resampled with replacement ``resamples`` times; numpy, a fixed seed)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if d.ndim != 1 or len(d) == 0:
        raise ValueError("paired_interval needs two equally long, non-empty sequences")
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    step = max(1, 200_000 // len(d))  # at most ~200k indices at once
    for start in range(0, resamples, step):
        n = min(step, resamples - start)
        means[start:start + n] = d[rng.integers(0, len(d), size=(n, len(d)))].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(d.mean()), float(low), float(high)
