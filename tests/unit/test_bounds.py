"""Bounded work: what one request may ask of the engine and of the feedback model is refused up front, with the bound
named (filter size, exact search on large collections, HNSW breadth, feedback scores per call)."""

from __future__ import annotations

import copy
import time

import pytest
from mcp.client.client import Client
from pydantic import ValidationError

from rf_mcp.adapters.engines.memory import MemoryEngine
from rf_mcp.config import Config
from rf_mcp.domain import requests
from rf_mcp.domain.indexing import CREATED_BY_KEY
from rf_mcp.errors import GuardrailError, InputError
from rf_mcp.ports import CollectionSpec
from rf_mcp.server import build_server
from tests import doubles

pytestmark = pytest.mark.anyio

Q = "tumor metastasis after chemotherapy"
COND = {"key": "title", "match": {"value": "x"}}


class Counting(MemoryEngine):
    """The in-memory engine, counting the engine calls that do work (queries, retrievals, scrolls)."""

    calls: int

    async def query(self, collection, request):
        self.calls += 1
        return await super().query(collection, request)

    async def scroll(self, collection, **kwargs):
        self.calls += 1
        return await super().scroll(collection, **kwargs)

    async def retrieve(self, collection, ids, **kwargs):
        self.calls += 1
        return await super().retrieve(collection, ids, **kwargs)


def counting(engine: MemoryEngine) -> Counting:
    engine = copy.deepcopy(engine)
    engine.__class__ = Counting
    engine.calls = 0
    assert isinstance(engine, Counting)
    return engine


def nested(depth: int) -> dict:
    flt: dict = {"must": [COND]}
    for _ in range(depth - 1):
        flt = {"must": [flt]}
    return flt


def text(result) -> str:
    return " ".join(c.text for c in result.content)


async def test_filters_over_the_bounds_are_refused_before_any_engine_work(templates):
    engine = counting(templates["calibrated"])
    rf = doubles.service(engine=engine)
    too_many = {"must": [{"should": [COND] * 64}] * 4, "should": [COND]}  # 4 + 256 + 1 conditions
    values = {"must": [{"key": "title", "match": {"any": [str(i) for i in range(1000)]}}] * 11}
    big = {"must": [{"key": "title", "match": {"value": "x" * (requests.MAX_FILTER_BYTES + 1)}}]}
    cases = ((nested(requests.MAX_FILTER_DEPTH + 1), f"deeper than {requests.MAX_FILTER_DEPTH} levels"),
             (nested(50), "deeper than"), (too_many, f"more than {requests.MAX_FILTER_CONDITIONS} conditions"),
             (values, f"more than {requests.MAX_FILTER_VALUES} values"), (big, f"over {requests.MAX_FILTER_BYTES}"))
    async with Client(build_server(rf)) as client:
        for flt, needle in cases:
            r = await client.call_tool("rf_search_precision", {"collection": "docs", "query": Q, "filter": flt})
            assert r.is_error and needle in text(r) and "filter" in text(r), text(r)[:300]
            with pytest.raises(InputError, match=needle):
                await rf.search_recall("docs", Q, filter=flt)
        with pytest.raises(InputError, match="deeper than"):  # refused by the walk, before pydantic recurses into it
            await rf.search_precision("docs", Q, filter=nested(5000))
        assert engine.calls == 0
        # at the bounds: accepted (and run)
        for flt in (nested(requests.MAX_FILTER_DEPTH), {"must": [{"should": [COND] * 64}] * 3 + [COND] * 61}):
            r = await client.call_tool("rf_search_precision", {"collection": "docs", "query": Q, "filter": flt,
                                                               "vanilla": True})
            assert not r.is_error or "fewer than 2 points" in text(r), text(r)[:300]
        assert engine.calls > 0


async def test_exact_search_is_refused_above_the_configured_point_count(templates):
    cfg = Config.model_validate({"qdrant": {"backend": "memory"}, "search": {"max_exact_points": 299}})
    engine = counting(templates["calibrated"])
    rf = doubles.service(cfg, engine=engine)
    with pytest.raises(InputError, match=r"scan all 300 points, over this server's \[search\] max_exact_points of 299"):
        await rf.search_precision("docs", Q, exact=True)
    assert engine.calls == 0
    assert (await rf.search_precision("docs", Q)).hits  # without exact: served
    cfg = Config.model_validate({"qdrant": {"backend": "memory"}, "search": {"max_exact_points": 300}})
    assert (await doubles.service(cfg, engine=engine).search_precision("docs", Q, exact=True)).search_params == "exact"
    configured = Config.model_validate({"qdrant": {"backend": "memory"},
                                        "search": {"exact": True, "max_exact_points": 10}})
    with pytest.raises(InputError, match="max_exact_points of 10"):  # the configured default is bounded too
        await doubles.service(configured, engine=engine).search_recall("docs", Q)


async def test_hnsw_ef_over_the_server_maximum_is_refused(templates):
    cfg = Config.model_validate({"qdrant": {"backend": "memory"}, "search": {"max_hnsw_ef": 500}})
    engine = counting(templates["calibrated"])
    rf = doubles.service(cfg, engine=engine)
    async with Client(build_server(rf)) as client:
        r = await client.call_tool("rf_search_recall", {"collection": "docs", "query": Q, "hnsw_ef": 501})
        assert r.is_error and "max_hnsw_ef = 500" in text(r), text(r)
        assert engine.calls == 0
        r = await client.call_tool("rf_search_recall", {"collection": "docs", "query": Q, "hnsw_ef": 500})
        assert not r.is_error, text(r)
    with pytest.raises(ValidationError, match="over max_hnsw_ef"):
        Config.model_validate({"search": {"hnsw_ef": 600, "max_hnsw_ef": 500}})


async def test_calibrate_over_the_server_ceiling_is_refused_at_once_with_the_estimate(templates):
    """The server's ceiling bounds every call; a client's max_feedback_scores lowers it and never raises it."""
    cfg = Config.model_validate({"qdrant": {"backend": "memory"}, "server": {"max_feedback_scores": 1000}})
    engine = counting(templates["calibrated"])
    before = copy.deepcopy(await engine.get_metadata("docs"))
    rf = doubles.service(cfg, engine=engine)
    queries = doubles.queries()  # 60 queries
    async with Client(build_server(rf)) as client:
        for args in ({}, {"max_feedback_scores": 1_000_000}):  # asking for more does not raise the ceiling
            t0 = time.perf_counter()
            r = await client.call_tool("calibrate", {"collection": "docs", "queries": queries, "limit": 20, **args})
            assert time.perf_counter() - t0 < 1.0
            assert r.is_error and "about 1200 feedback-model scores (60 queries x limit 20)" in text(r), text(r)
            assert "[server] max_feedback_scores" in text(r) and "of 1000" in text(r)
        r = await client.call_tool("calibrate", {"collection": "docs", "queries": queries, "limit": 20,
                                                 "max_feedback_scores": 500})
        assert r.is_error and "your max_feedback_scores of 500" in text(r), text(r)
        r = await client.call_tool("evaluate", {"collection": "docs", "queries": [{"text": q} for q in queries]})
        assert r.is_error and f"about {60 * 23} feedback-model scores (60 queries, 0 of them judged)" in text(r)
        assert engine.calls == 0
        assert await engine.get_metadata("docs") == before  # the current profile is unchanged
        r = await client.call_tool("calibrate", {"collection": "docs", "queries": queries[:50], "limit": 20})
        assert not r.is_error, text(r)  # 1000: at the ceiling
    small = Config.model_validate({"qdrant": {"backend": "memory"}, "server": {"max_feedback_scores": 24}})
    rf = doubles.service(small, engine=counting(templates["calibrated"]))
    with pytest.raises(InputError, match=r"recall search would cost about 25 feedback-model scores \(5 seeds \+ budget"):
        await rf.search_recall("docs", Q)
    assert (await rf.search_recall("docs", Q, budget=19)).hits


async def test_the_demo_leaves_a_collection_it_did_not_create_alone(templates, corpus_file):
    """An existing collection the demo did not create is refused, naming the free name it would use; its points and
    current profile are unchanged. One the demo created is its own to re-run."""
    from rf_mcp.demo import claim_collection, run_demo

    engine = counting(templates["calibrated"])
    rf = doubles.service(engine=engine)
    assert (await engine.get_metadata("docs"))[CREATED_BY_KEY] == "index"  # index marks what it creates
    before = copy.deepcopy(await engine.get_metadata("docs"))
    points = (await engine.describe("docs")).points_count
    current = (await rf.list_profiles("docs"))[0]
    await rf.index("docs-2", corpus_file)  # taken too: the next free name is proposed
    with pytest.raises(GuardrailError, match=r"not created by the demo.*--collection docs-3"):
        await run_demo(rf, "docs")
    assert await engine.get_metadata("docs") == before and (await engine.describe("docs")).points_count == points
    assert (await rf.list_profiles("docs"))[0] == current
    await engine.set_metadata("docs-2", {CREATED_BY_KEY: "demo"})
    await claim_collection(rf, "docs-2")  # the demo's own: no refusal
    await claim_collection(rf, "fresh")  # a new name: no refusal


async def test_index_refuses_another_tools_collection_unless_told(templates, corpus_file):
    """A collection without rf-mcp's mark (e.g. mcp-server-qdrant's) is refused by index on every surface; sparse_only
    (BM25 vectors and statistics only) and allow_foreign are the two ways in."""
    engine = MemoryEngine()
    await engine.create_collection("memories", CollectionSpec("dense", doubles.DIM))
    cfg = Config.model_validate({"qdrant": {"backend": "memory"}, "collection": {"vector_name": "dense"}})
    rf = doubles.service(cfg, engine=engine)
    async with Client(build_server(rf)) as client:
        r = await client.call_tool("index", {"collection": "memories", "input_path": str(corpus_file)})
        assert r.is_error and "not created by rf-mcp" in text(r) and "allow_foreign" in text(r), text(r)
        assert (await engine.describe("memories")).points_count == 0
        r = await client.call_tool("index", {"collection": "memories", "sparse_only": True})
        assert not r.is_error, text(r)
        r = await client.call_tool("index", {"collection": "memories", "input_path": str(corpus_file),
                                             "allow_foreign": True})
        assert not r.is_error and (await engine.describe("memories")).points_count == 300, text(r)
    assert CREATED_BY_KEY not in await engine.get_metadata("memories")  # still another tool's collection


async def test_documents_are_added_to_or_deleted_from_another_tools_collection_only_when_told():
    """add_documents and delete_documents go through the same ownership check as index: another tool's collection
    is refused (nothing written or removed) unless allow_foreign=true."""
    engine = MemoryEngine()
    await engine.create_collection("memories", CollectionSpec("dense", doubles.DIM))
    cfg = Config.model_validate({"qdrant": {"backend": "memory"}, "collection": {"vector_name": "dense"}})
    rf = doubles.service(cfg, engine=engine)
    doc = {"id": "n1", "text": "platypus river"}
    async with Client(build_server(rf)) as client:
        r = await client.call_tool("add_documents", {"collection": "memories", "documents": [doc]})
        assert r.is_error and "not created by rf-mcp" in text(r) and "allow_foreign" in text(r), text(r)
        assert (await engine.describe("memories")).points_count == 0
        r = await client.call_tool("add_documents", {"collection": "memories", "documents": [doc],
                                                     "allow_foreign": True})
        assert not r.is_error and (await engine.describe("memories")).points_count == 1, text(r)
        r = await client.call_tool("delete_documents", {"collection": "memories", "ids": ["n1"]})
        assert r.is_error and "not created by rf-mcp" in text(r), text(r)
        assert (await engine.describe("memories")).points_count == 1
        r = await client.call_tool("delete_documents", {"collection": "memories", "ids": ["n1"], "allow_foreign": True})
        assert not r.is_error and (await engine.describe("memories")).points_count == 0, text(r)
