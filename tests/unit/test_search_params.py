"""HNSW search breadth of RF queries: the RF score is linear in the document vector (cosine, dot), the breadth grows
with the feedback's pull, explicit parameters win, and every result says how the engine searched."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rf_mcp.adapters.engines.memory import MemoryEngine
from rf_mcp.config import Config
from rf_mcp.domain import search
from rf_mcp.domain.models import Weights
from rf_mcp.ports import (
    CollectionInfo,
    CollectionSpec,
    FeedbackItem,
    FieldCondition,
    Filter,
    Match,
    Nearest,
    PointInput,
    QueryRequest,
    RelevanceFeedback,
    Rescore,
    SearchParams,
)
from tests import doubles

pytestmark = pytest.mark.anyio
Q = "tau protein in the brain cortex"


@pytest.mark.parametrize("distance", ["Cosine", "Dot"])
async def test_the_rf_score_is_the_dot_product_with_one_combined_vector(distance):
    """What the breadth policy rests on: a*sim(q,x) + sum c*(s_i-s_j)^b*(sim(f_i,x)-sim(f_j,x)) = v.x, with
    v = a*q + sum c*(s_i-s_j)^b*(f_i-f_j) (unit vectors for cosine), checked against the engine double's RF query
    (itself checked against Qdrant's engines in test_congruence)."""
    rng = np.random.default_rng(3)
    dim, n = 16, 200
    docs = rng.normal(size=(n, dim))
    engine = MemoryEngine()
    await engine.create_collection("c", CollectionSpec("dense", dim, distance))
    await engine.upsert("c", [PointInput(i + 1, {"dense": docs[i].tolist()}, {}) for i in range(n)])
    q, feedback = rng.normal(size=dim), rng.normal(size=(4, dim))
    scores, w = [0.9, 0.1, 0.5, 0.3], Weights(a=0.2, b=0.6, c=0.4)
    got = await engine.query("c", QueryRequest(RelevanceFeedback(
        q.tolist(), [FeedbackItem(f.tolist(), s) for f, s in zip(feedback, scores, strict=True)], w.as_tuple(), "dense"), 10))

    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.linalg.norm(x, axis=-1, keepdims=True) if distance == "Cosine" else x

    v = w.a * unit(q)
    for i in range(4):
        for j in range(4):
            if scores[i] > scores[j]:
                v = v + w.c * (scores[i] - scores[j]) ** w.b * (unit(feedback[i]) - unit(feedback[j]))
    expected = unit(docs) @ v
    assert [p.id for p in got] == list(np.argsort(-expected)[:10] + 1)
    assert np.allclose([p.score for p in got], np.sort(expected)[::-1][:10], atol=1e-4)
    pull = search.feedback_pull(q, list(feedback), scores, w, distance)
    assert pull == pytest.approx(np.linalg.norm(v - w.a * unit(q)) / np.linalg.norm(w.a * unit(q)))


@settings(max_examples=50, deadline=None)
@given(c=st.floats(0.0, 1.0), a=st.floats(0.01, 1.0))
def test_pull_grows_with_c_and_vanishes_without_feedback(c, a):
    rng = np.random.default_rng(0)
    q, f = rng.normal(size=8), list(rng.normal(size=(3, 8)))
    scores = [0.8, 0.2, 0.5]
    small = search.feedback_pull(q, f, scores, Weights(a=a, b=0.5, c=c / 2), "Cosine")
    large = search.feedback_pull(q, f, scores, Weights(a=a, b=0.5, c=c), "Cosine")
    assert large == pytest.approx(2 * small)
    assert search.feedback_pull(q, f, [0.5, 0.5, 0.5], Weights(a=a, b=0.5, c=c), "Cosine") == 0.0


def test_breadth_policy():
    hnsw = CollectionInfo(name="c", points_count=1_000_000, vectors=[], indexed_vectors=1_000_000)
    exact = CollectionInfo(name="c", points_count=5_000, vectors=[], indexed_vectors=0)
    assert search.rf_search_params(exact, 10.0, None) is None  # no HNSW index: the engine searches exactly
    assert search.rf_search_params(hnsw, 0.1, None) == SearchParams(hnsw_ef=256)
    assert search.rf_search_params(hnsw, 1.0, None) == SearchParams(hnsw_ef=2048)
    assert search.rf_search_params(hnsw, 8.0, None) == SearchParams(hnsw_ef=4096)
    small = hnsw.model_copy(update={"points_count": 10_000, "indexed_vectors": 10_000})
    assert search.rf_search_params(small, 1.0, None) == SearchParams(hnsw_ef=2048)
    assert search.rf_search_params(small, 8.0, None) == SearchParams(exact=True)  # as wide as a quarter: scan it
    mine = SearchParams(exact=True)
    assert search.rf_search_params(hnsw, 8.0, mine) is mine


class Spy(MemoryEngine):
    """The in-memory engine, recording the search parameters of every query."""

    seen: list[SearchParams | None]

    async def query(self, collection, request):
        self.seen.append(request.params)
        return await super().query(collection, request)


async def test_parameters_reach_the_engine_and_results_say_so(templates):
    engine = copy.deepcopy(templates["calibrated"])
    engine.__class__ = Spy
    engine.seen = []
    rf = doubles.service(engine=engine)
    res = await rf.search_precision("docs", Q)
    assert res.search_params == "exact" and set(engine.seen) == {None}  # no HNSW index in the double
    engine.seen.clear()
    res = await rf.search_recall("docs", Q, hnsw_ef=300, fusion="sparse")
    assert set(engine.seen) == {SearchParams(hnsw_ef=300)}
    assert res.search_params == "exact"  # without an HNSW index every search is exact, whatever the breadth
    engine.seen.clear()
    res = await rf.search_precision("docs", Q, exact=True, fusion="none")
    assert res.search_params == "exact" and set(engine.seen) == {SearchParams(exact=True)}
    cfg = Config.model_validate({"qdrant": {"backend": "memory"}, "search": {"hnsw_ef": 128}})
    engine.seen.clear()
    res = await doubles.service(cfg, engine=engine).search_precision("docs", Q)
    assert set(engine.seen) == {SearchParams(hnsw_ef=128)}
    assert res.search_params == "exact"
    target = await doubles.service(cfg, engine=engine).target("docs")
    target = dataclasses.replace(target, info=target.info.model_copy(update={"indexed_vectors": target.info.points_count}))
    assert search.describe_params(target, target.params) == "hnsw, hnsw_ef=128"  # with an index, the result names the breadth


async def test_recall_seeds_carry_their_vectors_for_the_policy(templates, monkeypatch):
    """Recall sends seeds by id, but the breadth is chosen from their vectors: both reach the policy."""
    pulls: list[float] = []
    choose = search.rf_search_params

    def spy(info, pull, explicit):
        pulls.append(pull)
        return choose(info, pull, explicit)

    monkeypatch.setattr(search, "rf_search_params", spy)
    rf = doubles.service(engine=copy.deepcopy(templates["calibrated"]))
    await rf.search_recall("docs", Q)
    await rf.search_recall("docs", Q, seed_ids=["d1", "d2", "d3"])
    await rf.search_precision("docs", Q)
    assert len(pulls) == 3 and all(p > 0 for p in pulls)


class TrappedGraph(MemoryEngine):
    """A model of the collapse measured at 1M points (benchmarks/LATENCY.md): the engine's HNSW graph search for the
    RF formula gets trapped in a far region (``trap``) and returns the best points there, none of the exact top 10,
    while plain nearest-neighbour searches and the exact scoring of given candidates stay right. Every collection
    reports an HNSW index, so rf-mcp searches with a breadth, not exactly."""

    def __init__(self, trap: set[int]) -> None:
        super().__init__()
        self.trap = trap
        self.exact = False

    async def describe(self, collection: str) -> CollectionInfo:
        info = await super().describe(collection)
        return info.model_copy(update={"indexed_vectors": info.points_count})

    async def query(self, collection: str, request: QueryRequest) -> list:  # type: ignore[type-arg]
        self.exact = request.params is not None and request.params.exact
        return await super().query(collection, request)

    def _scored(self, c, query, flt, limit, among=None):  # type: ignore[no-untyped-def]
        if isinstance(query, RelevanceFeedback) and among is None and not self.exact:  # a graph search: trapped
            among = self.trap
        return super()._scored(c, query, flt, limit, among)


async def test_a_trapped_rf_graph_search_is_rescued_by_the_plain_neighbourhoods():
    """The collapse mechanism on a constructed case: before the fix (the RF query sent alone) the search returns none
    of the exact top 10; rf-mcp's query scores the RF formula on its graph search and on the plain neighbourhoods of
    the query and of the feedback examples, and returns the exact top 10."""
    rng = np.random.default_rng(5)
    dim = 16
    centre, far = rng.normal(size=dim), rng.normal(size=dim)
    near_docs = centre + 0.6 * rng.normal(size=(300, dim))
    far_docs = far + 0.6 * rng.normal(size=(9700, dim))  # enough points for an HNSW search to beat a scan
    docs = np.vstack([near_docs, far_docs])
    engine = TrappedGraph(trap=set(range(301, 10001)))  # the far cluster's ids
    await engine.create_collection("c", CollectionSpec("dense", dim))
    await engine.upsert("c", [PointInput(i + 1, {"dense": docs[i].tolist()}, {}) for i in range(len(docs))])
    info = await engine.describe("c")
    q = centre + 0.3 * rng.normal(size=dim)
    seeds = near_docs[:5]
    weights = Weights(a=0.15, b=0.4, c=0.007)
    feedback = [FeedbackItem(s.tolist(), float(g)) for s, g in zip(seeds, [0.9, 0.7, 0.5, 0.3, 0.1], strict=True)]
    rf = RelevanceFeedback(q.tolist(), feedback, weights.as_tuple(), "dense")
    exact = {p.id for p in await engine.query("c", QueryRequest(rf, 10, params=SearchParams(exact=True)))}
    assert exact <= set(range(1, 301))

    sent, params = search.rf_query(info, "dense", "Cosine", q, feedback, weights, 10, vectors=[s.tolist() for s in seeds])
    assert params == SearchParams(hnsw_ef=256)  # a small pull: the default breadth, as in the 1M collapse
    alone = {p.id for p in await engine.query("c", QueryRequest(rf, 10, params=params))}
    assert not alone & exact  # the RF query on its own: trapped, none of the exact top 10
    got = await engine.query("c", QueryRequest(sent, 10, params=params))
    assert {p.id for p in got} == exact
    small = info.model_copy(update={"points_count": 5000, "indexed_vectors": 5000})  # the searches would cost a scan
    sent, params = search.rf_query(small, "dense", "Cosine", q, feedback, weights, 10, vectors=[s.tolist() for s in seeds])
    assert isinstance(sent, RelevanceFeedback) and params == SearchParams(exact=True)


def test_what_rf_query_sends():
    """The candidate searches rf_query adds: the filter on each (point-id examples left out of the neighbourhoods), a
    caller's breadth on all of them, none without an index, only the query's without a pull, and a scan when they
    would cost as much (the RF search's own limit counted)."""
    rng = np.random.default_rng(9)
    q, seeds = rng.normal(size=8), rng.normal(size=(5, 8))
    w = Weights(a=0.2, b=0.5, c=0.05)
    feedback = [FeedbackItem(i + 1, s) for i, s in enumerate([0.9, 0.7, 0.5, 0.3, 0.1])]  # point-id examples
    flt = Filter(must=[FieldCondition(key="lang", match=Match(value="en"))])
    vectors = [s.tolist() for s in seeds]

    def info(points: int, indexed: int) -> CollectionInfo:
        return CollectionInfo(name="c", points_count=points, vectors=[], indexed_vectors=indexed)

    small = Weights(a=0.2, b=0.5, c=0.005)  # a small pull: hnsw_ef 256, 100 neighbours of the query
    assert search.feedback_pull(q, vectors, [f.score for f in feedback], small, "Cosine") < 0.5
    sent, params = search.rf_query(info(100_000, 100_000), "dense", "Cosine", q, feedback, small, 10, vectors=vectors,
                                   flt=flt)
    assert isinstance(sent, Rescore) and params == SearchParams(hnsw_ef=256)
    own, query, *examples = sent.prefetch
    assert own.query is sent.query and own.filter == flt and own.params == params and own.limit == 10
    assert query.query == Nearest(q.tolist(), "dense") and query.limit == 100
    assert query.params == SearchParams(hnsw_ef=search.QUERY_NEIGHBOURHOOD_EF)
    assert [p.query.vector for p in examples] == vectors  # type: ignore[union-attr]
    assert all(p.limit == 100 and p.params == SearchParams(hnsw_ef=search.NEAREST_EF) for p in examples)
    assert all(p.filter == Filter.combine(flt, exclude=[1, 2, 3, 4, 5]) for p in (query, *examples))

    # a large pull (cosine, dot): the graph search is a plain one for the combined vector, at the pull's breadth
    assert search.feedback_pull(q, vectors, [f.score for f in feedback], w, "Cosine") >= 0.5
    sent, params = search.rf_query(info(100_000, 100_000), "dense", "Cosine", q, feedback, w, 10, vectors=vectors)
    graph = sent.prefetch[0]  # type: ignore[union-attr]
    v, _ = search.combined_vector(q, vectors, [f.score for f in feedback], w, "Cosine")
    assert isinstance(graph.query, Nearest) and np.allclose(graph.query.vector, v) and graph.params == params
    sent, _ = search.rf_query(info(100_000, 100_000), "dense", "Euclid", q, feedback, w, 10, vectors=vectors)
    assert isinstance(sent.prefetch[0].query, RelevanceFeedback)  # type: ignore[union-attr]  # not linear: RF itself

    mine = SearchParams(hnsw_ef=1000)
    sent, params = search.rf_query(info(100_000, 100_000), "dense", "Cosine", q, feedback, w, 10, vectors=vectors,
                                   explicit=mine)
    assert params is mine and isinstance(sent, Rescore)
    assert all(p.params == mine for p in sent.prefetch[2:])  # the caller's breadth on every search
    assert sent.prefetch[0].params == mine and sent.prefetch[1].params == SearchParams(hnsw_ef=1000)
    sent, params = search.rf_query(info(100_000, 0), "dense", "Cosine", q, feedback, w, 10, vectors=vectors,
                                   explicit=SearchParams(hnsw_ef=128))
    assert isinstance(sent, RelevanceFeedback)  # no index: one scan, not seven

    vanilla = Weights(a=1.0, b=0.0, c=0.0)
    sent, _ = search.rf_query(info(100_000, 100_000), "dense", "Cosine", q, feedback, vanilla, 10, vectors=vectors)
    assert isinstance(sent, Rescore) and len(sent.prefetch) == 2  # no pull: the examples' neighbours cannot matter

    sent, _ = search.rf_query(info(10_000, 10_000), "dense", "Cosine", q, feedback, small, 10, vectors=vectors)
    assert isinstance(sent, Rescore)
    sent, params = search.rf_query(info(10_000, 10_000), "dense", "Cosine", q, feedback, small, 1000, vectors=vectors)
    assert isinstance(sent, RelevanceFeedback) and params == SearchParams(exact=True)  # a budget of 1,000 counts
