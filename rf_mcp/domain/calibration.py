"""Calibration: fit a, b, c with the trainer port on the user's queries, judge the signal, store the profile.

A training query whose grades stay unusable after the feedback model's retry (:class:`UnusableGrades`, an LLM
judge's malformed reply) is skipped and counted, and the profile records how many and why; past
:data:`guardrails.MAX_SKIPPED_SHARE` of the queries the calibration fails. Every other model failure (connection,
timeout, refusal) aborts at once. A search never skips: its unusable grades fail it."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from rf_mcp.domain import guardrails, search
from rf_mcp.domain.context import Meter, Target
from rf_mcp.domain.models import CalibrationProfile, CalibrationReport, Pairing, Signal, Weights
from rf_mcp.domain.profiles import ProfileStore
from rf_mcp.domain.search import Grader
from rf_mcp.errors import GuardrailError, InputError, ModelError, UnusableGrades
from rf_mcp.ports import (
    FeedbackItem,
    HasId,
    Nearest,
    Point,
    PointId,
    Progress,
    QueryRequest,
    RelevanceFeedback,
    SkippedQuery,
    Trainer,
    TrainingJob,
    TrainSettings,
    Weights3,
)
from rf_mcp.ports import Filter as PortFilter

INVERTED_CORRELATION = -0.1  # heuristic: good feedback models correlate positively with the retriever


def query_hash(text: str) -> str:
    return hashlib.sha256(text.strip().lower().encode()).hexdigest()[:12]


REASON_CHARS = 200


class Skips:
    """The queries of one batch operation (calibrate, evaluate) whose grades stayed unusable after the feedback model's
    retry: skipped and counted; one past :func:`guardrails.max_skipped` of ``total`` fails the operation at once."""

    def __init__(self, total: int, what: str) -> None:
        self.total = total
        self.what = what  # "training", "evaluation"
        self.queries: set[str] = set()
        self.reason: str | None = None

    @property
    def count(self) -> int:
        return len(self.queries)

    def add(self, query: str, error: UnusableGrades) -> None:
        self.queries.add(query)
        if self.reason is None:
            reason = error.problem.rstrip(".")
            self.reason = reason if len(reason) <= REASON_CHARS else reason[:REASON_CHARS - 3] + "..."
        if self.count > guardrails.max_skipped(self.total):
            raise ModelError(
                f"The feedback model's grades stayed unusable after its retry for {self.count} of {self.total} "
                f"{self.what} queries ({self.count / self.total:.0%}), over the bound of "
                f"{guardrails.MAX_SKIPPED_SHARE:.0%} that may be skipped (first: {self.reason}). Nothing was stored.",
                fix='Use a feedback model that follows the JSON format: with an LLM judge, structured output ([feedback] '
                    'structured_output = "on" on an endpoint that takes it), a larger model or a lower '
                    "[feedback].batch_size.")

    def grader(self, score: Grader) -> Grader:
        """``score``, raising :class:`SkippedQuery` (for the trainer) for a query whose grades stayed unusable."""

        async def graded(query: str, texts: Sequence[str]) -> list[float]:
            try:
                return await score(query, texts)
            except UnusableGrades as exc:
                self.add(query, exc)
                raise SkippedQuery(query) from None

        return graded

    def note(self) -> str | None:
        """A warning naming the skipped queries and why, or None when none was skipped."""
        if not self.count:
            return None
        return (f"{self.count} of {self.total} {self.what} queries were skipped: the feedback model's grades stayed "
                f"unusable after its retry (first: {self.reason}); at most {guardrails.MAX_SKIPPED_SHARE:.0%} may be.")


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


def too_little_signal(signal: Signal, points_count: int | None = None, limit: int | None = None) -> str:
    """Why a calibration found nothing to learn, with the numbers, and what would be enough."""
    n = signal.queries_total - signal.queries_skipped
    need = math.ceil(guardrails.MIN_DISAGREEMENT * n - 1e-9)
    lo, hi = guardrails.RECOMMENDED_TRAIN_QUERIES
    size = ""
    if points_count is not None:
        size = f" in a collection of {points_count} documents"
        if limit:
            size += f" (each query's {limit} candidates are {min(limit / max(points_count, 1), 1):.0%} of it)"
    more = ["a feedback model that knows what the retriever does not (a cross-encoder or LLM judge; BM25 helps "
            "where exact rare terms, names or codes matter)"]
    if n < lo:
        more.insert(0, f"more real queries ({lo}-{hi}; {n} were given)")
    if points_count is not None and points_count < 1000:
        more.insert(0, "a larger collection (thousands of documents: on a small one the retriever's top candidates "
                       "already hold what the feedback model prefers)")
    skipped = f" graded ({signal.queries_skipped} skipped)" if signal.queries_skipped else ""
    return (f"the feedback model disagreed with the retriever on only {signal.queries_disagreeing} of {n}{skipped} "
            f"training queries ({signal.disagreement:.0%}; {signal.queries_with_pairs} had a usable pair of candidates){size}; "
            f"at least {need} ({guardrails.MIN_DISAGREEMENT:.0%}) must disagree for there to be anything to distil. "
            f"What would be enough: {', or '.join(more)}")


def judge(weights: Weights, signal: Signal, points_count: int | None = None, limit: int | None = None) -> list[str]:
    """Reasons a trained profile must not be used (empty list: usable). ``points_count`` and ``limit`` (the
    collection's size and the candidates per training query) make the too-little-signal reason concrete."""
    reasons = guardrails.weight_problems(*weights.as_tuple())
    if signal.disagreement < guardrails.MIN_DISAGREEMENT:
        reasons.append(too_little_signal(signal, points_count, limit))
    if signal.retriever_correlation is not None and signal.retriever_correlation < INVERTED_CORRELATION:
        reasons.append(f"the feedback scores fall as the retriever's similarity rises (Spearman "
                       f"{signal.retriever_correlation:+.2f}): they look like a distance, but RF needs higher = "
                       "more relevant; negate or fix the scorer")
    return reasons


def check_cost(target: Target, n_queries: int, settings: TrainSettings, cap: int | None) -> int:
    """Calibration scores queries x limit documents: refuse what the scorer cannot do or the cap forbids."""
    cost = n_queries * settings.limit
    if target.scorer.out_of_band:
        raise GuardrailError(
            f"Calibrating with the MCP client's own LLM would take {n_queries} sampling round trips and {cost} gradings.",
            fix='Calibrate with [feedback] transport = "http" on the same model (same identity), then search '
                "through sampling.")
    if cap is not None and cost > cap:
        raise InputError(
            f"Calibration would cost {cost} feedback-model scores ({n_queries} queries x limit {settings.limit}), "
            f"over the cap of {cap}.", fix="Raise max_feedback_scores, or use fewer queries or a lower limit.")
    return cost


def training_job(target: Target, progress: Progress | None = None, score: Grader | None = None) -> TrainingJob:
    """The trainer's view of a target: candidates from the search mode's seed source (dense, or dense + BM25),
    with their vectors and dense similarities; validated and counted feedback scores."""
    using = target.vector_name

    async def nearest(qv: np.ndarray, limit: int, exclude: Sequence[PointId] = ()) -> list[Point]:
        return await search.nearest(target, qv, limit, with_vector=True, exclude=exclude)

    async def candidates(query: str, qv: np.ndarray, limit: int) -> list[Point]:
        if target.sparse is None:
            return await nearest(qv, limit)
        points = await search.candidates(target, query, qv, limit, with_vector=True)
        # the formula's first term is the dense similarity: ask the engine for it, for exactly these points
        dense = await target.engine.query(target.collection, QueryRequest(
            Nearest(qv.tolist(), using), len(points), filter=PortFilter(must=[HasId(has_id=[p.id for p in points])])))
        sims = {p.id: p.score for p in dense}
        for p in points:
            p.score = sims[p.id]
        return points

    async def relevance_feedback(qv: np.ndarray, feedback: Sequence[FeedbackItem], weights: Weights3,
                                 limit: int) -> list[Point]:
        return await target.engine.query(target.collection, QueryRequest(
            RelevanceFeedback(qv.tolist(), list(feedback), weights, using), limit, with_vector=using))

    async def texts(points: Sequence[Point]) -> list[str]:
        return target.texts(points)

    return TrainingJob(collection=target.collection, vector_name=using, distance=target.distance,
                       embed=target.retriever.embed_query, candidates=candidates, nearest=nearest,
                       relevance_feedback=relevance_feedback, score=score or target.score, text=target.text, texts=texts,
                       progress=progress)


async def calibrate(target: Target, trainer: Trainer, queries: Sequence[str], settings: TrainSettings,
                    store: ProfileStore, progress: Progress | None = None, max_feedback_scores: int | None = None,
                    pairing: Pairing = "all") -> CalibrationReport:
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
    t0 = time.perf_counter()
    meter = Meter(target)
    skips = Skips(len(clean), "training")
    async with store.lock(target.collection, parts.key):
        outcome = await trainer.train(training_job(target, progress, skips.grader(meter.score)), clean, settings)
        weights = Weights(a=outcome.weights[0], b=outcome.weights[1], c=outcome.weights[2])
        graded = len(clean) - skips.count
        signal = Signal(disagreement=round(outcome.queries_disagreeing / graded, 6), queries_total=len(clean),
                        queries_with_pairs=outcome.queries_with_pairs, queries_disagreeing=outcome.queries_disagreeing,
                        queries_skipped=skips.count, skipped_reason=skips.reason,
                        library_reported=outcome.library_reported, retriever_correlation=outcome.retriever_correlation)
        reasons = judge(weights, signal, target.info.points_count, settings.limit)
        profile = CalibrationProfile(
            fingerprint=parts.fingerprint, collection=target.collection, vector_name=target.vector_name,
            retriever=parts.retriever, feedback=parts.feedback, seed_source=parts.seed_source, pairing=pairing,
            text_fields=list(parts.text_fields),
            trainer=trainer.identity, weights=weights, usable=not reasons,
            reasons=reasons, signal=signal, train=settings, query_count=len(clean),
            query_hashes=[query_hash(q) for q in clean], points_count=target.info.points_count,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            seconds=round(time.perf_counter() - t0, 3))
    key = await store.save(profile)
    if note := skips.note():
        warnings.append(note)
    if profile.usable:
        message = (f"Calibrated {target.collection!r}: a={weights.a:.4g} b={weights.b:.4g} c={weights.c:.4g}; the "
                   f"feedback model disagreed with the retriever on {signal.disagreement:.0%} of {graded} graded queries. "
                   "Next: evaluate on separate queries, with relevance judgments if you have them.")
    else:
        message = ("Calibration stored as UNUSABLE: " + "; ".join(reasons) +
                   ". Searches will refuse it. Change the queries, train settings or the feedback model and recalibrate.")
    if skips.count:
        message += f" {skips.count} of {len(clean)} training queries were skipped (unusable grades; see warnings)."
    return CalibrationReport(profile=profile, stored_key=key, feedback_scores_used=meter.count,
                             warnings=warnings, message=message)
