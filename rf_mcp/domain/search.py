"""The two search patterns of Qdrant's RF guide, alone or fused with BM25 sparse search.

* precision: top seeds (with their vectors) -> feedback scores -> RF query -> the RF results are final.
* recall: seeds by point id -> RF query with a budget -> score the new results -> merge with the seeds ->
  sort by feedback score.

With fusion = "sparse" the seeds come from the hybrid top (dense + BM25, reciprocal rank fusion) and the RF
query is fused with the BM25 query in one request (prefetch + RRF); RF itself stays in the dense space. Plain
hybrid search (no feedback) and vanilla search through the RF API (a=1, b=0, c=0) are the zero-cost modes.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from itertools import permutations

import numpy as np

from rf_mcp.domain import guardrails
from rf_mcp.domain.context import Target
from rf_mcp.domain.models import Hit, HitSource, Method, Pairing, ProfileRef, SearchResult, Weights
from rf_mcp.domain.payload import DOC_ID, doc_id_of, is_decimal
from rf_mcp.errors import GuardrailError, InputError
from rf_mcp.ports import (
    CollectionInfo,
    Engine,
    FeedbackItem,
    FieldCondition,
    Filter,
    Fusion,
    Match,
    Nearest,
    Point,
    PointId,
    Prefetch,
    QueryRequest,
    RelevanceFeedback,
    Rescore,
    SearchParams,
    SparseNearest,
    SparseVector,
)

MAX_QUERY_CHARS = 4000
MAX_LIMIT = 1000
FUSION_PREFETCH = 100
"""Results each side of a fusion contributes (dense or RF, and BM25) before reciprocal rank fusion."""


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
         source: HitSource) -> Hit:
    payload = point.payload
    shown = {k: v for k, v in payload.items() if k not in target.text_fields and k != DOC_ID}  # text is in `text`
    text = target.text(payload)
    cut = target.text_limit is not None and len(text) > target.text_limit
    return Hit(id=point.id, doc_id=doc_id_of(payload, target.id_field), rank=rank, score=float(score),
               feedback_score=fb, source=source, text=text[:target.text_limit] if cut else text, truncated=cut,
               payload=shown)


def _sparse_query(target: Target, query: str) -> SparseVector | None:
    return None if target.sparse is None else target.sparse.encoder.encode_query(query)


async def nearest(target: Target, qv: np.ndarray, limit: int, *, with_vector: bool = False,
                  exclude: Sequence[PointId] = ()) -> list[Point]:
    """Plain dense search (within the target's filter)."""
    using = target.vector_name
    return await target.engine.query(target.collection, QueryRequest(
        Nearest(qv.tolist(), using), limit, filter=Filter.combine(target.filter, exclude=exclude),
        with_vector=using if with_vector else None, params=nearest_params(target)))


def describe_params(target: Target, used: SearchParams | None, *, rf: bool = False) -> str:
    """The engine search an RF query (``rf``; else a plain search) ran with (``used``), as results report it."""
    if (used is not None and used.exact) or target.info.indexed_vectors == 0:
        return "exact"
    if used is None or used.hnsw_ef is None:
        return "hnsw (engine default breadth)"
    return (f"hnsw, hnsw_ef={used.hnsw_ef}" + ("" if target.params is not None else " (chosen from the feedback's pull)")
            + (", rescored with nearest-neighbour candidates" if rf else ""))


def _ranked(points: list[Point]) -> list[Point]:
    """Fused results in a stable order: reciprocal rank fusion ties often, and engines break ties differently."""
    return sorted(points, key=lambda p: (-p.score, str(p.id)))


async def hybrid(target: Target, query: str, qv: np.ndarray, limit: int, *, with_vector: bool = False,
                 exclude: Sequence[PointId] = ()) -> list[Point]:
    """Plain hybrid search: the dense and the BM25 top fused with RRF, in one query (dense alone without BM25)."""
    sq = _sparse_query(target, query)
    if sq is None or target.sparse is None:
        return await nearest(target, qv, limit, with_vector=with_vector, exclude=exclude)
    depth = max(limit, FUSION_PREFETCH)
    using = target.vector_name
    fused = Fusion((Prefetch(Nearest(qv.tolist(), using), depth), Prefetch(SparseNearest(sq, target.sparse.name), depth)))
    return _ranked(await target.engine.query(target.collection, QueryRequest(
        fused, limit, filter=Filter.combine(target.filter, exclude=exclude), with_vector=using if with_vector else None,
        params=nearest_params(target))))


async def candidates(target: Target, query: str, qv: np.ndarray, limit: int, *, with_vector: bool = False,
                     exclude: Sequence[PointId] = ()) -> list[Point]:
    """Where seeds and training candidates come from: the dense ANN top, or (hybrid seeds) the hybrid top."""
    if target.hybrid_seeds:
        return await hybrid(target, query, qv, limit, with_vector=with_vector, exclude=exclude)
    return await nearest(target, qv, limit, with_vector=with_vector, exclude=exclude)


def _selected(scores: Sequence[float], pairing: Pairing) -> list[int]:
    """Which seeds a search sends as feedback: every one, or only the best and the worst (one context pair)."""
    if pairing == "all" or len(scores) <= 2:
        return list(range(len(scores)))
    return [max(range(len(scores)), key=lambda i: scores[i]), min(range(len(scores)), key=lambda i: scores[i])]


def feedback_items(examples: Sequence[PointId | Sequence[float]], scores: Sequence[float],
                   pairing: Pairing) -> list[FeedbackItem]:
    """The feedback sent with the RF query: every seed, or only the best and the worst (one context pair)."""
    return [FeedbackItem(examples[i], scores[i]) for i in _selected(scores, pairing)]


# -- HNSW search breadth for the RF query ---------------------------------------------------------------------
# For cosine and dot similarity the RF score is linear in the document vector x:
#   a*sim(q, x) + sum c*(s_i - s_j)^b * (sim(f_i, x) - sim(f_j, x)) = (a*q + sum c*(s_i - s_j)^b * (f_i - f_j)) . x
# so the RF query is a nearest-neighbour search for that combined vector. HNSW finds its top as reliably as a plain
# search's while the feedback term is small next to a*q; the larger the feedback "pull", the further the combined
# vector lies from the data, the more a default-width HNSW search misses (benchmarks/LATENCY.md: overlap@10 with exact
# RF falls to 0.2-0.3 at 1M points). The search breadth grows with the pull: measured on 100k and 1M clustered vectors,
# these widths keep overlap@10 >= 0.95 at a few milliseconds.
RF_EF_STEPS = ((0.5, 256), (2.0, 2048), (math.inf, 4096))
"""(pull below, hnsw_ef): the breadth of an RF query whose feedback pull is below the first value."""
NEIGHBOURHOOD_STEPS = ((0.5, 100), (math.inf, 500))
"""(pull below, size): how many nearest neighbours of the query the RF formula is also scored on (:func:`rf_query`).
A large pull moves the RF top away from the query's closest points but, measured on 1M clustered points, not out of
its wider neighbourhood (ranks up to about 450 of the query's nearest), where the graph search can miss it."""
EXAMPLE_NEIGHBOURHOOD = 100
"""Nearest neighbours of each feedback example the RF formula is also scored on."""
QUERY_NEIGHBOURHOOD_EF = 512
"""HNSW breadth of the search for the query's neighbourhood: at 1M points the plain search at 256 found 0.99 of the
exact top 10, and with a small pull the RF top is nearly the query's own."""
EXACT_BELOW_EF_SHARE = 4
"""Search exactly when the chosen breadth is at least a quarter of the collection (measured: hnsw_ef=4096 on 10k
points is slower than an exact scan)."""


NEAREST_EF = 256
"""HNSW breadth of plain dense searches (seeds, candidates, vanilla): at 1M points the engine default found 0.96 of
the exact top 10 in our last run, this breadth 0.99, at under a millisecond (benchmarks/LATENCY.md)."""


def nearest_params(target: Target) -> SearchParams | None:
    """The caller's search parameters, else :data:`NEAREST_EF` on a collection with an HNSW index."""
    if target.params is not None:
        return target.params
    return None if target.info.indexed_vectors == 0 else SearchParams(hnsw_ef=NEAREST_EF)


def combined_vector(qv: np.ndarray, vectors: Sequence[Sequence[float]], scores: Sequence[float], weights: Weights,
                    distance: str) -> tuple[np.ndarray | None, float]:
    """The RF query's combined vector ``a*q + sum c*(s_i - s_j)^b * (f_i - f_j)`` (unit vectors for cosine; None
    when a feedback vector is missing or the weights overflow) and its pull: the feedback term's length relative to
    ``a*q`` (0: plain search)."""
    if not vectors or any(len(v) == 0 for v in vectors) or len(vectors) != len(scores):
        return None, 0.0
    unit = distance == "Cosine"

    def norm(v: Sequence[float] | np.ndarray) -> np.ndarray:
        x = np.asarray(v, dtype=np.float64)
        n = float(np.linalg.norm(x))
        return x / n if unit and n > 0 else x

    f = [norm(v) for v in vectors]
    term = np.zeros_like(f[0])
    for i, j in permutations(range(len(f)), 2):
        if scores[i] > scores[j]:
            try:
                strength = weights.c * (scores[i] - scores[j]) ** weights.b
            except OverflowError:
                return None, math.inf
            term += strength * (f[i] - f[j])
    q = norm(qv)
    base = abs(weights.a) * float(np.linalg.norm(q))
    return weights.a * q + term, (math.inf if base == 0 else float(np.linalg.norm(term)) / base)


def feedback_pull(qv: np.ndarray, vectors: Sequence[Sequence[float]], scores: Sequence[float], weights: Weights,
                  distance: str) -> float:
    """Length of the feedback term of the RF query vector relative to its query term a*q (0: plain search)."""
    return combined_vector(qv, vectors, scores, weights, distance)[1]


def rf_search_params(info: CollectionInfo, pull: float, explicit: SearchParams | None) -> SearchParams | None:
    """The engine search parameters of an RF query: the caller's, else none below the HNSW index (exact search),
    else an HNSW breadth chosen from the feedback pull."""
    if explicit is not None:
        return explicit
    if info.indexed_vectors == 0:
        return None
    ef = next(ef for below, ef in RF_EF_STEPS if pull < below)
    if ef * EXACT_BELOW_EF_SHARE >= info.points_count:  # a search that wide costs as much as scanning everything
        return SearchParams(exact=True)
    return SearchParams(hnsw_ef=ef)


def rf_query(info: CollectionInfo, using: str, distance: str, qv: np.ndarray, feedback: Sequence[FeedbackItem],
             weights: Weights, limit: int, *, vectors: Sequence[Sequence[float]] = (), flt: Filter | None = None,
             explicit: SearchParams | None = None) -> tuple[RelevanceFeedback | Rescore, SearchParams | None]:
    """The RF query an engine runs, and its search parameters (see :func:`rf_search_params`).

    On an HNSW index the engine's graph search for the RF formula can miss the formula's top entirely: at 1M points,
    whatever the breadth, one query in a few hundred got none of the exact top 10 (benchmarks/LATENCY.md), although
    that top lay among the nearest neighbours of the query. So the RF formula is scored exactly, in the same engine
    call, on the union of its own graph search, the query's nearest neighbours (:data:`NEIGHBOURHOOD_STEPS`) and
    each feedback example's (``vectors``); ``flt`` (with point-id examples left out) restricts every candidate
    search. Exact search (no index, or all these searches together as wide as a quarter of the collection) sends the
    RF query alone."""
    rf = RelevanceFeedback(qv.tolist(), list(feedback), weights.as_tuple(), using)
    v, pull = combined_vector(qv, vectors, [f.score for f in feedback], weights, distance)
    params = rf_search_params(info, pull, explicit)
    if params is None or params.exact or not info.indexed_vectors:
        return rf, params
    around = Filter.combine(flt, exclude=[f.example for f in feedback if isinstance(f.example, int | str)])
    size = next(size for below, size in NEIGHBOURHOOD_STEPS if pull < below)
    base = NEAREST_EF if explicit is None or explicit.hnsw_ef is None else explicit.hnsw_ef  # a caller's breadth: all

    def near(x: Sequence[float], k: int, ef: int = base) -> Prefetch:
        return Prefetch(Nearest([float(y) for y in x], using), k, around, SearchParams(hnsw_ef=max(ef, k)))

    examples = [x for x in vectors if len(x)] if pull > 0 else []  # no pull (vanilla): the query's neighbours only
    if v is not None and distance in ("Cosine", "Dot") and pull >= RF_EF_STEPS[0][0]:
        # the RF score is v.x: the same graph search as a plain one for v, which scores one similarity per point
        # instead of 1 + 2 per feedback pair (measured at 1M: as accurate at half the time)
        graph = near(v.tolist(), limit, params.hnsw_ef or base)
    else:
        graph = Prefetch(rf, limit, flt, params)
    prefetch = (graph, near(qv.tolist(), size, max(base, QUERY_NEIGHBOURHOOD_EF)),
                *(near(x, EXAMPLE_NEIGHBOURHOOD) for x in examples))
    breadth = sum(max(p.limit, (p.params.hnsw_ef or 0) if p.params else 0) for p in prefetch)
    if explicit is None and breadth * EXACT_BELOW_EF_SHARE >= info.points_count:  # as costly as a scan: scan
        return rf, SearchParams(exact=True)
    return Rescore(rf, prefetch), params


async def feedback_search(target: Target, query: str, qv: np.ndarray, feedback: Sequence[FeedbackItem],
                          weights: Weights, limit: int, *, vectors: Sequence[Sequence[float]] = (),
                          exclude: Sequence[PointId] = ()) -> tuple[list[Point], SearchParams | None]:
    """The RF query (:func:`rf_query`), fused with BM25 in the sparse mode, and the engine search parameters it ran
    with; ``exclude`` (and point-id examples) never come back. ``vectors`` are the feedback examples' vectors."""
    flt = Filter.combine(target.filter, exclude=exclude)
    sq = _sparse_query(target, query)
    fused = sq is not None and target.sparse is not None
    depth = max(limit, FUSION_PREFETCH) if fused else limit
    rf, params = rf_query(target.info, target.vector_name, target.distance, qv, feedback, weights, depth,
                          vectors=vectors, flt=flt, explicit=target.params)
    if not fused:
        return _finite(await target.engine.query(target.collection, QueryRequest(rf, limit, filter=flt,
                                                                                 params=params))), params
    assert sq is not None and target.sparse is not None
    return _ranked(await target.engine.query(target.collection, QueryRequest(  # rank fusion: finite by construction
        Fusion((Prefetch(rf, depth), Prefetch(SparseNearest(sq, target.sparse.name), depth))), limit,
        filter=flt, params=params))), params


def _finite(points: list[Point]) -> list[Point]:
    """RF scores as the engine computed them; an overflow (weights far outside any calibration) is refused."""
    if any(not math.isfinite(p.score) for p in points):
        raise GuardrailError(
            "The RF query produced non-finite scores: the calibration's weights overflow with these feedback scores.",
            fix="Recalibrate (rf-mcp calibrate), or roll back to the previous calibration.")
    return points


async def resolve_seed_ids(target: Target, raw: Sequence[PointId]) -> list[PointId]:
    """Seed ids as agents see them, each resolved to a point id: a string is a document's own id (``doc_id``) first,
    else a point id (a UUID, or a number written as a string); a JSON integer is a point id first, else a doc_id."""
    out, missing = await locate(target.engine, target.collection, target.id_field, raw, what="Seed id")
    if missing:
        raise InputError(f"Seed ids not found in {target.collection!r}: {missing[:10]}.",
                         fix="Pass ids or doc_ids of hits returned by a previous search.")
    return out


async def locate(engine: Engine, collection: str, id_field: str, raw: Sequence[PointId], *, what: str = "Id"
                 ) -> tuple[list[PointId], list[str]]:
    """Ids as agents see them resolved to existing point ids (see :func:`resolve_seed_ids`), and the ones not found."""
    for r in raw:
        if isinstance(r, bool) or not isinstance(r, int | str) or (isinstance(r, str) and not r.strip()):
            raise InputError(f"{what} {str(r)[:40]!r} is neither a point id nor a document id.",
                             fix="Pass ids or doc_ids of hits returned by a previous search.")
    keys = [r.strip() if isinstance(r, str) else r for r in raw]
    by_doc = await points_by_doc_id(engine, collection, id_field, [str(k) for k in keys])
    as_points = {k: _as_point_id(k) for k in keys}
    candidates_ = list(dict.fromkeys(v for v in as_points.values() if v is not None))
    existing = {p.id for p in await engine.retrieve(collection, candidates_)} if candidates_ else set()
    out: list[PointId] = []
    missing: list[str] = []
    for k in keys:
        point, doc = as_points[k], by_doc.get(str(k))
        first, second = (point, doc) if isinstance(k, int) else (doc, point)
        chosen = next((c for c in (first, second) if c is not None and (c is doc or c in existing)), None)
        if chosen is None:
            missing.append(str(k)[:40])
        else:
            out.append(chosen)
    return out, missing


def _as_point_id(key: int | str) -> PointId | None:
    """``key`` read as a Qdrant point id (an unsigned integer or a UUID), or None."""
    if isinstance(key, int):
        return key if 0 <= key < 2**64 else None
    if is_decimal(key) and len(key) < 20:
        return int(key) if int(key) < 2**64 else None
    try:
        return str(uuid.UUID(key))
    except ValueError:
        return None


async def points_by_doc_id(engine: Engine, collection: str, id_field: str, values: Sequence[str]
                           ) -> dict[str, PointId]:
    """The points whose ``id_field`` holds one of ``values`` (stored as a string, or as an integer)."""
    values = list(dict.fromkeys(values))
    numbers = [int(v) for v in values if is_decimal(v) and len(v) < 19]  # ids stored as integers match too
    flt = Filter(should=[FieldCondition(key=id_field, match=Match(any=list(values))),
                         *([FieldCondition(key=id_field, match=Match(any=list(numbers)))] if numbers else [])])
    found, _ = await engine.scroll(collection, limit=len(values) * 2 + 10, filter=flt)
    return {doc: p.id for p in found if (doc := doc_id_of(p.payload, id_field)) is not None}


async def _top_seeds(target: Target, query: str, qv: np.ndarray, seeds: int) -> list[Point]:
    """The seeds of a search: the top of its seed source, under the filter."""
    _seed_count_fits(target, seeds)
    points = await candidates(target, query, qv, seeds, with_vector=True)
    if target.filter is not None and len(points) < guardrails.MIN_SEEDS:
        raise InputError(
            f"The filter leaves {len(points)} matching point(s) in {target.collection!r}: RF needs at least "
            f"{guardrails.MIN_SEEDS} seeds.",
            fix="Loosen the filter, and check each condition's key and value type (a year stored as a number "
                'matches 2012, not "2012").')
    return points


async def _recall_seeds(target: Target, query: str, qv: np.ndarray, seeds: int,
                        seed_ids: Sequence[PointId] | None) -> list[Point]:
    if seed_ids:
        ids = list(dict.fromkeys(seed_ids))
        guardrails.seed_count(len(ids))
        points = await target.engine.retrieve(target.collection, ids, with_vector=target.vector_name)
        found = {p.id: p for p in points}
        missing = [i for i in ids if i not in found]
        if missing:
            raise InputError(f"Seed ids not found in {target.collection!r}: {[str(i) for i in missing[:10]]}.",
                             fix="Pass ids (or doc_ids) returned by a previous search.")
        return [found[i] for i in ids]
    return await _top_seeds(target, query, qv, seeds)


async def _recall_new(target: Target, query: str, qv: np.ndarray, seed_points: Sequence[Point],
                      seed_scores: Sequence[float], weights: Weights, pairing: Pairing,
                      budget: int) -> tuple[list[Point], SearchParams | None]:
    feedback = feedback_items([p.id for p in seed_points], seed_scores, pairing)
    vectors = [seed_points[i].vector or [] for i in _selected(seed_scores, pairing)]
    return await feedback_search(target, query, qv, feedback, weights, budget, vectors=vectors,
                                 exclude=[p.id for p in seed_points])


# -- the search patterns as plans --------------------------------------------------------------------------------
# A search is a plan that stops when it needs feedback scores: it yields a :class:`GradeRequest` ("grade these
# texts"), is resumed with the grades, and finally yields its :class:`SearchResult`. It embeds the query once and
# chooses its seeds once, whoever grades: a local feedback model answers at once (:func:`run`), the MCP client's LLM
# answers in a later round trip (the protocol layer keeps the suspended plan for that one request). What a step used
# (search parameters, cost) is returned with its result, never written onto shared objects.
@dataclass(frozen=True)
class GradeRequest:
    """Feedback scores wanted: one per text, higher = more relevant."""

    query: str
    texts: tuple[str, ...]


Plan = AsyncGenerator[GradeRequest | SearchResult, Sequence[float] | None]
Grader = Callable[[str, Sequence[str]], Awaitable[list[float]]]


async def run(plan: Plan, grade: Grader) -> SearchResult:
    """Run a plan to its result, answering its grade requests with ``grade`` (a local feedback model)."""
    try:
        step = await plan.__anext__()
        while isinstance(step, GradeRequest):
            step = await plan.asend(await grade(step.query, step.texts))
        return step
    finally:
        await plan.aclose()


def _checked(target: Target, raw: Sequence[float] | None, n: int) -> list[float]:
    if raw is None:
        raise GuardrailError("The feedback scores of this search never arrived.", fix="Retry the search.")
    return guardrails.finite_scores(list(raw), n, target.scorer.identity)


async def precision(target: Target, query: str, profile: ProfileRef, *, seeds: int = 5, limit: int = 10,
                    score_seeds: bool = True) -> Plan:
    """RF precision search; with ``score_seeds=False`` the zero-cost mode (vanilla through RF, or plain hybrid)."""
    query = check_query(query)
    check_limit("limit", limit)
    clock = _Clock()
    qv = await target.retriever.embed_query(query)
    clock.lap("embed")
    method: Method
    if not score_seeds and target.sparse is not None:  # plain hybrid search: dense + BM25, no feedback
        points = await hybrid(target, query, qv, limit)
        clock.lap("ann")
        hits = [_hit(target, p, i + 1, p.score, None, "hybrid") for i, p in enumerate(points)]
        yield SearchResult(mode="precision", method="hybrid", fusion="sparse", query=query,
                           collection=target.collection, hits=hits, feedback_scores_used=0, scoring_rounds=0,
                           profile=profile, search_params=describe_params(target, target.params), timings_ms=clock.laps)
        return
    seed_points = await _top_seeds(target, query, qv, seeds)
    clock.lap("ann")
    if score_seeds:
        texts = target.texts(seed_points)
        scores = _checked(target, (yield GradeRequest(query, tuple(texts))), len(texts))
        guardrails.seed_contrast(scores)
        method = "rf-precision" if target.sparse is None else "rf-precision+sparse"
    else:  # vanilla mode: c=0 makes the feedback terms vanish; no scoring is spent
        scores = [float(len(seed_points) - i) for i in range(len(seed_points))]
        method = "vanilla"
    clock.lap("scoring")
    feedback = feedback_items([p.vector or [] for p in seed_points], scores, profile.pairing)
    points, used = await feedback_search(target, query, qv, feedback, profile.weights, limit,
                                         vectors=[f.example for f in feedback if not isinstance(f.example, int | str)])
    clock.lap("rf_query")
    seed_scores = {p.id: s for p, s in zip(seed_points, scores, strict=True)} if score_seeds else {}
    source: HitSource = "rf" if score_seeds else "vanilla"
    hits = [_hit(target, p, i + 1, p.score, seed_scores.get(p.id), source) for i, p in enumerate(points)]
    yield SearchResult(mode="precision", method=method, fusion=target.fusion, query=query,
                       collection=target.collection, hits=hits, feedback_scores_used=len(seed_points) if score_seeds else 0,
                       scoring_rounds=1 if score_seeds else 0, profile=profile, search_params=describe_params(target, used, rf=True),
                       timings_ms=clock.laps)


async def recall(target: Target, query: str, profile: ProfileRef, *, seeds: int = 5, budget: int = 20,
                 limit: int | None = None, seed_ids: Sequence[PointId] | None = None) -> Plan:
    """RF recall search: seeds -> grades -> RF query with a budget -> grades of the new results -> merged by grade."""
    query = check_query(query)
    check_limit("budget", budget)
    clock = _Clock()
    qv = await target.retriever.embed_query(query)
    clock.lap("embed")
    seed_points = await _recall_seeds(target, query, qv, seeds, seed_ids)
    clock.lap("ann")
    texts = target.texts(seed_points)
    seed_scores = _checked(target, (yield GradeRequest(query, tuple(texts))), len(texts))
    guardrails.seed_contrast(seed_scores)
    clock.lap("scoring")
    rf_points, used = await _recall_new(target, query, qv, seed_points, seed_scores, profile.weights, profile.pairing,
                                        budget)
    clock.lap("rf_query")
    new_texts = [target.text(p.payload) for p in rf_points]
    rf_scores = _checked(target, (yield GradeRequest(query, tuple(new_texts))), len(new_texts)) if new_texts else []
    clock.lap("scoring")
    merged: list[tuple[float, Point, HitSource]] = [
        (s, p, "seed") for p, s in zip(seed_points, seed_scores, strict=True)]
    merged += [(s, p, "rf") for p, s in zip(rf_points, rf_scores, strict=True)]
    merged.sort(key=lambda t: t[0], reverse=True)
    merged = merged[: limit or len(merged)]
    hits = [_hit(target, p, i + 1, s, s, src) for i, (s, p, src) in enumerate(merged)]
    yield SearchResult(mode="recall", method="rf-recall" if target.sparse is None else "rf-recall+sparse",
                       fusion=target.fusion, query=query, collection=target.collection, hits=hits,
                       feedback_scores_used=len(seed_points) + len(rf_points), scoring_rounds=2, profile=profile,
                       search_params=describe_params(target, used, rf=True), timings_ms=clock.laps)
