"""The judge-quality study's simulated judge (benchmarks/judges.py) follows its stated noise model."""

from __future__ import annotations

from collections.abc import Sequence

import anyio

from benchmarks.judges import SimulatedJudge
from rf_mcp import Scorer


class NoMatch(Scorer):
    identity = "no-match"

    async def score(self, query: str, documents: Sequence[str]) -> list[float]:
        return [0.0] * len(documents)


def grades(accuracy: float) -> tuple[list[float], list[bool]]:
    docs = {f"text {i}": f"d{i}" for i in range(4000)}
    judgments = {"q": {f"d{i}": 1 for i in range(0, 4000, 4)}}  # every fourth document is relevant
    judge = SimulatedJudge(accuracy, judgments, docs, NoMatch())
    texts = list(docs)
    return anyio.run(judge.score, "q", texts), [int(docs[t][1:]) % 4 == 0 for t in texts]


def test_a_perfect_judge_grades_every_relevant_document_above_every_other():
    g, relevant = grades(1.0)
    assert min(x for x, r in zip(g, relevant, strict=True) if r) >= 6 > 4 > max(
        x for x, r in zip(g, relevant, strict=True) if not r)


def test_verdicts_are_flipped_at_the_stated_rate_on_relevant_and_irrelevant_documents_alike():
    g, relevant = grades(0.7)
    wrong_rel = sum(1 for x, r in zip(g, relevant, strict=True) if r and x < 6) / sum(relevant)
    wrong_irr = sum(1 for x, r in zip(g, relevant, strict=True) if not r and x >= 6) / (len(relevant) - sum(relevant))
    assert abs(wrong_rel - 0.3) < 0.06 and abs(wrong_irr - 0.3) < 0.03  # 1,000 and 3,000 draws
    assert grades(0.7)[0] == g  # deterministic: the same document gets the same grade every time
