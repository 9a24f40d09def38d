"""Evaluation of a calibrated formula on held-out queries.

Two views, reported side by side:
* the library's ``Evaluator`` (counts above the feedback model's threshold, DCG win rates): these
  measure agreement with the feedback model, not relevance;
* ground truth, when relevance judgments are given: nDCG@1/3/10 and recall@10/100 of vanilla
  search, the feedback model as a plain reranker, RF precision and RF recall. With judgments, this
  is the gate: a profile whose feedback model does not beat vanilla as a reranker, or whose RF
  patterns do not beat vanilla, is marked failed and searches refuse it.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Literal

from rf_mcp.domain import search
from rf_mcp.domain.calibration import query_hash, training_job
from rf_mcp.domain.context import Meter, Target
from rf_mcp.domain.datasets import Query
from rf_mcp.domain.metrics import all_metrics
from rf_mcp.domain.models import (
    CalibrationProfile,
    Evaluation,
    EvaluationReport,
    GroundTruth,
    MethodMetrics,
    ProfileRef,
)
from rf_mcp.domain.payload import doc_id_of
from rf_mcp.domain.profiles import ProfileStore
from rf_mcp.errors import GuardrailError, InputError
from rf_mcp.ports import Point, Progress, Trainer

MIN_JUDGED_QUERIES = 10
DEPTH = 100


def held_out(profile: CalibrationProfile, queries: Sequence[Query], warnings: list[str]) -> list[Query]:
    trained = set(profile.query_hashes)
    seen: set[str] = set()
    out = []
    for q in queries:
        h = query_hash(q.text)
        if h in trained or h in seen:
            continue
        seen.add(h)
        out.append(q)
    dropped = len(queries) - len(out)
    if dropped:
        warnings.append(f"{dropped} evaluation queries were training queries or repeats and were left out.")
    if not out:
        raise InputError("No evaluation query is left once the training queries are removed.",
                         fix="Evaluate on queries kept apart from the calibration queries.")
    return out


def doc_key(target: Target, point: Point) -> str:
    """The id a relevance judgment names: the document's own id, else the point id."""
    return doc_id_of(point.payload, target.id_field) or str(point.id)


def rerank_top(ranked: list[str], scores: list[float], k: int) -> list[str]:
    """The feedback model as a plain reranker: its order for the top k (``scores[:k]``), the rest unchanged."""
    order = sorted(range(k), key=lambda i: scores[i], reverse=True)
    return [ranked[i] for i in order] + ranked[k:]


def with_tail(head: list[str], ranked: list[str]) -> list[str]:
    """``head`` followed by the rest of ``ranked`` (deep metrics for lists shorter than the cut-off)."""
    seen = set(head)
    return head + [d for d in ranked if d not in seen]


def _ref(profile: CalibrationProfile) -> ProfileRef:
    return ProfileRef(fingerprint=profile.fingerprint, weights=profile.weights, created_at=profile.created_at,
                      seed_source=profile.seed_source, pairing=profile.pairing)


async def _ground_truth(target: Target, profile: CalibrationProfile, queries: list[Query],
                        qrels: dict[str, dict[str, int]], seeds: int, budget: int, progress: Progress | None,
                        hybrid: Target | None, meter: Meter) -> GroundTruth:
    """Every method on the judged queries. The rerankers reorder the seed source's first pass; the RF rows run in
    the target's fusion and are measured against the zero-cost search of that fusion (vanilla, or plain hybrid)."""
    ref = _ref(profile)
    pool = seeds + budget
    fused = target.sparse is not None
    first: Literal["vanilla", "hybrid"] = "hybrid" if target.hybrid_seeds else "vanilla"
    baseline: Literal["vanilla", "hybrid"] = "hybrid" if fused else "vanilla"
    suffix = "+sparse" if fused else ""
    names = ["vanilla", *(["hybrid"] if hybrid is not None else []), f"rerank top-{seeds}", f"rerank top-{pool}",
             f"rf precision{suffix}", f"rf recall{suffix}"]
    costs = {"vanilla": 0, "hybrid": 0, f"rerank top-{seeds}": seeds, f"rerank top-{pool}": pool,
             f"rf precision{suffix}": seeds, f"rf recall{suffix}": pool}
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in names}
    refused = matched = 0
    judged_ids = {d for rels in qrels.values() for d in rels}
    for i, q in enumerate(queries):
        rels = qrels[q.id or ""]
        qv = await target.retriever.embed_query(q.text)
        van_ids = [doc_key(target, p) for p in await search.nearest(target, qv, DEPTH)]
        lists = {"vanilla": van_ids}
        if hybrid is not None:
            lists["hybrid"] = [doc_key(target, p) for p in await search.hybrid(hybrid, q.text, qv, DEPTH)]
        first_points = await search.candidates(target, q.text, qv, DEPTH)
        first_ids = [doc_key(target, p) for p in first_points]
        matched += sum(1 for d in first_ids if d in judged_ids) + sum(1 for d in van_ids if d in judged_ids)
        pool_scores = await meter.score(q.text, target.texts(first_points[:pool]))
        lists[f"rerank top-{seeds}"] = rerank_top(first_ids, pool_scores, seeds)
        lists[f"rerank top-{pool}"] = rerank_top(first_ids, pool_scores, pool)
        try:
            prec = await search.run(search.precision(target, q.text, ref, seeds=seeds, limit=DEPTH), meter.score)
            rec = await search.run(search.recall(target, q.text, ref, seeds=seeds, budget=budget), meter.score)
            lists[f"rf precision{suffix}"] = [h.doc_id or str(h.id) for h in prec.hits]
            lists[f"rf recall{suffix}"] = with_tail([h.doc_id or str(h.id) for h in rec.hits], first_ids)
        except GuardrailError:  # e.g. no contrast among the seeds: a user would fall back to the zero-cost search
            refused += 1
            lists[f"rf precision{suffix}"] = lists[f"rf recall{suffix}"] = lists[baseline]
        for name in names:
            runs[name].append(all_metrics(lists[name], rels))
        if progress is not None:
            await progress(float(i + 1), float(len(queries)), f"ground-truth evaluation {i + 1}/{len(queries)}")
    if queries and matched == 0:
        raise InputError(
            f"No retrieved document of any of the {len(queries)} judged queries matched an id in the relevance "
            f"judgments: the ids are read from the payload key {target.id_field!r}, else the point id.",
            fix="Set [collection] id_field to the payload key (a dotted path such as metadata.doc_id) holding the ids "
                "your qrels use.")
    methods = [MethodMetrics(method=m, feedback_cost=costs[m],
                             **{k: round(statistics.fmean(r[k] for r in rows), 4) for k in rows[0]})
               for m, rows in runs.items()]
    by = {m.method: m.ndcg_at_10 for m in methods}
    best = max(methods, key=lambda m: (m.ndcg_at_10, -m.feedback_cost))
    return GroundTruth(queries=len(queries), refused_queries=refused, first_pass=first, baseline=baseline,
                       methods=methods, reranker_gain_ndcg10=round(by[f"rerank top-{pool}"] - by[first], 4),
                       rf_precision_gain_ndcg10=round(by[f"rf precision{suffix}"] - by[baseline], 4),
                       rf_recall_gain_ndcg10=round(by[f"rf recall{suffix}"] - by[baseline], 4),
                       best_method=best.method, advice=advice(methods, fused),
                       per_query_ndcg10={m: [round(r["ndcg_at_10"], 6) for r in rows] for m, rows in runs.items()},
                       query_ids=[q.id or "" for q in queries])


def advice(methods: list[MethodMetrics], fused: bool, tie: float = 0.005) -> str:
    """Which mode to use on this collection, from the measured nDCG@10 (the cheapest within ``tie`` of the best)."""
    best = max(m.ndcg_at_10 for m in methods)
    good = sorted((m for m in methods if m.ndcg_at_10 >= best - tie), key=lambda m: (m.feedback_cost, -m.ndcg_at_10))
    pick = good[0]
    how = {"vanilla": "plain vector search (vanilla=true, fusion=none)",
           "hybrid": "plain hybrid search, no feedback calls (vanilla=true, fusion=sparse)"}
    if pick.method in how:
        return (f"{pick.method} alone is as good here (nDCG@10 {pick.ndcg_at_10:.3f} vs best {best:.3f}) at no "
                f"feedback cost: use {how[pick.method]}.")
    if pick.method.startswith("rerank"):
        return (f"the feedback model as a plain reranker ({pick.method}, nDCG@10 {pick.ndcg_at_10:.3f}) is the best "
                "here: Relevance Feedback adds nothing over reranking on this collection.")
    tool = "rf_search_precision" if "precision" in pick.method else "rf_search_recall"
    return (f"{pick.method} is the best here (nDCG@10 {pick.ndcg_at_10:.3f}, {pick.feedback_cost} feedback calls per "
            f"query): use {tool} with fusion={'sparse' if fused else 'none'}.")


Verdict = Literal["passed", "failed", "unverified"]


def verdict(gt: GroundTruth | None, pool: int) -> tuple[Verdict, list[str]]:
    if gt is None:
        return "unverified", ["no relevance judgments given: the library's metrics alone cannot show relevance gains"]
    if gt.queries < MIN_JUDGED_QUERIES:
        return "unverified", [f"only {gt.queries} judged queries (need {MIN_JUDGED_QUERIES}) for a verdict"]
    reasons = []
    if gt.reranker_gain_ndcg10 <= 0:
        reasons.append(f"the feedback model as a plain reranker of the top {pool} changed nDCG@10 by "
                       f"{gt.reranker_gain_ndcg10:+.4f} over {gt.first_pass} search: it is not better than the "
                       "retriever, so RF has no useful signal to amplify")
    if max(gt.rf_precision_gain_ndcg10, gt.rf_recall_gain_ndcg10) <= 0:
        reasons.append(f"neither RF pattern beat {gt.baseline} search, which costs no feedback, on nDCG@10 (precision "
                       f"{gt.rf_precision_gain_ndcg10:+.4f}, recall {gt.rf_recall_gain_ndcg10:+.4f})")
    return ("failed" if reasons else "passed"), reasons


FEEDBACK_PER_QUERY = 23
"""Feedback scores the library's evaluation spends per query, about (the ``evaluate`` tool's description)."""
FEEDBACK_PER_JUDGED_QUERY = 55
"""Feedback scores the ground-truth rows add per judged query, about (reranking and both RF patterns)."""


def feedback_estimate(queries: int, judged: int) -> int:
    """What an evaluation of ``queries`` queries, ``judged`` of them with judgments, costs in feedback scores."""
    return queries * FEEDBACK_PER_QUERY + judged * FEEDBACK_PER_JUDGED_QUERY


async def evaluate(target: Target, trainer: Trainer, profile: CalibrationProfile, queries: Sequence[Query],
                   profiles: ProfileStore, *, qrels: dict[str, dict[str, int]] | None = None, at_n: int = 10,
                   eval_context_limit: int = 3, seeds: int = 5, budget: int = 20, progress: Progress | None = None,
                   hybrid: Target | None = None, store: bool = True) -> EvaluationReport:
    """The library's view and, with judgments, the ground-truth rows and the gate (stored in the profile).

    ``hybrid``: a view of the collection with the BM25 side, for the zero-cost hybrid row."""
    warnings: list[str] = []
    qs = held_out(profile, queries, warnings)
    search.check_limit("at_n", at_n, 100)
    if not 2 <= eval_context_limit <= 20:
        raise InputError(f"eval_context_limit={eval_context_limit} is out of range (2..20).", fix="Use 3 (the library's default).")
    if target.info.points_count < eval_context_limit + at_n:
        raise InputError(f"Collection {target.collection!r} has {target.info.points_count} points, too few for "
                         f"at_n={at_n} after {eval_context_limit} seeds.", fix="Use a smaller at_n.")
    if target.scorer.out_of_band:
        raise GuardrailError("Evaluating with the MCP client's own LLM would take several sampling round trips per query.",
                             fix='Evaluate with [feedback] transport = "http" on the same model (same identity).')
    if not profile.usable:
        raise GuardrailError(f"The calibration is unusable ({'; '.join(profile.reasons)}): nothing to evaluate.",
                             fix="Recalibrate first.")
    meter = Meter(target)
    lib = await trainer.evaluate(training_job(target, progress, meter.score), [q.text for q in qs], profile.weights.as_tuple(),
                                 at_n, eval_context_limit)
    gt = None
    if qrels is not None:
        judged = [q for q in qs if q.id is not None and q.id in qrels]
        if not judged:
            raise InputError("None of the evaluation queries has relevance judgments in the qrels file.",
                             fix="Pass a queries JSONL whose _id values appear in the qrels' query-id column.")
        if len(judged) < len(qs):
            warnings.append(f"{len(qs) - len(judged)} evaluation queries have no judgments; ground truth uses {len(judged)}.")
        gt = await _ground_truth(target, profile, judged, qrels, seeds, budget, progress, hybrid, meter)
    v, reasons = verdict(gt, seeds + budget)
    ev = Evaluation(fusion=target.fusion, at_n=at_n, queries=len(qs), queries_evaluated=lib.queries_kept,
                    rf_above_threshold=lib.rf_above_threshold, vanilla_above_threshold=lib.vanilla_above_threshold,
                    relative_gain_pct=lib.relative_gain_pct, dcg_rf_wins_pct=lib.dcg_rf_wins_pct,
                    dcg_vanilla_wins_pct=lib.dcg_vanilla_wins_pct, dcg_ties_pct=lib.dcg_ties_pct,
                    feedback_scores_used=meter.count, ground_truth=gt, verdict=v, reasons=reasons)
    if store:
        await profiles.set_evaluation(target.collection, profile.fingerprint, ev)
    lead = {"passed": "Evaluation PASSED on ground truth.",
            "failed": f"Evaluation FAILED on ground truth: searches with fusion={target.fusion} will refuse this "
                      "calibration.",
            "unverified": "Evaluation UNVERIFIED (no usable ground truth)."}[v]
    if not store:
        lead += " (Reported only: this evaluation was not stored, so searches are not affected.)"
    msg = (f"{lead} Library metrics over {lib.queries_kept}/{len(qs)} queries: RF {lib.rf_above_threshold} vs vanilla "
           f"{lib.vanilla_above_threshold} "
           f"results above the feedback threshold, DCG wins RF {ev.dcg_rf_wins_pct:.0f}% / vanilla "
           f"{ev.dcg_vanilla_wins_pct:.0f}% (agreement with the feedback model, not relevance).")
    if reasons:
        msg += " " + "; ".join(reasons) + "."
    if gt is not None:
        msg += f" Advice: {gt.advice}"
    return EvaluationReport(fingerprint=profile.fingerprint, evaluation=ev, warnings=warnings, message=msg)
