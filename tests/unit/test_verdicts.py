"""Verdicts carry their evidence (judged queries, paired bootstrap intervals, date); a verdict on fewer judged queries
does not replace a stored one unless asked; searches follow the stored verdict; without a usable calibration, judged
queries measure the rows that need none and nothing is stored; the advice recommends a paid mode only beyond the noise.

On the in-memory doubles: judgments for the synthetic corpus come from its documents' topics (tests.doubles.judged).
"""

from __future__ import annotations

import copy
import math

import pytest

from rf_mcp.domain import evaluation, search
from rf_mcp.domain.models import Difference, Evaluation, GroundTruth, MethodMetrics
from rf_mcp.domain.profiles import check_profile
from rf_mcp.domain.service import RFService
from rf_mcp.errors import GuardrailError
from tests import doubles

pytestmark = pytest.mark.anyio
Q = "tau protein in the brain cortex"


async def search_follows(rf: RFService, verdict: str) -> None:
    """A search with the configured fusion does what the stored verdict says: refuse when failed, warn when
    inconclusive or unverified, serve quietly when passed."""
    if verdict == "failed":
        with pytest.raises(GuardrailError, match="failed its ground-truth evaluation"):
            await rf.search_precision("docs", Q)
        return
    warnings = " ".join((await rf.search_precision("docs", Q)).warnings)
    assert ("inconclusive" in warnings) == (verdict == "inconclusive"), warnings
    assert ("unverified" in warnings) == (verdict == "unverified"), warnings


async def stored(rf: RFService) -> Evaluation:
    target = await rf.target("docs")
    profile = await rf.profiles.get("docs", target.parts.fingerprint)
    assert profile is not None
    ev = profile.evaluation(target.fusion)
    assert ev is not None
    return ev


async def test_a_verdict_on_fewer_judged_queries_stands_aside_unless_replace(calibrated):
    qs, qrels = doubles.judged(60)
    first = await calibrated.evaluate("docs", qs, qrels=qrels)
    assert first.stored and first.evaluation is not None
    gt = first.evaluation.ground_truth
    assert gt is not None and gt.queries == 60 and first.evaluation.evaluated_at
    assert [(d.method.split()[0], d.against) for d in gt.differences] == [
        ("rerank", gt.first_pass), ("rf", gt.baseline), ("rf", gt.baseline)]
    for d in gt.differences:  # each difference is the mean of the per-query differences, inside its interval
        mean = sum(a - b for a, b in zip(gt.per_query_ndcg10[d.method], gt.per_query_ndcg10[d.against],
                                         strict=True)) / 60
        assert d.mean == pytest.approx(mean, abs=1e-5) and d.low <= d.mean <= d.high and d.resamples >= 1000
    v60 = first.evaluation.verdict
    assert (await stored(calibrated)).model_dump() == first.evaluation.model_dump()
    await search_follows(calibrated, v60)
    summary = (await calibrated.list_profiles("docs"))[0]
    assert [(v.verdict, v.judged_queries, v.differences) for v in summary.verdicts] == [(v60, 60, gt.differences)]

    few, few_qrels = doubles.judged(5, seed=12, prefix="k")
    second = await calibrated.evaluate("docs", few, qrels=few_qrels)
    assert not second.stored and "rests on 60 judged queries" in second.stored_reason
    assert "stands" in second.message and "replace=true" in second.message
    assert (await stored(calibrated)).model_dump() == first.evaluation.model_dump()
    await search_follows(calibrated, v60)
    unjudged = await calibrated.evaluate("docs", [{"id": q["id"], "text": q["text"]} for q in few])
    assert not unjudged.stored and unjudged.evaluation is not None and unjudged.evaluation.verdict == "unverified"
    await search_follows(calibrated, v60)  # an evaluation without judgments cannot lift a judged verdict

    third = await calibrated.evaluate("docs", few, qrels=few_qrels, replace=True)
    assert third.stored and "replace=true" in third.stored_reason and third.evaluation is not None
    assert third.evaluation.verdict == "unverified"  # 5 judged queries are too few for a verdict
    assert (await stored(calibrated)).judged_queries() == 5
    await search_follows(calibrated, "unverified")
    again = await calibrated.evaluate("docs", qs, qrels=qrels)  # at least as many judged queries: stored
    assert again.stored and (await stored(calibrated)).judged_queries() == 60


def _evaluation(verdict: str, judged: int, reasons: list[str]) -> Evaluation:
    d = Difference(method="rerank top-25", against="vanilla", mean=0.01, low=-0.02, high=0.04, resamples=2000)
    gt = GroundTruth(queries=judged, first_pass="vanilla", baseline="hybrid", methods=[], reranker_gain_ndcg10=0.01,
                     rf_precision_gain_ndcg10=0.0, rf_recall_gain_ndcg10=0.0, best_method="vanilla", advice="-",
                     differences=[d])
    return Evaluation(fusion="sparse", at_n=10, queries=judged, queries_evaluated=judged, rf_above_threshold=1,
                      vanilla_above_threshold=1, relative_gain_pct=0, dcg_rf_wins_pct=50, dcg_vanilla_wins_pct=50,
                      dcg_ties_pct=0, feedback_scores_used=1, verdict=verdict, reasons=reasons,  # type: ignore[arg-type]
                      ground_truth=gt, evaluated_at="2026-01-01T00:00:00+00:00")


async def test_searches_follow_each_stored_verdict(calibrated):
    """failed refuses; a later verdict on fewer queries leaves the refusal in place; replace lifts it; inconclusive is
    served with a warning naming its query count."""
    fp = (await calibrated.target("docs")).parts.fingerprint
    store = calibrated.profiles
    assert (await store.set_evaluation("docs", fp, _evaluation("failed", 40, ["test: reranker worse"])))[0]
    await search_follows(calibrated, "failed")
    ok, why = await store.set_evaluation("docs", fp, _evaluation("passed", 20, []))
    assert not ok and "failed verdict" in why and "40 judged queries" in why
    await search_follows(calibrated, "failed")
    assert (await store.set_evaluation("docs", fp, _evaluation("inconclusive", 20, ["test: spans"]), replace=True))[0]
    await search_follows(calibrated, "inconclusive")
    res = await calibrated.search_precision("docs", Q)
    assert any("inconclusive on 20 judged queries" in w for w in res.warnings)
    summary = (await calibrated.list_profiles("docs"))[0]
    assert summary.status == "usable" and summary.verdicts[0].verdict == "inconclusive"
    assert summary.verdicts[0].differences[0].low == -0.02


async def test_a_schema_3_profile_still_reads_and_is_written_back_as_4(calibrated):
    fp = (await calibrated.target("docs")).parts.fingerprint
    key = f"rf_mcp:{fp}"
    meta = await calibrated.engine.get_metadata("docs")
    old = copy.deepcopy(meta[key]["current"])
    old["schema_version"] = 3
    legacy = _evaluation("failed", 40, ["test: reranker worse"]).model_dump(mode="json")
    del legacy["evaluated_at"], legacy["ground_truth"]["differences"]  # what schema 3 stored
    old["evaluations"] = {"sparse": legacy}
    await calibrated.engine.set_metadata("docs", {key: {"current": old, "previous": None}})
    summary = (await calibrated.list_profiles("docs"))[0]
    assert summary.status == "failed-evaluation" and summary.verdicts[0].judged_queries == 40
    await search_follows(calibrated, "failed")
    ok, _ = await calibrated.profiles.set_evaluation("docs", fp, _evaluation("passed", 40, []))
    assert ok and (await calibrated.engine.get_metadata("docs"))[key]["current"]["schema_version"] == 4
    with pytest.raises(ValueError, match="schema 3, which has no inconclusive"):
        check_profile({**old, "evaluations": {"sparse": {**legacy, "verdict": "inconclusive"}}}, "docs", key)


def _ndcg10(ranked: list[str], relevant: set[str]) -> float:
    """Binary nDCG@10, written out here (not the product's metric)."""
    seen: list[str] = []
    for d in ranked:
        if d not in seen:
            seen.append(d)
    dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(seen[:10]) if d in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(10, len(relevant))))
    return dcg / ideal


async def test_baselines_on_an_uncalibrated_collection_match_an_independent_ndcg_and_store_nothing(indexed):
    qs, qrels = doubles.judged(24)
    before = copy.deepcopy(await indexed.engine.get_metadata("docs"))
    report = await indexed.evaluate("docs", qs, qrels=qrels)
    assert report.evaluation is None and not report.stored and report.fingerprint == "none"
    assert "no calibration" in report.message and "nothing was stored" in report.message
    assert await indexed.engine.get_metadata("docs") == before
    base = report.baselines
    assert base is not None and base.queries == 24
    rows = {m.method: m.ndcg_at_10 for m in base.methods}
    assert list(rows) == ["vanilla", "hybrid", "rerank top-5", "rerank top-25"]

    target = await indexed.target("docs")
    expected: dict[str, list[float]] = {m: [] for m in rows}
    for q in qs:
        relevant = set(qrels[q["id"]])
        qv = await target.retriever.embed_query(q["text"])
        dense = await search.nearest(target, qv, 100)
        ids = [p.payload["doc_id"] for p in dense]
        hybrid = [p.payload["doc_id"] for p in await search.hybrid(target, q["text"], qv, 100)]
        scores = await target.score(q["text"], target.texts(dense[:25]))
        expected["vanilla"].append(_ndcg10(ids, relevant))
        expected["hybrid"].append(_ndcg10(hybrid, relevant))
        for k in (5, 25):
            order = sorted(range(k), key=lambda i: -scores[i])
            expected[f"rerank top-{k}"].append(_ndcg10([ids[i] for i in order] + ids[k:], relevant))
    for method, values in expected.items():
        assert rows[method] == pytest.approx(sum(values) / len(values), abs=1e-4), method
        assert base.per_query_ndcg10[method] == pytest.approx(values, abs=1e-6), method
    gate = base.differences[-1]
    assert (gate.method, gate.against) == ("rerank top-25", "vanilla")
    assert gate.mean == pytest.approx(rows["rerank top-25"] - rows["vanilla"], abs=2e-4)
    assert base.worth_calibrating == (gate.low > 0)
    assert ("worth trying" in report.message) and base.feedback_scores_used == 24 * 25


async def test_without_judgments_an_uncalibrated_collection_is_still_refused(indexed):
    qs, _ = doubles.judged(12)
    with pytest.raises(GuardrailError, match="no calibration") as err:
        await indexed.evaluate("docs", qs)
    assert "qrels" in str(err.value.fix)


def _rows(values: dict[str, list[float]]) -> list[MethodMetrics]:
    cost = {"vanilla": 0, "hybrid": 0, "rerank top-5": 5, "rf recall+sparse": 25}
    return [MethodMetrics(method=m, feedback_cost=cost[m], ndcg_at_1=0, ndcg_at_3=0,
                          ndcg_at_10=round(sum(v) / len(v), 4), recall_at_10=0, recall_at_100=0)
            for m, v in values.items()]


def test_advice_recommends_a_paid_mode_only_beyond_the_noise():
    n = 40
    free = [0.5 + 0.3 * ((i * 7) % 5 - 2) / 2 for i in range(n)]
    noisy = [x + (0.2 if i % 2 else -0.18) for i, x in enumerate(free)]  # +0.01 on average, swinging per query
    steady = [x + 0.05 for x in free]
    per_query = {"vanilla": [x - 0.1 for x in free], "hybrid": free, "rerank top-5": noisy, "rf recall+sparse": noisy}
    text = evaluation.advice(_rows(per_query), per_query, fused=True)
    assert text.startswith("hybrid alone is as good here") and "vanilla=true, fusion=sparse" in text
    per_query["rf recall+sparse"] = steady
    text = evaluation.advice(_rows(per_query), per_query, fused=True)
    assert text.startswith("rf recall+sparse beats hybrid beyond the noise") and "rf_search_recall" in text
    per_query["rerank top-5"] = steady  # as good and cheaper: the cheaper one
    assert evaluation.advice(_rows(per_query), per_query, fused=True).startswith("the feedback model as a plain reranker")
