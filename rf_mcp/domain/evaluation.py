"""Evaluation of a calibrated formula on held-out queries.

Two views, reported side by side:
* the library's ``Evaluator`` (counts above the feedback model's threshold, DCG win rates): these
  measure agreement with the feedback model, not relevance;
* ground truth, when relevance judgments are given: nDCG@1/3/10 and recall@10/100 of vanilla
  search, the feedback model as a plain reranker, RF precision and RF recall. With judgments, this
  is the gate: each difference it rests on carries a paired bootstrap interval; a profile whose feedback model is
  not better than the first pass as a reranker, or whose RF patterns are not better than the zero-cost search
  (intervals wholly at or below zero), is marked failed and searches refuse it; an interval across zero makes the
  verdict inconclusive (searches warn).

Without a usable calibration, :func:`baselines` measures the rows that need none and stores nothing.

As in calibration, a query whose grades stay unusable after the feedback model's retry is skipped and counted
(``queries_skipped``): the library's view leaves it out, the ground truth drops it from every row (the verdict rests
on the queries measured); past :data:`guardrails.MAX_SKIPPED_SHARE` of either set the evaluation fails.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from rf_mcp.domain import search
from rf_mcp.domain.calibration import Skips, query_hash, training_job
from rf_mcp.domain.context import Meter, Target
from rf_mcp.domain.datasets import Query
from rf_mcp.domain.metrics import CONFIDENCE, RESAMPLES, all_metrics, paired_interval
from rf_mcp.domain.models import (
    Baselines,
    CalibrationProfile,
    Difference,
    Evaluation,
    EvaluationReport,
    GroundTruth,
    MethodMetrics,
    ProfileRef,
    Verdict,
)
from rf_mcp.domain.payload import doc_id_of
from rf_mcp.domain.profiles import ProfileStore
from rf_mcp.errors import GuardrailError, InputError, UnusableGrades
from rf_mcp.ports import Point, Progress, Trainer

MIN_JUDGED_QUERIES = 10
DEPTH = 100
MARGIN = 0.0
"""A difference of nDCG@10 decides the gate only when its whole interval lies above this margin (or at or below it)."""


def held_out(profile: CalibrationProfile, queries: Sequence[Query], warnings: list[str]) -> list[Query]:
    out = _distinct(queries, set(profile.query_hashes), warnings)
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


def _names(target: Target, seeds: int, budget: int, *, hybrid: bool, rerank: bool, rf: bool) -> dict[str, int]:
    """The rows measured, in order, with their feedback cost per query."""
    pool = seeds + budget
    suffix = "+sparse" if target.sparse is not None else ""
    costs = {"vanilla": 0, **({"hybrid": 0} if hybrid else {})}
    if rerank:
        costs |= {f"rerank top-{seeds}": seeds, f"rerank top-{pool}": pool}
    if rf:
        costs |= {f"rf precision{suffix}": seeds, f"rf recall{suffix}": pool}
    return costs


async def _rows(target: Target, queries: list[Query], qrels: dict[str, dict[str, int]], costs: dict[str, int], *,
                seeds: int, budget: int, progress: Progress | None, hybrid: Target | None, meter: Meter,
                ref: ProfileRef | None, skips: Skips) -> tuple[dict[str, list[dict[str, float]]], int, list[Query]]:
    """Every row of ``costs`` on every judged query (metrics per query), how many queries the RF guardrails refused,
    and the queries measured (those whose grades stayed unusable are skipped, into ``skips``). The rerankers reorder
    the seed source's first pass; the RF rows run in the target's fusion (``ref``'s weights)."""
    pool = seeds + budget
    suffix = "+sparse" if target.sparse is not None else ""
    baseline = "hybrid" if target.sparse is not None else "vanilla"
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in costs}
    refused = matched = 0
    measured: list[Query] = []
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
        try:
            if f"rerank top-{pool}" in costs:
                pool_scores = await meter.score(q.text, target.texts(first_points[:pool]))
                lists[f"rerank top-{seeds}"] = rerank_top(first_ids, pool_scores, seeds)
                lists[f"rerank top-{pool}"] = rerank_top(first_ids, pool_scores, pool)
            if ref is not None:
                try:
                    prec = await search.run(search.precision(target, q.text, ref, seeds=seeds, limit=DEPTH), meter.score)
                    rec = await search.run(search.recall(target, q.text, ref, seeds=seeds, budget=budget), meter.score)
                    lists[f"rf precision{suffix}"] = [h.doc_id or str(h.id) for h in prec.hits]
                    lists[f"rf recall{suffix}"] = with_tail([h.doc_id or str(h.id) for h in rec.hits], first_ids)
                except GuardrailError:  # e.g. no contrast among the seeds: a user would fall back to the zero-cost search
                    refused += 1
                    lists[f"rf precision{suffix}"] = lists[f"rf recall{suffix}"] = lists[baseline]
        except UnusableGrades as exc:  # dropped from every row (the rows compare the same queries)
            skips.add(q.text, exc)
        else:
            measured.append(q)
            for name in costs:
                runs[name].append(all_metrics(lists[name], rels))
        if progress is not None:
            await progress(float(i + 1), float(len(queries)), f"ground-truth evaluation {i + 1}/{len(queries)}")
    if queries and matched == 0:
        raise InputError(
            f"No retrieved document of any of the {len(queries)} judged queries matched an id in the relevance "
            f"judgments: the ids are read from the payload key {target.id_field!r}, else the point id.",
            fix="Set [collection] id_field to the payload key (a dotted path such as metadata.doc_id) holding the ids "
                "your qrels use.")
    return runs, refused, measured


def _methods(runs: dict[str, list[dict[str, float]]], costs: dict[str, int]) -> list[MethodMetrics]:
    return [MethodMetrics(method=m, feedback_cost=costs[m],
                          **{k: round(statistics.fmean(r[k] for r in rows), 4) for k in rows[0]})
            for m, rows in runs.items()]


def difference(per_query: dict[str, list[float]], method: str, against: str) -> Difference:
    """``method`` minus ``against`` in nDCG@10 over the same queries, with its paired bootstrap interval."""
    mean, low, high = paired_interval(per_query[method], per_query[against])
    return Difference(method=method, against=against, mean=round(mean, 6), low=round(low, 6), high=round(high, 6),
                      confidence=CONFIDENCE, resamples=RESAMPLES)


def side(d: Difference) -> Literal["above", "below", "spans"]:
    """Where a difference's interval lies against :data:`MARGIN`: wholly above, wholly at or below, or across it."""
    if d.low > MARGIN:
        return "above"
    return "below" if d.high <= MARGIN else "spans"


async def _ground_truth(target: Target, profile: CalibrationProfile, queries: list[Query],
                        qrels: dict[str, dict[str, int]], seeds: int, budget: int, progress: Progress | None,
                        hybrid: Target | None, meter: Meter, skips: Skips) -> GroundTruth:
    """Every method on the judged queries. The rerankers reorder the seed source's first pass; the RF rows run in
    the target's fusion and are measured against the zero-cost search of that fusion (vanilla, or plain hybrid)."""
    pool = seeds + budget
    fused = target.sparse is not None
    first: Literal["vanilla", "hybrid"] = "hybrid" if target.hybrid_seeds else "vanilla"
    baseline: Literal["vanilla", "hybrid"] = "hybrid" if fused else "vanilla"
    suffix = "+sparse" if fused else ""
    costs = _names(target, seeds, budget, hybrid=hybrid is not None, rerank=True, rf=True)
    runs, refused, queries = await _rows(target, queries, qrels, costs, seeds=seeds, budget=budget, progress=progress,
                                         hybrid=hybrid, meter=meter, ref=_ref(profile), skips=skips)
    methods = _methods(runs, costs)
    per_query = {m: [r["ndcg_at_10"] for r in rows] for m, rows in runs.items()}
    by = {m.method: m.ndcg_at_10 for m in methods}
    best = max(methods, key=lambda m: (m.ndcg_at_10, -m.feedback_cost))
    differences = [difference(per_query, f"rerank top-{pool}", first),
                   difference(per_query, f"rf precision{suffix}", baseline),
                   difference(per_query, f"rf recall{suffix}", baseline)]
    return GroundTruth(queries=len(queries), refused_queries=refused, first_pass=first, baseline=baseline,
                       methods=methods, reranker_gain_ndcg10=round(by[f"rerank top-{pool}"] - by[first], 4),
                       rf_precision_gain_ndcg10=round(by[f"rf precision{suffix}"] - by[baseline], 4),
                       rf_recall_gain_ndcg10=round(by[f"rf recall{suffix}"] - by[baseline], 4),
                       best_method=best.method, advice=advice(methods, per_query, fused), differences=differences,
                       per_query_ndcg10={m: [round(x, 6) for x in xs] for m, xs in per_query.items()},
                       query_ids=[q.id or "" for q in queries])


HOW = {"vanilla": "plain vector search (vanilla=true, fusion=none)",
       "hybrid": "plain hybrid search, no feedback calls (vanilla=true, fusion=sparse)"}


def advice(methods: list[MethodMetrics], per_query: dict[str, list[float]], fused: bool, *,
           rf_measured: bool = True) -> str:
    """Which mode to use on this collection: a paid row only when its gain over the best free row is beyond the noise
    (its interval lies above zero), then the cheapest such row not shown worse than the best of them; otherwise the
    best free row, which is as good as far as these judgments can tell."""
    n = len(next(iter(per_query.values())))
    free = max((m for m in methods if m.feedback_cost == 0), key=lambda m: m.ndcg_at_10)
    paid = [m for m in methods if m.feedback_cost > 0]
    gains = {m.method: difference(per_query, m.method, free.method) for m in paid}
    winners = [m for m in paid if side(gains[m.method]) == "above"]
    if not winners:
        closest = max(paid, key=lambda m: gains[m.method].mean, default=None)
        noise = "" if closest is None else (f"; no paid mode beats it beyond the noise over {n} judged queries (best: "
                                            f"{gains[closest.method].text()})")
        return (f"{free.method} alone is as good here (nDCG@10 {free.ndcg_at_10:.3f}) at no feedback cost{noise}: use "
                f"{HOW[free.method]}.")
    top = max(winners, key=lambda m: m.ndcg_at_10)
    pick = next(m for m in sorted(winners, key=lambda m: (m.feedback_cost, -m.ndcg_at_10))
                if m is top or difference(per_query, m.method, top.method).high >= 0)
    gain = f"{gains[pick.method].text()}, {n} judged queries"
    if pick.method.startswith("rerank"):
        then = ("Relevance Feedback shows no gain over reranking beyond the noise on this collection" if rf_measured
                else "calibrate, then evaluate whether Relevance Feedback adds to it")
        return f"the feedback model as a plain reranker ({pick.method}) beats {free.method} beyond the noise ({gain}): {then}."
    tool = "rf_search_precision" if "precision" in pick.method else "rf_search_recall"
    return (f"{pick.method} beats {free.method} beyond the noise ({gain}; {pick.feedback_cost} feedback calls per "
            f"query): use {tool} with fusion={'sparse' if fused else 'none'}.")


def verdict(gt: GroundTruth | None, pool: int) -> tuple[Verdict, list[str]]:
    """passed: the reranker beats the first pass and an RF row beats the zero-cost search, each interval wholly above
    the margin; failed: an interval wholly at or below it (for RF: both rows'), or a reranker not better on average
    whose interval spans the margin (the feedback model must beat the retriever as a reranker); inconclusive:
    otherwise."""
    if gt is None:
        return "unverified", ["no relevance judgments given: the library's metrics alone cannot show relevance gains"]
    if gt.queries < MIN_JUDGED_QUERIES:
        return "unverified", [f"only {gt.queries} judged queries (need {MIN_JUDGED_QUERIES}) for a verdict"]
    n = gt.queries
    rerank = next(d for d in gt.differences if d.method.startswith("rerank"))
    rf = [d for d in gt.differences if d.method.startswith("rf ")]
    failed: list[str] = []
    unclear: list[str] = []
    if side(rerank) == "below" or (side(rerank) == "spans" and rerank.mean <= MARGIN):
        # the guide's rule: the feedback model must beat the retriever as a reranker; one that is not better on
        # average, and not shown better, fails (an interval alone cannot show it is worse on a few queries)
        failed.append(f"the feedback model as a plain reranker of the top {pool} is not better than {gt.first_pass} "
                      f"search ({rerank.text()}, {n} judged queries): RF has no useful signal to amplify")
    elif side(rerank) == "spans":
        unclear.append(f"{n} judged queries cannot tell whether the feedback model as a plain reranker of the top "
                       f"{pool} beats {gt.first_pass} search ({rerank.text()})")
    sides = [side(d) for d in rf]
    rf_text = "; ".join(d.text() for d in rf)
    if all(x == "below" for x in sides):
        failed.append(f"neither RF pattern beat {gt.baseline} search, which costs no feedback ({rf_text}, {n} judged "
                      "queries)")
    elif "above" not in sides:
        unclear.append(f"{n} judged queries cannot tell whether an RF pattern beats {gt.baseline} search ({rf_text})")
    if failed:
        return "failed", failed
    return ("inconclusive", unclear) if unclear else ("passed", [])


def _distinct(queries: Sequence[Query], trained: set[str], warnings: list[str]) -> list[Query]:
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
    return out


def _judged(qs: list[Query], qrels: dict[str, dict[str, int]], warnings: list[str]) -> list[Query]:
    judged = [q for q in qs if q.id is not None and q.id in qrels]
    if not judged:
        raise InputError("None of the evaluation queries has relevance judgments in the qrels file.",
                         fix="Pass a queries JSONL whose _id values appear in the qrels' query-id column.")
    if len(judged) < len(qs):
        warnings.append(f"{len(qs) - len(judged)} evaluation queries have no judgments; ground truth uses {len(judged)}.")
    return judged


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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
                   hybrid: Target | None = None, store: bool = True, replace: bool = False) -> EvaluationReport:
    """The library's view and, with judgments, the ground-truth rows and the gate. The verdict is stored in the profile
    when ``store`` and it rests on at least as many judged queries as the stored one of this fusion (or ``replace``).

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
                             fix="Recalibrate first, or pass relevance judgments (qrels) to measure the rows that need "
                                 "no calibration.")
    meter = Meter(target)
    lib_skips = Skips(len(qs), "evaluation")
    lib = await trainer.evaluate(training_job(target, progress, lib_skips.grader(meter.score)), [q.text for q in qs],
                                 profile.weights.as_tuple(), at_n, eval_context_limit)
    gt = None
    gt_skips = Skips(0, "judged evaluation")
    if qrels is not None:
        judged = _judged(qs, qrels, warnings)
        gt_skips = Skips(len(judged), "judged evaluation")
        gt = await _ground_truth(target, profile, judged, qrels, seeds, budget, progress, hybrid, meter, gt_skips)
    warnings += [n for n in (lib_skips.note(), gt_skips.note()) if n]
    v, reasons = verdict(gt, seeds + budget)
    ev = Evaluation(fusion=target.fusion, at_n=at_n, queries=len(qs), queries_evaluated=lib.queries_kept,
                    rf_above_threshold=lib.rf_above_threshold, vanilla_above_threshold=lib.vanilla_above_threshold,
                    relative_gain_pct=lib.relative_gain_pct, dcg_rf_wins_pct=lib.dcg_rf_wins_pct,
                    dcg_vanilla_wins_pct=lib.dcg_vanilla_wins_pct, dcg_ties_pct=lib.dcg_ties_pct,
                    feedback_scores_used=meter.count, ground_truth=gt, verdict=v, reasons=reasons, evaluated_at=now(),
                    queries_skipped=len(lib_skips.queries | gt_skips.queries),
                    skipped_reason=lib_skips.reason or gt_skips.reason)
    if store:
        stored, why = await profiles.set_evaluation(target.collection, profile.fingerprint, ev, replace=replace,
                                                    evaluated=profile)
    else:
        stored, why = False, ("not stored: reported only (store=false, or a read-only server), so searches are not "
                              "affected")
    n = ev.judged_queries()
    lead = {"passed": f"Evaluation PASSED on {n} judged queries.",
            "failed": f"Evaluation FAILED on {n} judged queries.",
            "inconclusive": f"Evaluation INCONCLUSIVE on {n} judged queries (an interval spans zero).",
            "unverified": "Evaluation UNVERIFIED (no usable ground truth)."}[v]
    if stored:
        lead += {"passed": "", "unverified": "",
                 "failed": f" Searches with fusion={target.fusion} will refuse this calibration.",
                 "inconclusive": f" Searches with fusion={target.fusion} use it with a warning; evaluate on more "
                                 "judged queries to decide."}[v]
    msg = (f"{lead} ({why}.) Library metrics over {lib.queries_kept}/{len(qs)} queries: RF "
           f"{lib.rf_above_threshold} vs vanilla {lib.vanilla_above_threshold} "
           f"results above the feedback threshold, DCG wins RF {ev.dcg_rf_wins_pct:.0f}% / vanilla "
           f"{ev.dcg_vanilla_wins_pct:.0f}% (agreement with the feedback model, not relevance).")
    if reasons:
        msg += " " + "; ".join(reasons) + "."
    if ev.queries_skipped:
        msg += f" {ev.queries_skipped} queries were skipped (unusable grades; see warnings)."
    if gt is not None:
        msg += f" Advice: {gt.advice}"
    return EvaluationReport(fingerprint=profile.fingerprint, evaluation=ev, stored=stored, stored_reason=why,
                            warnings=warnings, message=msg)


async def baselines(target: Target, queries: Sequence[Query], qrels: dict[str, dict[str, int]], *, why: str,
                    seeds: int = 5, budget: int = 20, progress: Progress | None = None,
                    hybrid: Target | None = None) -> EvaluationReport:
    """Without a usable calibration (``why``): the rows that need none on the judged queries (vanilla, hybrid, and the
    feedback model as a reranker when it scores here), and whether a calibration is worth trying. Stores nothing."""
    warnings: list[str] = []
    qs = _distinct(queries, set(), warnings)
    judged = _judged(qs, qrels, warnings)
    rerank = not target.scorer.out_of_band
    if not rerank:
        warnings.append("The feedback model is the MCP client's own LLM (sampling): the reranker rows are not measured.")
    meter = Meter(target)
    pool = seeds + budget
    first: Literal["vanilla", "hybrid"] = "hybrid" if target.hybrid_seeds else "vanilla"
    costs = _names(target, seeds, budget, hybrid=hybrid is not None, rerank=rerank, rf=False)
    skips = Skips(len(judged), "judged evaluation")
    runs, _, judged = await _rows(target, judged, qrels, costs, seeds=seeds, budget=budget, progress=progress,
                                  hybrid=hybrid, meter=meter, ref=None, skips=skips)
    if note := skips.note():
        warnings.append(note)
    methods = _methods(runs, costs)
    per_query = {m: [r["ndcg_at_10"] for r in rows] for m, rows in runs.items()}
    differences = [difference(per_query, m, first) for m in costs if m.startswith("rerank")]
    n = len(judged)
    worth: bool | None = None
    if not rerank:
        worth_text = "Whether a calibration is worth trying cannot be measured here."
    elif n < MIN_JUDGED_QUERIES:
        worth_text = (f"Only {n} judged queries (need {MIN_JUDGED_QUERIES}): too few to tell whether a calibration is "
                      "worth trying.")
    else:
        gate = differences[-1]  # the reranker of the top seeds+budget: the one the gate measures
        worth = side(gate) == "above"
        worth_text = {
            "above": f"A calibration is worth trying: the feedback model as a plain reranker beats {first} search "
                     f"beyond the noise ({gate.text()}).",
            "below": f"A calibration is not worth trying: the feedback model as a plain reranker of the top {pool} is "
                     f"not better than {first} search ({gate.text()}), so RF would have no useful signal to amplify.",
            "spans": f"{n} judged queries cannot tell whether the feedback model as a plain reranker beats {first} "
                     f"search ({gate.text()}): more judgments would; a calibration may still fail its gate.",
        }[side(gate)]
    base = Baselines(queries=n, first_pass=first, methods=methods, differences=differences, worth_calibrating=worth,
                     advice=advice(methods, per_query, target.sparse is not None, rf_measured=False),
                     feedback_scores_used=meter.count, queries_skipped=skips.count, skipped_reason=skips.reason,
                     per_query_ndcg10={m: [round(x, 6) for x in xs] for m, xs in per_query.items()},
                     query_ids=[q.id or "" for q in judged])
    rows = ", ".join(f"{m.method} {m.ndcg_at_10:.3f}" for m in methods)
    reason = "baselines only: nothing was stored (there is no usable calibration to attach a verdict to)"
    msg = (f"No usable calibration for this setup ({why}): nothing was stored. Baselines on {n} judged queries, nDCG@10: {rows}. "
           f"{worth_text} Advice: {base.advice}")
    return EvaluationReport(fingerprint="none", baselines=base, stored=False, stored_reason=reason, warnings=warnings,
                            message=msg)
