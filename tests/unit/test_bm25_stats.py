"""BM25 term statistics kept by the index path: equal to a full count, current after a re-index that keeps the
point count, read without a scan on the search path, and refused (with the fix) where another tool wrote."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rf_mcp.adapters.analyzer import Bm25Encoder, CorpusStats
from rf_mcp.adapters.engines.memory import MemoryEngine
from rf_mcp.adapters.scorers.bm25 import BM25Scorer
from rf_mcp.config import Config
from rf_mcp.domain import indexing
from rf_mcp.domain.payload import payload_text
from rf_mcp.errors import GuardrailError, InputError
from rf_mcp.ports import CollectionSpec, PointId, PointInput, TermStatistics
from tests import doubles
from tests.common import MINI, needs_shared

pytestmark = pytest.mark.anyio
FIELDS = ["title", "text"]
QUERIES = ["insulin glucose obesity", "tau protein brain", "tumor chemotherapy risk", "zebrafish fins", "study"]


def stats_of(texts: Sequence[str], revision: str = "r") -> TermStatistics:
    """Statistics as the index path would store them, from a full count of ``texts``."""
    enc = Bm25Encoder()
    full = CorpusStats(enc.analyzer, texts)
    ids = np.array(sorted(full.df), np.uint32)
    dfs = np.array([full.df[int(t)] for t in ids], np.int64)
    return TermStatistics(revision, enc.identity, full.n, full.total, lambda: (ids, dfs))


class ScrollCounter(MemoryEngine):
    """The in-memory engine, counting the scrolls (a full scan is scrolls)."""

    scrolls = 0

    async def scroll(self, collection: str, **kw: Any) -> tuple[list[Any], PointId | None]:  # type: ignore[override]
        self.scrolls += 1
        return await super().scroll(collection, **kw)


def write_corpus(path: Path, docs: Sequence[dict[str, Any]]) -> Path:
    path.write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    return path


async def payload_texts(engine: MemoryEngine, collection: str, fields: Sequence[str] = FIELDS) -> list[str]:
    out, offset = [], None
    while True:
        page, offset = await MemoryEngine.scroll(engine, collection, offset=offset, limit=1000)
        out += [payload_text(p.payload, fields) for p in page]
        if offset is None:
            return out


async def assert_stored_equals_full_count(engine: MemoryEngine, collection: str,
                                          fields: Sequence[str] = FIELDS) -> TermStatistics:
    stored = await indexing.read_term_stats(engine, collection, fields)
    assert stored is not None
    full = CorpusStats(Bm25Encoder().analyzer, await payload_texts(engine, collection, fields))
    ids, dfs = stored.frequencies()
    assert (stored.documents, stored.total_length) == (full.n, full.total)
    assert dict(zip(ids.tolist(), dfs.tolist(), strict=True)) == dict(full.df)
    return stored


async def full_count_scores(engine: MemoryEngine, collection: str, docs: Sequence[str]) -> list[list[float]]:
    scorer = BM25Scorer()
    full = CorpusStats(scorer.analyzer, await payload_texts(engine, collection))
    return [scorer.score_sync(q, docs, full) for q in QUERIES]


async def test_indexing_stores_the_statistics_of_a_full_count(tmp_path):
    rf = doubles.service()
    await rf.index("docs", write_corpus(tmp_path / "c.jsonl", doubles.corpus(120)))
    await rf.index("docs", write_corpus(tmp_path / "more.jsonl", doubles.corpus(150, seed=3)[100:]))  # 100-149 new
    stored = await assert_stored_equals_full_count(rf.engine, "docs")
    assert stored.documents == await rf.engine.count("docs") == 150
    meta = await rf.engine.get_metadata("docs")
    assert indexing.TERM_STATS_WRITING_KEY not in meta  # the run finished


async def test_scores_from_stored_statistics_equal_a_full_count(tmp_path):
    rf = doubles.service()
    await rf.index("docs", write_corpus(tmp_path / "c.jsonl", doubles.corpus(80)))
    await rf.target("docs")
    docs = [d["title"] + " " + d["text"] for d in doubles.corpus(20, seed=9)]
    assert [await rf.scorer.score(q, docs) for q in QUERIES] == await full_count_scores(rf.engine, "docs", docs)


@needs_shared
async def test_scores_on_scifact_mini_equal_a_full_count():
    rf = doubles.service()
    await rf.index("mini", MINI / "corpus.jsonl")
    await assert_stored_equals_full_count(rf.engine, "mini")
    await rf.target("mini")
    docs = (await payload_texts(rf.engine, "mini"))[:40]
    assert [await rf.scorer.score(q, docs) for q in QUERIES] == await full_count_scores(rf.engine, "mini", docs)


async def test_a_reindex_with_changed_texts_and_the_same_count_is_seen(tmp_path):
    rf = doubles.service()
    original = doubles.corpus(60)
    await rf.index("docs", write_corpus(tmp_path / "c.jsonl", original))
    await rf.target("docs")
    doc = ["zebrafish fin regeneration"]
    before = await rf.scorer.score("zebrafish", doc)
    changed = [{**d, "text": d["text"] + " zebrafish"} if i % 3 == 0 else d for i, d in enumerate(original)]
    await rf.index("docs", write_corpus(tmp_path / "changed.jsonl", changed[:30]))  # same ids: the count stays 60
    assert await rf.engine.count("docs") == 60
    await assert_stored_equals_full_count(rf.engine, "docs")
    await rf.target("docs")  # the same scorer, the same point count: the new revision is read
    after = await rf.scorer.score("zebrafish", doc)
    assert after[0] < before[0]  # 10 documents now hold the term: its IDF fell
    fresh = BM25Scorer()
    assert after == fresh.score_sync("zebrafish", doc, CorpusStats(fresh.analyzer, await payload_texts(rf.engine, "docs")))


async def test_the_search_path_never_scrolls_the_collection(templates):
    engine = copy.deepcopy(templates["calibrated"])
    engine.__class__ = ScrollCounter
    rf = doubles.service(engine=engine)
    await rf.search_precision("docs", "insulin glucose in obesity", limit=10)
    await rf.search_recall("docs", "tau protein brain")
    await rf.target("docs")
    assert engine.scrolls == 0


async def test_the_scorer_decodes_a_revision_once():
    decoded = []
    stats = stats_of(["tau protein", "other text"], revision="one")
    original = stats.frequencies

    def counting() -> tuple[np.ndarray, np.ndarray]:
        decoded.append(1)
        return original()

    stats = TermStatistics("one", stats.encoder, stats.documents, stats.total_length, counting)

    async def read() -> TermStatistics:
        return stats

    scorer = BM25Scorer()
    for _ in range(3):
        await scorer.bind("c", read, 2)
    assert len(decoded) == 1


async def test_a_collection_written_by_another_tool_is_refused_until_counted_once(tmp_path):
    engine = MemoryEngine()
    await engine.create_collection("other", CollectionSpec("dense", doubles.DIM))
    retriever = doubles.HashRetriever()
    docs = doubles.corpus(40)
    await engine.upsert("other", [PointInput(i, {"dense": retriever.embed(d["text"]).tolist()},
                                             {"title": d["title"], "text": d["text"]}) for i, d in enumerate(docs)])
    rf = doubles.service(engine=engine)
    await rf.search_precision("other", "tau protein", vanilla=True)  # never scores: not refused
    await rf.target("other")
    with pytest.raises(InputError, match="no stored BM25 term statistics") as err:
        await rf.scorer.score("tau", ["tau protein"])
    assert "rf-mcp index -c other --sparse-only" in str(err.value)
    other = copy.deepcopy(engine)
    report = await rf.index("other", sparse_only=True)  # offline: the one full scan
    assert report.sparse_vector == "bm25"
    await assert_stored_equals_full_count(engine, "other")
    await rf.target("other")
    await rf.scorer.score("tau", ["tau protein"])

    # or calibration (offline, and needed before any feedback search) counts them: configuration only
    rf = doubles.service(engine=other)
    await rf.calibrate("other", doubles.queries(12), doubles.TRAIN.model_copy(update={"epochs": 5}))
    await assert_stored_equals_full_count(other, "other")
    assert (await other.describe("other")).vector("bm25") is None  # the statistics only


async def test_statistics_only_without_a_sparse_vector(tmp_path):
    """The mcp-server-qdrant layout has no sparse vector: --sparse-only then counts only the statistics, and indexing
    keeps them current."""
    engine = MemoryEngine()
    await engine.create_collection("mem", CollectionSpec("dense", doubles.DIM))
    await engine.upsert("mem", [PointInput(i, {"dense": [1.0] * doubles.DIM}, {"document": f"note {i} about tau"})
                                for i in range(5)])
    cfg = Config.model_validate({"qdrant": {"backend": "memory"},
                                 "collection": {"vector_name": "dense", "text_fields": ["document"],
                                                "sparse_vector": ""}})
    rf = doubles.service(cfg, engine=engine)
    report = await rf.index("mem", sparse_only=True)
    assert report.sparse_vector is None and (await engine.describe("mem")).vector("bm25") is None
    await assert_stored_equals_full_count(engine, "mem", ["document"])
    more = [{"_id": f"n{i}", "document": "tau tau protein"} for i in range(3)]
    await rf.index("mem", write_corpus(tmp_path / "more.jsonl", more), allow_foreign=True)  # another tool's
    stored = await assert_stored_equals_full_count(engine, "mem", ["document"])
    assert stored.documents == 8


async def test_other_text_fields_and_corrupt_statistics_are_refused(tmp_path):
    rf = doubles.service()
    await rf.index("docs", write_corpus(tmp_path / "c.jsonl", doubles.corpus(20)))
    with pytest.raises(InputError, match=r"computed over the text fields \['title', 'text'\], not the configured"):
        await indexing.read_term_stats(rf.engine, "docs", ["text"])
    entry = (await rf.engine.get_metadata("docs"))[indexing.TERM_STATS_KEY]
    await rf.engine.set_metadata("docs", {indexing.TERM_STATS_KEY: {**entry, "terms": entry["terms"] + 1}})
    await rf.target("docs")
    with pytest.raises(InputError, match="are corrupt") as err:
        await rf.scorer.score("tau", ["tau protein"])
    assert "--sparse-only" in str(err.value)
    await rf.index("docs", write_corpus(tmp_path / "c2.jsonl", doubles.corpus(25)[20:]))  # recounts: the stats were bad
    await assert_stored_equals_full_count(rf.engine, "docs")


async def test_an_unfinished_run_makes_the_next_one_recount(tmp_path):
    rf = doubles.service()
    await rf.index("docs", write_corpus(tmp_path / "c.jsonl", doubles.corpus(30)))
    stale = (await rf.engine.get_metadata("docs"))[indexing.TERM_STATS_KEY]
    await rf.index("docs", write_corpus(tmp_path / "more.jsonl", doubles.corpus(40)[30:]))
    # a run that died after writing its points: the old statistics, and its mark
    await rf.engine.set_metadata("docs", {indexing.TERM_STATS_KEY: stale, indexing.TERM_STATS_WRITING_KEY: "dead"})
    report = await rf.index("docs", write_corpus(tmp_path / "last.jsonl", doubles.corpus(41)[40:]))
    assert any("did not finish" in n for n in report.notes)
    stored = await assert_stored_equals_full_count(rf.engine, "docs")
    assert stored.documents == 41


def test_the_packed_table_round_trips():
    rng = np.random.default_rng(0)
    ids = np.unique(rng.integers(0, 2**32, 5000, dtype=np.uint64)).astype(np.uint32)
    ids[0], ids[-1] = 0, 2**32 - 1
    ids = np.unique(ids)
    dfs = rng.integers(1, 1000, len(ids)).astype(np.int64)
    got_ids, got_dfs = indexing.unpack_frequencies(indexing.pack_frequencies(ids, dfs), len(ids), 1000)
    assert (got_ids == ids).all() and (got_dfs == dfs).all()
    empty = indexing.unpack_frequencies(indexing.pack_frequencies(ids[:0], dfs[:0]), 0, 0)
    assert len(empty[0]) == len(empty[1]) == 0
    with pytest.raises(ValueError):
        indexing.unpack_frequencies(indexing.pack_frequencies(ids, dfs), len(ids), 10)  # a df above the count


class WriteLog(MemoryEngine):
    """The in-memory engine, logging the writes of points (which method, which vectors)."""

    writes: list[tuple[str, set[str]]]

    async def upsert(self, collection: str, points: Sequence[PointInput]) -> None:
        self.writes.append(("upsert", {n for p in points for n in p.vectors}))
        await super().upsert(collection, points)

    async def update_vectors(self, collection: str, points: Sequence[PointInput]) -> None:
        self.writes.append(("update_vectors", {n for p in points for n in p.vectors}))
        await super().update_vectors(collection, points)


async def test_sparse_only_adds_the_bm25_vector_to_an_mcp_server_qdrant_collection():
    """The mcp-server-qdrant layout: --sparse-only adds the BM25 vector, writes it into every point with
    update_vectors alone (dense vectors and payloads stay), counts the statistics, and says so; hybrid search is
    then served and finds a point written later without the vector by its dense side; a re-run gives it one.
    Read-only refuses and changes nothing."""
    cfg = Config.model_validate({"qdrant": {"backend": "memory"}, "collection": {"layout": "mcp-server-qdrant"}})
    vector = cfg.collection.vector_name
    engine = WriteLog()
    engine.writes = []
    retriever = doubles.HashRetriever()
    texts = [f"{d['title']} {d['text']}" for d in doubles.corpus(30)]
    await engine.create_collection("memories", CollectionSpec(vector, doubles.DIM))  # as mcp-server-qdrant makes it
    await engine.upsert("memories", [PointInput(uuid.uuid4().hex, {vector: retriever.embed(t).tolist()},
                                                {"document": t, "metadata": {"doc_id": f"m{i}"}})
                                     for i, t in enumerate(texts)])
    before = await engine.scroll("memories", limit=100, with_vector=vector)
    engine.writes.clear()

    with pytest.raises(GuardrailError, match="read-only"):
        await doubles.service(cfg, engine=engine, retriever=retriever, read_only=True).index("memories",
                                                                                           sparse_only=True)
    assert (await engine.describe("memories")).vector("bm25") is None and engine.writes == []

    rf = doubles.service(cfg, engine=engine, retriever=retriever)
    with pytest.raises(InputError, match="no sparse vector 'bm25'") as refused:
        await rf.search_precision("memories", "tau protein", vanilla=True, fusion="sparse")
    assert "adds it" in refused.value.fix
    report = await rf.index("memories", sparse_only=True)
    assert report.sparse_vector == "bm25" and report.documents == 30
    assert any("Added the BM25 sparse vector 'bm25' to 'memories'" in n for n in report.notes), report.notes
    assert (await engine.describe("memories")).vector("bm25").modifier == "idf"
    assert engine.writes and all(w == ("update_vectors", {"bm25"}) for w in engine.writes)  # never a whole point
    assert await engine.scroll("memories", limit=100, with_vector=vector) == before
    stored_sparse = {pid: vecs.get("bm25") for pid, (vecs, _) in engine._collections["memories"].points.items()}
    assert all(v is not None and v.indices for v in stored_sparse.values())
    await assert_stored_equals_full_count(engine, "memories", ["document"])

    hits = (await rf.search_precision("memories", "tau protein", vanilla=True, fusion="sparse")).hits
    assert hits and {h.source for h in hits} == {"hybrid"}
    later = "platypus echidna monotreme"  # written later by mcp-server-qdrant: a whole point, no BM25 vector
    await engine.upsert("memories", [PointInput(uuid.uuid4().hex, {vector: retriever.embed(later).tolist()},
                                                {"document": later, "metadata": None})])
    hits = (await rf.search_precision("memories", later, vanilla=True, fusion="sparse")).hits
    assert hits[0].text == later  # by its dense vector
    again = await rf.index("memories", sparse_only=True)  # refreshes it; the vector is there already
    assert again.documents == 31 and not any("Added" in n for n in again.notes)
    assert all(vecs.get("bm25") is not None for vecs, _ in engine._collections["memories"].points.values())
