"""The two search patterns of Qdrant's RF guide.

* precision: top-N ANN seeds (vectors) -> feedback scores -> RF query -> RF results are final.
* recall: seeds by point id -> RF query with a budget -> score the new results -> merge with the
  seeds -> sort by feedback score.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Literal

import numpy as np

from rf_mcp.domain import guardrails
from rf_mcp.domain.context import Target
from rf_mcp.domain.models import Hit, ProfileRef, SearchResult, Weights
from rf_mcp.domain.payload import DOC_ID
from rf_mcp.errors import GuardrailError, InputError
from rf_mcp.ports import FeedbackItem, Nearest, Point, PointId, QueryRequest, RelevanceFeedback

MAX_QUERY_CHARS = 4000
MAX_LIMIT = 1000


class _Clock:
    def __init__(self) -> None:
        self.t = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(self.laps.get(name, 0.0) + (now - self.t) * 1000, 3)
        self.t = now


def check_query(query: str) -> str:
    q = (query or "").strip()
    if not q:
        raise InputError("The query is empty.", fix="Pass the user's question as text.")
    if len(q) > MAX_QUERY_CHARS:
        raise InputError(f"The query has {len(q)} characters (at most {MAX_QUERY_CHARS}).",
                         fix="Shorten it to the information need.")
    return q


def check_limit(name: str, value: int, maximum: int = MAX_LIMIT) -> None:
    if not 1 <= value <= maximum:
        raise InputError(f"{name}={value} is out of range (1..{maximum}).", fix=f"Use a {name} between 1 and {maximum}.")


def _seed_count_fits(target: Target, seeds: int) -> None:
    guardrails.seed_count(seeds)
    if target.info.points_count < seeds:
        raise GuardrailError(
            f"Collection {target.collection!r} has {target.info.points_count} points, fewer than the {seeds} seeds asked for.",
            fix="Index more documents, or ask for fewer seeds (at least 2).",
        )


def _hit(target: Target, point: Point, rank: int, score: float, fb: float | None,
         source: Literal["seed", "rf"]) -> Hit:
    payload = dict(point.payload)
    doc_id = payload.pop(DOC_ID, None)
    extra = {k: v for k, v in payload.items() if k not in target.text_fields}  # the text fields are in `text`
    return Hit(id=point.id, doc_id=None if doc_id is None else str(doc_id), rank=rank, score=float(score),
               feedback_score=fb, source=source, text=target.text(payload), payload=extra)


async def nearest(target: Target, qv: np.ndarray, limit: int, *, with_vector: bool = False) -> list[Point]:
    using = target.vector_name
    return await target.engine.query(target.collection, QueryRequest(
        Nearest(qv.tolist(), using), limit, with_vector=using if with_vector else None))


async def _precision_seeds(target: Target, qv: np.ndarray, seeds: int) -> list[Point]:
    _seed_count_fits(target, seeds)
    return await nearest(target, qv, seeds, with_vector=True)


async def _recall_seeds(target: Target, qv: np.ndarray, seeds: int, seed_ids: Sequence[PointId] | None) -> list[Point]:
    if seed_ids:
        ids = list(dict.fromkeys(seed_ids))
        guardrails.seed_count(len(ids))
        points = await target.engine.retrieve(target.collection, ids)
        missing = set(map(str, ids)) - {str(p.id) for p in points}
        if missing:
            raise InputError(f"Seed ids not found in {target.collection!r}: {sorted(missing)[:10]}.",
                             fix="Pass point ids returned by a previous search.")
        return points
    _seed_count_fits(target, seeds)
    return await nearest(target, qv, seeds)


async def _recall_new(target: Target, qv: np.ndarray, seed_points: Sequence[Point], seed_scores: Sequence[float],
                      weights: Weights, budget: int) -> list[Point]:
    feedback = [FeedbackItem(p.id, s) for p, s in zip(seed_points, seed_scores, strict=True)]
    return await target.engine.query(target.collection, QueryRequest(
        RelevanceFeedback(qv.tolist(), feedback, weights.as_tuple(), target.vector_name), budget))


async def precision_seed_texts(target: Target, query: str, seeds: int) -> list[str]:
    """The documents a precision search will ask the feedback model to score (for out-of-band scorers)."""
    qv = await target.retriever.embed_query(check_query(query))
    return [target.text(p.payload) for p in await _precision_seeds(target, qv, seeds)]


async def recall_seed_texts(target: Target, query: str, seeds: int, seed_ids: Sequence[PointId] | None) -> list[str]:
    qv = await target.retriever.embed_query(check_query(query))
    return [target.text(p.payload) for p in await _recall_seeds(target, qv, seeds, seed_ids)]


async def recall_new_texts(target: Target, query: str, weights: Weights, seeds: int, budget: int,
                           seed_ids: Sequence[PointId] | None) -> list[str]:
    """The second scoring round of a recall search (needs the seeds' scores from the scorer)."""
    query = check_query(query)
    check_limit("budget", budget)
    qv = await target.retriever.embed_query(query)
    seed_points = await _recall_seeds(target, qv, seeds, seed_ids)
    seed_scores = await target.score(query, [target.text(p.payload) for p in seed_points])
    guardrails.seed_contrast(seed_scores)
    return [target.text(p.payload) for p in await _recall_new(target, qv, seed_points, seed_scores, weights, budget)]


async def precision(target: Target, query: str, weights: Weights, profile: ProfileRef, *, seeds: int = 5,
                    limit: int = 10, score_seeds: bool = True) -> SearchResult:
    query = check_query(query)
    check_limit("limit", limit)
    start = target.scored
    clock = _Clock()
    qv = await target.retriever.embed_query(query)
    clock.lap("embed")
    seed_points = await _precision_seeds(target, qv, seeds)
    clock.lap("ann")
    if score_seeds:
        scores = await target.score(query, [target.text(p.payload) for p in seed_points])
        guardrails.seed_contrast(scores)
    else:  # vanilla mode: c=0 makes the feedback terms vanish; no scoring is spent
        scores = [float(len(seed_points) - i) for i in range(len(seed_points))]
    clock.lap("scoring")
    feedback = [FeedbackItem(p.vector or [], s) for p, s in zip(seed_points, scores, strict=True)]
    points = await target.engine.query(target.collection, QueryRequest(
        RelevanceFeedback(qv.tolist(), feedback, weights.as_tuple(), target.vector_name), limit))
    clock.lap("rf_query")
    seed_scores = {p.id: s for p, s in zip(seed_points, scores, strict=True)} if score_seeds else {}
    hits = [_hit(target, p, i + 1, p.score, seed_scores.get(p.id), "rf") for i, p in enumerate(points)]
    return SearchResult(mode="precision", query=query, collection=target.collection, hits=hits,
                        feedback_scores_used=target.scored - start, scoring_rounds=1 if score_seeds else 0,
                        profile=profile, timings_ms=clock.laps)


async def recall(target: Target, query: str, weights: Weights, profile: ProfileRef, *, seeds: int = 5,
                 budget: int = 20, limit: int | None = None,
                 seed_ids: Sequence[PointId] | None = None) -> SearchResult:
    query = check_query(query)
    check_limit("budget", budget)
    clock = _Clock()
    start = target.scored
    qv = await target.retriever.embed_query(query)
    clock.lap("embed")
    seed_points = await _recall_seeds(target, qv, seeds, seed_ids)
    clock.lap("ann")
    seed_scores = await target.score(query, [target.text(p.payload) for p in seed_points])
    guardrails.seed_contrast(seed_scores)
    clock.lap("scoring")
    rf_points = await _recall_new(target, qv, seed_points, seed_scores, weights, budget)
    clock.lap("rf_query")
    rf_scores = await target.score(query, [target.text(p.payload) for p in rf_points])
    clock.lap("scoring")
    merged: list[tuple[float, Point, Literal["seed", "rf"]]] = [
        (s, p, "seed") for p, s in zip(seed_points, seed_scores, strict=True)]
    merged += [(s, p, "rf") for p, s in zip(rf_points, rf_scores, strict=True)]
    merged.sort(key=lambda t: t[0], reverse=True)
    merged = merged[: limit or len(merged)]
    hits = [_hit(target, p, i + 1, s, s, src) for i, (s, p, src) in enumerate(merged)]
    return SearchResult(mode="recall", query=query, collection=target.collection, hits=hits,
                        feedback_scores_used=target.scored - start, scoring_rounds=2, profile=profile,
                        timings_ms=clock.laps)
