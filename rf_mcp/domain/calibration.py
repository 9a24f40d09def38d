"""Calibration: learn a, b, c with the library's ``RelevanceFeedback.train`` and store the profile."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import anyio

from rf_mcp.adapters.rf_library import FastRelevanceFeedback, Progress, captured_library_output, parse_disagreement
from rf_mcp.domain import guardrails
from rf_mcp.domain.context import Target
from rf_mcp.domain.models import CalibrationProfile, CalibrationReport, Signal, TrainSettings, Weights
from rf_mcp.domain.profiles import ProfileStore
from rf_mcp.errors import GuardrailError, InputError

UNTRAINED = (1.0, 1.0, 1.0)
INVERTED_CORRELATION = -0.1  # heuristic: good feedback models correlate positively with the retriever


def query_hash(text: str) -> str:
    return hashlib.sha256(text.strip().lower().encode()).hexdigest()[:12]


def check_queries(queries: Sequence[str], warnings: list[str]) -> list[str]:
    clean = list(dict.fromkeys(q.strip() for q in queries if q and q.strip()))
    if len(clean) < guardrails.MIN_TRAIN_QUERIES:
        raise InputError(
            f"{len(clean)} distinct training queries is too few (at least {guardrails.MIN_TRAIN_QUERIES}; "
            f"the guide asks for {guardrails.RECOMMENDED_TRAIN_QUERIES[0]}-{guardrails.RECOMMENDED_TRAIN_QUERIES[1]}).",
            fix="Provide 50-200 real, representative user queries (not synthetic ones).",
        )
    lo, hi = guardrails.RECOMMENDED_TRAIN_QUERIES
    if len(clean) < lo:
        warnings.append(f"Only {len(clean)} training queries: the guide recommends {lo}-{hi}; weights may be noisy.")
    if len(clean) > hi:
        warnings.append(f"{len(clean)} training queries: more than the guide's {hi} costs more and rarely helps.")
    return clean


def judge(weights: Weights, signal: Signal) -> list[str]:
    """Reasons a trained profile must not be used (empty list: usable)."""
    reasons = []
    w = weights.as_tuple()
    if not all(math.isfinite(x) for x in w):
        reasons.append(f"training produced non-finite weights {w}")
    elif all(abs(x - u) < 1e-9 for x, u in zip(w, UNTRAINED)):
        reasons.append("training left the initial weights a=b=c=1 unchanged (no training pairs)")
    if signal.disagreement < guardrails.MIN_DISAGREEMENT:
        reasons.append(f"the feedback model disagreed with the retriever on only {signal.disagreement:.0%} of "
                       f"training queries (need at least {guardrails.MIN_DISAGREEMENT:.0%}): nothing to distil")
    if signal.retriever_correlation is not None and signal.retriever_correlation < INVERTED_CORRELATION:
        reasons.append(f"the feedback scores fall as the retriever's similarity rises (Spearman "
                       f"{signal.retriever_correlation:+.2f}): they look like a distance, but RF needs higher = "
                       "more relevant; negate or fix the scorer")
    if weights.b < 0:
        reasons.append(f"b={weights.b:.4g} is negative, which Qdrant rejects")
    return reasons


def compute_signal(rf: FastRelevanceFeedback, n_queries: int, log: str) -> Signal:
    data = rf.training_data
    assert data is not None
    disagreeing = int(data[data.target_score > 0]["query_idx"].nunique())
    ranks = data[["score", "feedback_model_score"]].groupby(data["query_idx"]).rank()
    ranks["query_idx"] = data["query_idx"]
    per_query = [g["score"].corr(g["feedback_model_score"]) for _, g in ranks.groupby("query_idx")]
    per_query = [c for c in per_query if c == c]  # constant columns give NaN
    corr = round(float(sum(per_query) / len(per_query)), 4) if per_query else None
    return Signal(disagreement=round(disagreeing / n_queries, 6), queries_total=n_queries,
                  queries_with_pairs=int(data["query_idx"].nunique()), queries_disagreeing=disagreeing,
                  library_reported=parse_disagreement(log), retriever_correlation=corr)


def check_cost(target: Target, n_queries: int, settings: TrainSettings, cap: int | None) -> int:
    """Calibration scores queries x limit documents: refuse what the scorer cannot do or the cap forbids."""
    cost = n_queries * settings.limit
    if getattr(target.scorer, "out_of_band", False):
        raise GuardrailError(
            f"Calibrating with the MCP client's own LLM would take {n_queries} sampling round trips and {cost} gradings.",
            fix='Calibrate with [feedback] transport = "http" on the same model (same identity), then search '
                "through sampling.")
    if cap is not None and cost > cap:
        raise InputError(
            f"Calibration would cost {cost} feedback-model scores ({n_queries} queries x limit {settings.limit}), "
            f"over the cap of {cap}.", fix="Raise max_feedback_scores, or use fewer queries or a lower limit.")
    return cost


async def calibrate(target: Target, queries: Sequence[str], settings: TrainSettings, store: ProfileStore,
                    progress: Progress | None = None, max_feedback_scores: int | None = None) -> CalibrationReport:
    warnings: list[str] = []
    clean = check_queries(queries, warnings)
    check_cost(target, len(clean), settings, max_feedback_scores)
    if settings.context_limit >= settings.limit:
        raise InputError(f"context_limit={settings.context_limit} must be smaller than limit={settings.limit}.",
                         fix="Use e.g. limit=50, context_limit=5.")
    if target.info.points_count < settings.limit:
        raise InputError(
            f"Collection {target.collection!r} has {target.info.points_count} points; training retrieves "
            f"limit={settings.limit} per query.", fix=f"Use limit <= {target.info.points_count} or index more documents.")
    parts = target.parts
    rf = FastRelevanceFeedback(embedder=target.embedder, scorer=target.scorer, client=target.engine.sync_client,
                               collection_name=target.collection, vector_name=target.vector_name,
                               distance=target.vector.distance or "Cosine", text_fields=target.text_fields,
                               check=guardrails.finite_scores, progress=progress)
    t0 = time.perf_counter()

    def train() -> tuple[dict[str, float], str]:
        with captured_library_output() as log:
            w = rf.train(limit=settings.limit, context_limit=settings.context_limit, queries=clean,
                         confidence_margin=settings.confidence_margin, lr=settings.lr, epochs=settings.epochs,
                         patience=settings.patience, min_delta=settings.min_delta)
        return w, log.getvalue()

    async with store.lock(target.collection, parts.key):
        raw, log = await anyio.to_thread.run_sync(train)
        weights = Weights(a=raw["a"], b=raw["b"], c=raw["c"])
        signal = compute_signal(rf, len(clean), log)
        reasons = judge(weights, signal)
        profile = CalibrationProfile(
            fingerprint=parts.fingerprint, collection=target.collection, vector_name=target.vector_name,
            retriever=parts.retriever, feedback=parts.feedback, weights=weights, usable=not reasons,
            reasons=reasons, signal=signal, train=settings, query_count=len(clean),
            query_hashes=[query_hash(q) for q in clean], points_count=target.info.points_count,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            seconds=round(time.perf_counter() - t0, 3))
    key = await store.save(profile)
    if profile.usable:
        message = (f"Calibrated {target.collection!r}: a={weights.a:.4g} b={weights.b:.4g} c={weights.c:.4g}; the "
                   f"feedback model disagreed with the retriever on {signal.disagreement:.0%} of {len(clean)} queries. "
                   "Next: evaluate on separate queries, with relevance judgments if you have them.")
    else:
        message = ("Calibration stored as UNUSABLE: " + "; ".join(reasons) +
                   ". Searches will refuse it. Change the queries, train settings or the feedback model and recalibrate.")
    return CalibrationReport(profile=profile, stored_key=key, feedback_scores_used=rf.feedback_calls,
                             warnings=warnings, message=message)
