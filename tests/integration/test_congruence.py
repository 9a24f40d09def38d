"""Congruence: the same requests give the same results on every engine of the port.

The in-memory double, qdrant-edge and qdrant-client's embedded engine (and a Qdrant server when
RF_MCP_TEST_QDRANT_URL names one) run identical scenarios: nearest search with filters, relevance feedback
with point-id and vector examples, BM25 sparse search with the IDF modifier, RRF fusion, payload filters on
dotted paths and arrays, retrieval, scrolling, vector updates and metadata. No model and no shared data needed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from itertools import groupby

import numpy as np
import pytest

from rf_mcp import factory
from rf_mcp.adapters.analyzer import Bm25Encoder
from rf_mcp.adapters.engines.client import ClientEngine
from rf_mcp.adapters.engines.edge import EdgeEngine
from rf_mcp.adapters.engines.memory import MemoryEngine
from rf_mcp.config import QdrantSettings
from rf_mcp.errors import EngineError, InputError
from rf_mcp.ports import (
    CollectionSpec,
    Engine,
    FeedbackItem,
    FieldCondition,
    Filter,
    Fusion,
    HasId,
    Match,
    Nearest,
    Point,
    PointInput,
    Prefetch,
    QueryRequest,
    Range,
    RelevanceFeedback,
    Rescore,
    SearchParams,
    SparseNearest,
    SparseVector,
)

pytestmark = pytest.mark.anyio
N, DIM, TERMS = 600, 16, 60
WORDS = ["cell", "stem", "neuron", "tau", "protein", "gene", "cancer", "risk", "vitamin", "insulin", "obesity",
         "bacteria", "immune", "virus", "brain", "heart", "blood", "drug", "trial", "mouse"]
SERVER = os.environ.get("RF_MCP_TEST_QDRANT_URL")
ENGINES = ["memory", "edge", "local", "edge-process"] + (["server"] if SERVER else [])


def data(seed: int = 0) -> tuple[np.ndarray, list[dict], list[SparseVector]]:
    """Clustered dense vectors, payloads, and sparse vectors with random weights (no tied scores: engines may
    order ties differently, and RRF would carry that into the fused scores)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, DIM))
    vectors = (centres[rng.integers(0, 12, N)] + 0.5 * rng.normal(size=(N, DIM))).astype(np.float32)
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 15)))) for _ in range(N)]
    sparse = []
    for _ in range(N):
        idx = sorted(int(i) for i in rng.choice(TERMS, size=int(rng.integers(2, 12)), replace=False))
        sparse.append(SparseVector(tuple(idx), tuple(float(v) for v in rng.uniform(0.1, 3.0, len(idx)))))
    payloads = [{"i": i, "group": f"g{i % 5}", "year": 1990 + i % 30, "flag": i % 3 == 0, "text": texts[i],
                 "metadata": {"lang": ["en", "de", "fr"][i % 3], "tags": [f"t{i % 4}", f"t{i % 7}"],
                              "score": float(i % 10) / 2,
                              "ref": str(1000 + i) if i % 2 else 1000 + i}} for i in range(N)]  # ids of both kinds
    return vectors, payloads, sparse


def pid(i: int) -> int | str:
    """Half the points have integer ids, half UUIDs (string ids must come back as strings on every engine)."""
    return i + 1 if i % 2 else str(uuid.uuid5(uuid.NAMESPACE_URL, f"doc-{i}"))


def open_engine(kind: str, tmp) -> Engine:
    if kind == "memory":
        return MemoryEngine()
    if kind == "edge":
        return EdgeEngine(QdrantSettings(path=str(tmp / "edge"), backend="edge"))
    if kind == "local":
        return ClientEngine(QdrantSettings(path=str(tmp / "local"), backend="local"))
    if kind == "edge-process":  # the edge engine in its own process: every call crosses the socket
        return factory.open_engine(QdrantSettings(path=str(tmp / "edge-process"), backend="edge", engine_process="on"))
    return ClientEngine(QdrantSettings(url=SERVER))


@pytest.fixture(scope="module")
def corpus():
    return data()


@pytest.fixture(params=ENGINES)
async def engine(request, tmp_path, corpus) -> AsyncIterator[Engine]:
    vectors, payloads, sparse = corpus
    e = open_engine(request.param, tmp_path)
    name = f"cong_{uuid.uuid4().hex[:8]}"
    await e.create_collection(name, CollectionSpec("dense", DIM, "Cosine", ("bm25",)))
    for start in range(0, N, 200):
        await e.upsert(name, [PointInput(pid(i), {"dense": vectors[i].tolist(), "bm25": sparse[i]}, payloads[i])
                              for i in range(start, min(N, start + 200))])
    e.test_collection = name  # type: ignore[attr-defined]
    e.test_kind = request.param  # type: ignore[attr-defined]
    yield e
    await e.close()


@pytest.fixture(scope="module")
async def reference(corpus) -> AsyncIterator[Engine]:
    """The in-memory double: what every engine is compared with."""
    vectors, payloads, sparse = corpus
    e = MemoryEngine()
    await e.create_collection("ref", CollectionSpec("dense", DIM, "Cosine", ("bm25",)))
    await e.upsert("ref", [PointInput(pid(i), {"dense": vectors[i].tolist(), "bm25": sparse[i]}, payloads[i])
                           for i in range(N)])
    yield e


def same(got: list[Point], want: list[Point], tol: float = 1e-4) -> None:
    """Same scores in the same order; ids equal except within a group of tied scores (any order there).

    ``want`` may be longer than ``got`` (fetched with a larger limit): a tie group cut by the limit may hold any of
    the reference's tied points.
    """
    assert len(want) >= len(got), (len(got), len(want))
    head = want[:len(got)]
    assert np.allclose([p.score for p in got], [p.score for p in head], atol=tol), (
        [round(p.score, 5) for p in got], [round(p.score, 5) for p in head])
    key = lambda p: round(p.score / tol)  # noqa: E731
    groups = {k: {p.id for p in g} for k, g in groupby(want, key)}
    got_groups = [(k, {p.id for p in g}) for k, g in groupby(got, key)]
    for i, (k, ids) in enumerate(got_groups):
        if i < len(got_groups) - 1:
            assert ids == {p.id for p in head if key(p) == k}
        else:
            assert ids <= groups[k]


async def both(engine: Engine, reference: Engine, request: QueryRequest) -> tuple[list[Point], list[Point]]:
    wider = QueryRequest(request.query, request.limit + 20, request.filter, request.with_vector, request.params)
    return await engine.query(engine.test_collection, request), await reference.query("ref", wider)  # type: ignore[attr-defined]


FILTERS = [
    Filter(must=[FieldCondition(key="group", match=Match(value="g1"))]),
    Filter(must=[FieldCondition(key="year", range=Range(gte=2000, lt=2010))]),
    Filter(must=[FieldCondition(key="metadata.lang", match=Match(any=["en", "fr"]))]),
    Filter(must=[FieldCondition(key="metadata.tags", match=Match(value="t3"))]),  # an array: any element
    Filter(should=[FieldCondition(key="metadata.ref", match=Match(any=["1001", "1003", "1004"])),  # doc-id lookup
                   FieldCondition(key="metadata.ref", match=Match(any=[1000, 1002, 1003]))]),
    Filter(must_not=[FieldCondition(key="group", match=Match(value="g2"))]),
    Filter(should=[FieldCondition(key="flag", match=Match(value=True)),
                   FieldCondition(key="metadata.score", range=Range(gt=4.0))]),
    Filter(must=[Filter(should=[FieldCondition(key="group", match=Match(value="g0")),
                                FieldCondition(key="group", match=Match(value="g3"))])],
           must_not=[HasId(has_id=[pid(3), pid(10)])]),
    Filter(must=[FieldCondition(key="group", match=Match.model_validate({"except": ["g0", "g1"]}))]),
    Filter(must=[FieldCondition(key="i", match=Match(value=7))]),
]


@pytest.mark.parametrize("flt", FILTERS, ids=[f"filter{i}" for i in range(len(FILTERS))])
async def test_nearest_with_filters(engine, reference, corpus, flt):
    q = corpus[0][11] + 0.1
    request = QueryRequest(Nearest(q.tolist(), "dense"), 15, filter=flt)
    booleans = any(isinstance(c.match.value, bool) for c in flt.field_conditions() if c.match is not None)
    if booleans and engine.test_kind.startswith("edge"):
        # qdrant-edge-py 0.9.0 matches no point for a boolean value: refused by name, never an empty answer
        with pytest.raises(InputError, match="cannot match boolean payload values"):
            await engine.query(engine.test_collection, request)
        return
    got, want = await both(engine, reference, request)
    same(got, want)
    assert got, "every filter here matches some points"


@pytest.mark.parametrize("n_feedback", [2, 3, 5])
@pytest.mark.parametrize("as_ids", [True, False])
async def test_relevance_feedback(engine, reference, corpus, n_feedback, as_ids):
    vectors = corpus[0]
    rng = np.random.default_rng(n_feedback)
    for _ in range(3):
        target = vectors[rng.integers(N)] + 0.1 * rng.normal(size=DIM)
        seeds = [int(i) for i in rng.choice(N, n_feedback, replace=False)]
        scores = rng.uniform(0, 10, n_feedback).tolist()
        feedback = [FeedbackItem(pid(i) if as_ids else vectors[i].tolist(), s) for i, s in zip(seeds, scores, strict=True)]
        req = QueryRequest(RelevanceFeedback(target.tolist(), feedback, (0.2, 0.5, 0.05), "dense"), 10)
        got, want = await both(engine, reference, req)
        same(got, want)
        if as_ids:  # point-id examples are left out of the results, as on a server
            assert not {pid(i) for i in seeds} & {p.id for p in got}


@pytest.mark.parametrize("params", [SearchParams(exact=True), SearchParams(hnsw_ef=64)], ids=["exact", "hnsw_ef"])
async def test_search_parameters_are_sent_the_same_way(engine, reference, corpus, params):
    """exact / hnsw_ef reach every engine in the same request shape (plain, RF and fused queries); on this small
    collection without an HNSW index the results are the exact ones."""
    vectors, _, sparse = corpus
    feedback = [FeedbackItem(vectors[i].tolist(), s) for i, s in ((3, 0.9), (8, 0.1), (21, 0.5))]
    rf = RelevanceFeedback(vectors[40].tolist(), feedback, (0.2, 0.5, 0.05), "dense")
    for query in (Nearest(vectors[40].tolist(), "dense"), rf,
                  Fusion((Prefetch(rf, 50), Prefetch(SparseNearest(sparse[40], "bm25"), 50)))):
        got, want = await both(engine, reference, QueryRequest(query, 10, params=params))
        same(got, want)


async def test_rf_with_vanilla_weights_is_nearest(engine, corpus):
    q = corpus[0][5].tolist()
    name = engine.test_collection
    near = await engine.query(name, QueryRequest(Nearest(q, "dense"), 10))
    feedback = [FeedbackItem(corpus[0][i].tolist(), float(10 - i)) for i in range(5)]
    rf = await engine.query(name, QueryRequest(RelevanceFeedback(q, feedback, (1.0, 0.0, 0.0), "dense"), 10))
    assert [p.id for p in rf] == [p.id for p in near]


async def test_sparse_idf_and_fusion(engine, reference, corpus):
    vectors = corpus[0]
    for terms in ((1, 5, 9), (2, 30, 31, 40), (7,)):
        sparse = SparseVector(terms, tuple(1.0 for _ in terms))
        got, want = await both(engine, reference, QueryRequest(SparseNearest(sparse, "bm25"), 20))
        same(got, want)
        dense = Nearest((vectors[7] + 0.2).tolist(), "dense")
        fused = Fusion((Prefetch(dense, 30), Prefetch(SparseNearest(sparse, "bm25"), 30)))
        flt = Filter(must_not=[FieldCondition(key="group", match=Match(value="g4"))])
        got, want = await both(engine, reference, QueryRequest(fused, 20, filter=flt))
        same(got, want)
        assert all(p.payload["group"] != "g4" for p in got)  # the top filter reaches the prefetches
        rf = RelevanceFeedback(vectors[7].tolist(), [FeedbackItem(pid(1), 3.0), FeedbackItem(pid(2), 1.0)],
                               (0.3, 0.5, 0.1), "dense")
        got, want = await both(engine, reference, QueryRequest(
            Fusion((Prefetch(rf, 30), Prefetch(SparseNearest(sparse, "bm25"), 30))), 20, with_vector="dense"))
        same(got, want)
        assert all(p.vector is not None and len(p.vector) == DIM for p in got)
        assert not {pid(1), pid(2)} & {p.id for p in got}


@pytest.mark.parametrize("as_ids", [True, False])
async def test_rf_rescored_on_the_union_of_its_prefetches(engine, reference, corpus, as_ids):
    """An RF query scored on the union of narrow candidate searches (its own, and plain neighbourhoods with their own
    parameters), alone and inside a fusion, under a filter: the same points and scores on every engine."""
    vectors, _, sparse = corpus
    seeds = [(3, 0.9), (8, 0.1), (21, 0.5)]
    feedback = [FeedbackItem(pid(i) if as_ids else vectors[i].tolist(), s) for i, s in seeds]
    rf = RelevanceFeedback(vectors[40].tolist(), feedback, (0.2, 0.5, 0.3), "dense")
    flt = Filter(must_not=[FieldCondition(key="group", match=Match(value="g4"))])
    around = Filter.combine(flt, exclude=[pid(i) for i, _ in seeds])
    near = SearchParams(hnsw_ef=128)
    rescored = Rescore(rf, (Prefetch(rf, 4, flt, SearchParams(hnsw_ef=64)),
                            Prefetch(Nearest(vectors[40].tolist(), "dense"), 6, around, near),
                            Prefetch(Nearest(vectors[21].tolist(), "dense"), 6, around, near)))
    for query in (rescored, Fusion((Prefetch(rescored, 12), Prefetch(SparseNearest(sparse[40], "bm25"), 12)))):
        got, want = await both(engine, reference, QueryRequest(query, 10, filter=flt))
        same(got, want)
        assert len(got) == 10 and all(p.payload["group"] != "g4" for p in got)
        if as_ids:  # point-id examples are left out, by the RF query and by the neighbourhoods' filter
            assert not {pid(i) for i, _ in seeds} & {p.id for p in got}
    alone = await engine.query(engine.test_collection, QueryRequest(rf, 40, filter=flt))  # type: ignore[attr-defined]
    union = await engine.query(engine.test_collection, QueryRequest(rescored, 16, filter=flt))  # type: ignore[attr-defined]
    scores = {p.id: p.score for p in alone}
    assert all(abs(scores[p.id] - p.score) < 1e-4 for p in union if p.id in scores)  # the RF formula's own scores
    assert {p.id for p in union} - {p.id for p in alone[:4]}, "the neighbourhoods add candidates"


async def test_points_ids_scroll_update_and_metadata(engine, corpus):
    name = engine.test_collection
    info = await engine.describe(name)
    assert info.points_count == N and await engine.count(name) == N
    assert info.vector("dense").dim == DIM and info.vector("bm25").kind == "sparse"
    assert info.vector("bm25").modifier == "idf"
    got = await engine.retrieve(name, [pid(0), pid(1), pid(999_999 if False else 5)], with_vector="dense")
    assert {p.id for p in got} == {pid(0), pid(1), pid(5)}
    assert all(isinstance(p.id, int) or uuid.UUID(p.id) for p in got)
    by_id = {p.id: p for p in got}
    assert by_id[pid(0)].payload["metadata"]["lang"] == "en" and len(by_id[pid(0)].vector) == DIM
    assert await engine.retrieve(name, [123_456_789]) == []
    with pytest.raises(InputError):
        await engine.retrieve(name, ["doc-123"])  # not a point id: a clear input error
    seen, offset = [], None
    while True:
        page, offset = await engine.scroll(name, offset=offset, limit=128)
        seen += [p.id for p in page]
        if offset is None:
            break
    assert len(seen) == N and set(seen) == {pid(i) for i in range(N)}
    enc = Bm25Encoder()  # term ids are 32-bit hashes: far from the test corpus' 0..59
    await engine.update_vectors(name, [PointInput(pid(4), {"bm25": enc.encode_documents(["zebra zebra"], 8.0)[0]})])
    hits = await engine.query(name, QueryRequest(SparseNearest(enc.encode_query("zebra"), "bm25"), 5))
    assert [p.id for p in hits] == [pid(4)]
    assert (await engine.retrieve(name, [pid(4)]))[0].payload["i"] == 4  # the payload is kept
    await engine.set_metadata(name, {"rf_mcp:x": {"current": {"v": 1}}, "other": 1})
    await engine.set_metadata(name, {"other": None})
    assert await engine.get_metadata(name) == {"rf_mcp:x": {"current": {"v": 1}}}
    await engine.create_payload_index(name, "group", "keyword")
    embedded_client = isinstance(engine, ClientEngine) and not engine.settings.url  # keeps no payload indexes
    assert embedded_client or "group" in (await engine.describe(name)).payload_indexes
    with pytest.raises(InputError, match="already exists"):
        await engine.create_collection(name, CollectionSpec("dense", DIM))
    with pytest.raises(InputError, match="does not exist"):
        await engine.describe("no_such_collection")


@pytest.mark.parametrize("kind", ENGINES)
async def test_unnamed_default_vector(kind, tmp_path, corpus):
    """"" names the unnamed default vector on every engine (searches, feedback ids, returned vectors)."""
    vectors = corpus[0]
    e = open_engine(kind, tmp_path)
    name = f"unnamed_{uuid.uuid4().hex[:8]}"
    try:
        await e.create_collection(name, CollectionSpec("", DIM, "Dot"))
        await e.upsert(name, [PointInput(pid(i), {"": vectors[i].tolist()}, {"i": i}) for i in range(50)])
        assert (await e.describe(name)).vector("").dim == DIM
        near = await e.query(name, QueryRequest(Nearest(vectors[3].tolist(), ""), 5, with_vector=""))
        assert near[0].id == pid(3) and np.allclose(near[0].vector, vectors[3], atol=1e-6)
        rf = await e.query(name, QueryRequest(RelevanceFeedback(vectors[3].tolist(), [FeedbackItem(pid(1), 2.0),
                                                                                      FeedbackItem(pid(2), 1.0)],
                                                                (0.5, 1.0, 0.1), ""), 5))
        assert len(rf) == 5 and not {pid(1), pid(2)} & {p.id for p in rf}
        scrolled, _ = await e.scroll(name, limit=3, with_vector="")
        assert all(len(p.vector or []) == DIM for p in scrolled)
    finally:
        await e.close()


@pytest.mark.parametrize("flt", FILTERS[:5], ids=[f"filter{i}" for i in range(5)])
async def test_scroll_with_a_filter(engine, reference, flt):
    async def all_ids(e: Engine, name: str) -> set:
        seen, offset = set(), None
        while True:
            page, offset = await e.scroll(name, offset=offset, limit=50, filter=flt)
            seen |= {p.id for p in page}
            if offset is None:
                return seen

    assert await all_ids(engine, engine.test_collection) == await all_ids(reference, "ref") != set()


@pytest.mark.parametrize("kind", ENGINES)
async def test_a_sparse_vector_added_to_an_existing_collection(kind, tmp_path, corpus):
    """A collection made with a dense vector only (another tool's) gets the BM25 sparse vector: its points, dense
    vectors and payloads stay as they were; the points given a sparse vector are found by sparse search (IDF over
    those only) as on the reference; the others (written later by that tool) by the dense side of a fusion."""
    vectors, payloads, sparse = corpus
    n, given = 120, 90  # points 90..119 keep no sparse vector
    name = f"added_{uuid.uuid4().hex[:8]}"
    points = [PointInput(pid(i), {"dense": vectors[i].tolist()}, payloads[i]) for i in range(n)]
    ids = [pid(i) for i in range(n)]
    ref = MemoryEngine()
    e = open_engine(kind, tmp_path)
    try:
        for eng in (e, ref):
            await eng.create_collection(name, CollectionSpec("dense", DIM, "Cosine"))
            await eng.upsert(name, points)
        if kind in ("edge", "local", "edge-process"):  # written, closed, opened again: as another tool leaves it
            await e.close()
            e = open_engine(kind, tmp_path)
        before = sorted(await e.retrieve(name, ids, with_vector="dense"), key=lambda p: str(p.id))
        for eng in (e, ref):
            await eng.add_sparse_vector(name, "bm25")
            await eng.add_sparse_vector(name, "bm25")  # already there: nothing to do
            with pytest.raises(InputError, match="is dense"):
                await eng.add_sparse_vector(name, "dense")
            await eng.update_vectors(name, [PointInput(pid(i), {"bm25": sparse[i]}) for i in range(given)])
        info = await e.describe(name)
        assert info.points_count == n and info.vector("bm25").kind == "sparse" and info.vector("bm25").modifier == "idf"
        assert sorted(await e.retrieve(name, ids, with_vector="dense"), key=lambda p: str(p.id)) == before
        for terms in ((1, 5, 9), (2, 30, 31, 40)):
            query = SparseNearest(SparseVector(terms, tuple(1.0 for _ in terms)), "bm25")
            got = await e.query(name, QueryRequest(query, 20))
            same(got, await ref.query(name, QueryRequest(query, 40)))
            assert got and all(p.id in {pid(i) for i in range(given)} for p in got)
            fused = Fusion((Prefetch(Nearest(vectors[n - 10].tolist(), "dense"), 30), Prefetch(query, 30)))
            got = await e.query(name, QueryRequest(fused, 10))
            same(got, await ref.query(name, QueryRequest(fused, 30)))
            assert pid(n - 10) in {p.id for p in got}  # no sparse vector: found by the dense side
        later = PointInput(str(uuid.uuid4()), {"dense": vectors[n].tolist()}, payloads[n])  # the other tool writes on
        await e.upsert(name, [later])
        assert (await e.query(name, QueryRequest(Nearest(vectors[n].tolist(), "dense"), 1)))[0].id == later.id
        if kind in ("edge", "local", "edge-process"):
            await e.close()
            e = open_engine(kind, tmp_path)
            assert (await e.describe(name)).vector("bm25").kind == "sparse"
            query = SparseNearest(SparseVector((1, 5, 9), (1.0, 1.0, 1.0)), "bm25")
            same(await e.query(name, QueryRequest(query, 20)), await ref.query(name, QueryRequest(query, 40)))
    finally:
        await e.close()


async def test_adding_a_vector_needs_qdrant_1_18_on_a_server():
    """PUT /collections/{name}/vectors/{vector} came with Qdrant 1.18: an older server is refused by name, before
    any request that would change the collection (a 1.17 server still serves everything else)."""
    from qdrant_client import QdrantClient

    e = ClientEngine(QdrantSettings(url="http://127.0.0.1:9"))
    e._client = QdrantClient(location=":memory:")  # stands in for the server's client: only the version is faked
    try:
        await e.create_collection("c", CollectionSpec("dense", DIM))
        e._server_version = (1, 17)
        with pytest.raises(EngineError, match=r"runs version 1\.17: adding the sparse vector 'bm25'.*1\.18 or newer"):
            await e.add_sparse_vector("c", "bm25")
        assert (await e.describe("c")).vector("bm25") is None
        e._server_version = (1, 18)
        await e.add_sparse_vector("c", "bm25")
        assert (await e.describe("c")).vector("bm25").modifier == "idf"
    finally:
        await e.close()


async def test_collections_rf_mcp_creates_get_hnsw_m_links(tmp_path):
    """Every collection rf-mcp creates asks for :data:`HNSW_M` links per point (Qdrant's default of 16 leaves the
    outlying points an RF query ranks first unreachable): in the edge shard's config, and in the request a Qdrant
    server receives (no server runs here: a stand-in records the REST request qdrant-client sends)."""
    import json

    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from rf_mcp.ports import HNSW_M
    from tests.asgi import ServedApp

    assert HNSW_M > 16
    edge = EdgeEngine(QdrantSettings(path=str(tmp_path / "edge"), backend="edge"))
    try:
        await edge.create_collection("c", CollectionSpec("dense", DIM))
    finally:
        await edge.close()
    stored = json.loads(next((tmp_path / "edge").rglob("edge_config.json")).read_text())
    assert stored["hnsw_config"]["m"] == HNSW_M

    sent: list[dict] = []

    async def root(request):
        return JSONResponse({"title": "qdrant - vector search engine", "version": "1.18.0", "commit": None})

    async def exists(request):
        return JSONResponse({"result": {"exists": False}, "status": "ok", "time": 0.0})

    async def create(request):
        sent.append(await request.json())
        return JSONResponse({"result": True, "status": "ok", "time": 0.0})

    app = Starlette(routes=[Route("/", root), Route("/collections/{name}/exists", exists),
                            Route("/collections/{name}", create, methods=["PUT"])])
    with ServedApp(app) as served:
        remote = ClientEngine(QdrantSettings(url=f"http://127.0.0.1:{served.port}"))
        try:
            await remote.create_collection("c", CollectionSpec("dense", DIM, sparse=("bm25",)))
        finally:
            await remote.close()
    assert len(sent) == 1 and sent[0]["hnsw_config"] == {"m": HNSW_M}
    assert sent[0]["vectors"]["dense"]["size"] == DIM
