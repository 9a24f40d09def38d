"""Ground-truth ranking metrics (BEIR conventions: graded nDCG, binary recall)."""

from __future__ import annotations

import math
from collections.abc import Sequence


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
