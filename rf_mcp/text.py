"""Human-readable text for domain results (CLI output without --json)."""

from __future__ import annotations

from typing import Any

from rf_mcp.domain.migration import MigrationReport
from rf_mcp.domain.models import (
    CalibrationProfile,
    CalibrationReport,
    CollectionsOverview,
    DocumentsReport,
    EvaluationReport,
    IndexReport,
    ProfileSummary,
    SearchResult,
)


def _warnings(ws: list[str]) -> list[str]:
    return [f"warning: {w}" for w in ws]


def _profile(p: CalibrationProfile) -> list[str]:
    w, s = p.weights, p.signal
    return [f"  fingerprint {p.fingerprint}  retriever {p.retriever}  feedback {p.feedback}",
            f"  a={w.a:.6g} b={w.b:.6g} c={w.c:.6g}  usable={p.usable}",
            f"  signal: disagreement {s.disagreement:.1%} ({s.queries_disagreeing}/{s.queries_total} queries; "
            f"{s.queries_with_pairs} with a context pair; library printed "
            f"{'n/a' if s.library_reported is None else f'{s.library_reported:.1%}'})",
            f"  {p.query_count} queries, {p.points_count} points, {p.seconds:.1f}s, {p.created_at}",
            *([f"  skipped: {s.queries_skipped} training queries (unusable grades: {s.skipped_reason})"]
              if s.queries_skipped else [])]


_DEMO_HELP = {
    "index": "embeds every document with the retriever (dense vectors) and writes BM25 keyword vectors beside them.",
    "calibrate": "runs the training queries, lets the feedback model score each one's candidates, and fits the "
                 "weights a, b, c; too little signal would store the calibration as unusable.",
    "evaluate": "runs the held-out queries and compares every method with the judgments; a calibration that does "
                "not beat plain search here is refused by later searches.",
    "rf_search_precision": "scores the 5 seeds with the feedback model, then re-runs the vector search pulled "
                           "towards the well-scored seeds (5 feedback calls).",
    "rf_search_recall": "as precision, then scores 20 more RF results and orders everything by feedback score "
                        "(25 feedback calls).",
    "search": "the zero-cost searches, no feedback model involved.",
}


def _ndcg(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _demo(r: Any) -> str:
    lines = [f"rf-mcp demo on {r.collection!r} (bundled data: {r.data})", f"store: {r.store}; config: {r.config}",
             f"RF runs with fusion={r.fusion!r} (compared with plain vector search); hybrid search is shown beside it.",
             "", "Terms:", *(f"  {k}: {v}" for k, v in r.terms.items())]
    details = {"index": r.index, "calibrate": r.calibration, "evaluate": r.evaluation,
               "rf_search_precision": r.precision, "rf_search_recall": r.recall}
    searches = [r.zero_cost, r.hybrid]
    for n, s in enumerate(r.steps, 1):
        lines += ["", f"{n}. {s.step} [{s.status}]: {s.call}", f"   what it does: {_DEMO_HELP.get(s.step, '')}"]
        if s.status == "refused":
            lines += [f"   refused: {s.summary}", f"   guardrail: {s.reason}"]
        elif s.status == "skipped":
            lines.append(f"   skipped: {s.reason}")
        else:
            result = details.get(s.step) if s.step != "search" else searches.pop(0)
            if result is None or s.step in ("evaluate", "search"):
                lines.append(f"   {s.summary}")
            if s.step == "calibrate" and s.reason:
                lines.append(f"   why unusable: {s.reason}")
            if result is not None:
                lines += ["   " + x for x in render_text(result).splitlines()]
        if s.judged_relevant_in_hits is not None:
            lines.append(f"   judged relevant documents among these hits: {s.judged_relevant_in_hits}")
        if s.step.startswith("rf_search"):
            lines.append(f"   nDCG@10 on the judged test queries: this RF mode {_ndcg(s.ndcg_at_10)}, plain "
                         f"{_ndcg(s.plain_ndcg_at_10)}, hybrid {_ndcg(s.hybrid_ndcg_at_10)}")
    if r.advice:
        lines += ["", f"Advice from the evaluation: {r.advice}"]
    if r.refusals:
        lines += ["", "Refused (the guardrails at work):", *(f"  {x}" for x in r.refusals)]
    return "\n".join(lines)


def render_text(result: Any) -> str:
    if type(result).__name__ == "DemoReport":
        return _demo(result)
    if isinstance(result, list):
        if not result:
            return "no calibration profiles"
        return "\n".join(render_text(r) for r in result)
    if isinstance(result, IndexReport):
        return (f"indexed {result.documents} documents into {result.collection!r} "
                f"(vector {result.vector_name or '(default)'!r}, {'created' if result.created else 'updated'}); "
                f"{result.points_count} points ({result.indexed_vectors or 0} in an HNSW index), {result.seconds:.1f}s")
    if isinstance(result, CalibrationReport):
        return "\n".join([result.message, *_profile(result.profile),
                          f"  feedback scores used: {result.feedback_scores_used}", *_warnings(result.warnings)])
    if isinstance(result, EvaluationReport):
        ev, base = result.evaluation, result.baselines
        lines = [result.message]
        gt = ev.ground_truth if ev is not None else base
        if gt is not None:
            lines.append(f"  {'method':<18}{'cost':>5}{'nDCG@1':>8}{'nDCG@3':>8}{'nDCG@10':>9}{'R@10':>7}{'R@100':>7}")
            for m in gt.methods:
                lines.append(f"  {m.method:<18}{m.feedback_cost:>5}{m.ndcg_at_1:>8.3f}{m.ndcg_at_3:>8.3f}"
                             f"{m.ndcg_at_10:>9.3f}{m.recall_at_10:>7.3f}{m.recall_at_100:>7.3f}")
            lines += [f"  {d.text()}" for d in gt.differences]
        if ev is not None and ev.ground_truth is not None:
            lines.append(f"  ({ev.ground_truth.queries} judged queries; {ev.ground_truth.refused_queries} refused by "
                         f"the guardrails, ranked as {ev.ground_truth.baseline} in the RF rows)")
        lines.append(f"  feedback scores used: {ev.feedback_scores_used if ev else base.feedback_scores_used if base else 0}")
        return "\n".join(lines + _warnings(result.warnings))
    if isinstance(result, SearchResult):
        w = result.profile.weights
        lines = [f"{result.method} search in {result.collection!r}: {len(result.hits)} hits, "
                 f"{result.feedback_scores_used} feedback scores, profile {result.profile.fingerprint} "
                 f"(a={w.a:.4g} b={w.b:.4g} c={w.c:.4g})"]
        for h in result.hits:
            fb = "" if h.feedback_score is None else f" fb={h.feedback_score:.3f}"
            lines.append(f"{h.rank:>3}. [{h.doc_id or h.id}] {h.score:.4f}{fb} {h.source:<7} {h.text[:90]}")
        return "\n".join(lines + _warnings(result.warnings))
    if isinstance(result, ProfileSummary):
        head = f"{result.collection} {result.key} [{result.status}]" + (" (matches config)" if result.matches_config else "")
        if result.profile is None:
            return f"{head} {result.error}"
        tail = [f"  evaluation (fusion={v.fusion}): {v.verdict} on {v.judged_queries} judged queries"
                + (f" at {v.evaluated_at}" if v.evaluated_at else "")
                + (f" ({'; '.join(v.reasons)})" if v.reasons else "") for v in result.verdicts] or ["  evaluation: none"]
        return "\n".join([head, *_profile(result.profile), *tail])
    if isinstance(result, MigrationReport):
        return (f"migrated {result.points} points and {result.profiles} calibration profile(s) of "
                f"{result.collection!r} from {result.source} to {result.destination} in {result.seconds:.1f}s")
    if isinstance(result, DocumentsReport):
        lines = [f"{result.documents} documents written or deleted in {result.collection!r}"
                 f"{' (created)' if result.created else ''}; it holds {result.points_count} points"]
        if result.not_found:
            lines.append(f"  not found: {result.not_found}")
        return "\n".join(lines + [f"  {n}" for n in result.notes] + _warnings(result.warnings))
    if isinstance(result, CollectionsOverview):
        lines = [f"{result.qdrant}: {len(result.collections)} collection(s)", *result.notes]
        for ov in result.collections:
            usable = sum(1 for s in ov.profiles if s.status == "usable")
            lines.append(f"  {ov.info.name}: {ov.info.points_count} points, vectors "
                         f"{[v.name or '(default)' for v in ov.info.vectors]}, {len(ov.profiles)} calibration "
                         f"profile(s), {usable} usable")
        return "\n".join(lines + [f"  error: {e}" for e in result.errors])
    if isinstance(result, CalibrationProfile):
        return "\n".join(["restored the previous calibration:", *_profile(result)])
    return str(result)
