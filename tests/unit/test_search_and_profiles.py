"""The search patterns and the profile store, on the in-memory engine."""

from __future__ import annotations

import json

import pytest

from rf_mcp.errors import GuardrailError, InputError
from tests import doubles

pytestmark = pytest.mark.anyio
Q = "insulin glucose in obesity"


async def test_precision_follows_the_guide(calibrated):
    res = await calibrated.search_precision("docs", Q, limit=10)  # fusion "auto": the collection has BM25 vectors
    assert res.method == "rf-precision+sparse" and res.fusion == "sparse"
    dense = await calibrated.search_precision("docs", Q, limit=10, fusion="none")
    assert dense.method == "rf-precision" and dense.profile.fingerprint == res.profile.fingerprint  # one calibration
    assert res.mode == "precision" and res.feedback_scores_used == 5 and res.scoring_rounds == 1
    assert len(res.hits) == 10 and all(h.source == "rf" for h in res.hits)
    assert [h.rank for h in res.hits] == list(range(1, 11))
    assert all(h.doc_id and h.doc_id.startswith("d") for h in res.hits)
    assert res.profile.fingerprint != "vanilla" and res.profile.weights.c != 0
    assert any("not been evaluated" in w for w in res.warnings)
    assert set(res.timings_ms) == {"embed", "ann", "scoring", "rf_query"}


async def test_recall_merges_and_sorts_by_feedback_score(calibrated):
    rec = await calibrated.search_recall("docs", Q, budget=20)
    assert rec.feedback_scores_used == 25 and rec.scoring_rounds == 2 and len(rec.hits) == 25
    scores = [h.feedback_score for h in rec.hits]
    assert scores == sorted(scores, reverse=True)
    seeds = [h for h in rec.hits if h.source == "seed"]
    assert len(seeds) == 5 and len({h.id for h in rec.hits}) == 25  # seed ids excluded from the RF results
    by_ids = await calibrated.search_recall("docs", Q, seed_ids=[h.id for h in seeds[:3]], budget=7, limit=5)
    assert by_ids.feedback_scores_used == 10 and len(by_ids.hits) == 5
    with pytest.raises(InputError, match="not found"):
        await calibrated.search_recall("docs", Q, seed_ids=[h.id for h in seeds[:2]] + [987654321])
    with pytest.raises(InputError, match="empty"):
        await calibrated.search_precision("docs", "   ")
    with pytest.raises(InputError, match="at most 4000"):
        await calibrated.search_precision("docs", "x" * 4001)


async def test_vanilla_weights_through_rf_equal_plain_search(calibrated):
    """a=1, b=0, c=0 is plain vector search through the RF API: the same order as the nearest query."""
    for q in doubles.queries(10, seed=5):
        a = await calibrated.search_precision("docs", q, vanilla=True, limit=20, fusion="none")
        qv = await calibrated.retriever.embed_query(q)
        from rf_mcp.domain.search import nearest

        target = await calibrated.target("docs")
        b = await nearest(target, qv, 20)
        assert [h.id for h in a.hits] == [p.id for p in b]


async def test_profiles_keep_the_previous_version_and_roll_back(calibrated):
    before = (await calibrated.list_profiles("docs"))[0]
    assert before.status == "usable" and before.matches_config and before.previous is None
    report = await calibrated.calibrate("docs", doubles.queries(40, seed=3), doubles.TRAIN.model_copy(update={"limit": 20}))
    after = (await calibrated.list_profiles("docs"))[0]
    assert after.profile.train.limit == 20 and after.previous.weights == before.profile.weights
    assert report.stored_key == after.key
    restored = await calibrated.rollback("docs")
    assert restored.weights == before.profile.weights
    again = (await calibrated.list_profiles("docs"))[0]
    assert again.profile.weights == before.profile.weights and again.previous.train.limit == 20
    await calibrated.engine.set_metadata("docs", {again.key: {"current": None, "previous": None}})
    with pytest.raises(InputError, match="no previous version"):
        await calibrated.rollback("docs")


async def test_other_scorers_profiles_are_kept_apart(calibrated):
    other = doubles.service(engine=calibrated.engine, scorer=doubles.FunctionScorer(doubles.overlap, "test-overlap"))
    await other.calibrate("docs", doubles.queries(), doubles.TRAIN)
    keys = {s.profile.feedback for s in await calibrated.list_profiles("docs")}
    assert keys == {calibrated.scorer.identity, "test-overlap"}
    assert (await calibrated.search_precision("docs", Q)).feedback_scores_used == 5  # the BM25 one still serves
    assert (await other.search_precision("docs", Q)).feedback_scores_used == 5


async def test_overview_lists_collections_and_profiles(calibrated):
    ov = await calibrated.overview()
    assert [c.info.name for c in ov.collections] == ["docs"] and ov.qdrant == "memory"
    docs = ov.collections[0]
    assert docs.info.points_count == 300 and {v.name for v in docs.info.vectors} == {"dense", "bm25"}
    assert docs.profiles[0].status == "usable" and ov.configured_feedback == calibrated.scorer.identity
    with pytest.raises(InputError, match="does not exist"):
        await calibrated.overview("nowhere")


async def test_calibration_input_checks(indexed):
    with pytest.raises(InputError, match="too few"):
        await indexed.calibrate("docs", ["one query", "two"])
    with pytest.raises(InputError, match="context_limit=6 must be smaller than limit=6"):
        await indexed.calibrate("docs", doubles.queries(), doubles.TRAIN.model_copy(update={"limit": 6, "context_limit": 6}))
    with pytest.raises(InputError, match="has 300 points"):
        await indexed.calibrate("docs", doubles.queries(), doubles.TRAIN.model_copy(update={"limit": 301}))
    with pytest.raises(InputError, match="over your max_feedback_scores of 100"):
        await indexed.calibrate("docs", doubles.queries(), doubles.TRAIN, max_feedback_scores=100)
    with pytest.raises(InputError, match="exactly one of queries"):
        await indexed.calibrate("docs")


async def test_no_signal_is_stored_as_unusable_and_refused(indexed):
    """A feedback model that agrees with the retriever (its own similarity) has nothing to teach."""
    retriever = indexed.retriever

    def agree(query: str, doc: str) -> float:
        return float(retriever.embed(query) @ retriever.embed(doc))  # type: ignore[attr-defined]

    rf = doubles.service(engine=indexed.engine, retriever=retriever, scorer=doubles.FunctionScorer(agree, "test-agree"))
    report = await rf.calibrate("docs", doubles.queries(), doubles.TRAIN)
    assert not report.profile.usable and "UNUSABLE" in report.message
    assert any("disagreed with the retriever on only" in r for r in report.profile.reasons)
    with pytest.raises(GuardrailError, match="unusable"):
        await rf.search_precision("docs", Q)


async def test_inverted_scores_are_flagged(indexed):
    """A scorer whose scores fall as relevance rises (a distance) is caught and its profile is unusable."""
    rf = doubles.service(engine=indexed.engine, scorer=doubles.FunctionScorer(lambda q, d: -doubles.overlap(q, d),
                                                                               "test-negated"))
    report = await rf.calibrate("docs", doubles.queries(), doubles.TRAIN)
    assert report.profile.signal.retriever_correlation < -0.1
    assert not report.profile.usable and any("look like a distance" in r for r in report.profile.reasons)
    with pytest.raises(GuardrailError, match="look like a distance"):
        await rf.search_precision("docs", Q)


async def test_recall_never_returns_a_seed_twice_whatever_the_pairing(templates):
    """With pairing "extremes" only two seeds go into the RF query as examples; the others must still be excluded."""
    import copy

    from rf_mcp.config import Config

    cfg = Config.model_validate({"qdrant": {"backend": "memory"}, "calibration": {"pairing": "extremes"}})
    rf = doubles.service(cfg, engine=copy.deepcopy(templates["indexed"]))
    await rf.calibrate("docs", doubles.queries(), doubles.TRAIN)  # dense seeds: one calibration, both fusions
    for fusion in ("none", "sparse"):
        for q in doubles.queries(8, seed=9):
            res = await rf.search_recall("docs", q, budget=15, fusion=fusion)
            ids = [h.id for h in res.hits]
            assert len(ids) == len(set(ids)) == 20, (fusion, q)


def test_ranking_metrics_count_a_repeated_document_once():
    from rf_mcp import ranking_metrics

    rels = {"a": 1, "b": 1}
    assert ranking_metrics(["a", "a", "b"], rels) == ranking_metrics(["a", "b"], rels)


async def test_indexing_past_the_hnsw_threshold_without_building_says_how_to_build(tmp_path):
    from rf_mcp.config import Config

    corpus = tmp_path / "c.jsonl"
    corpus.write_text("\n".join(json.dumps(d) for d in doubles.corpus(60)) + "\n")
    cfg = {"qdrant": {"backend": "memory", "hnsw_threshold": 50}, "collection": {"vector_name": "dense"}}
    rf = doubles.service(Config.model_validate(cfg))
    report = await rf.index("big", corpus)  # the index tool's call: no index build inside a request
    assert any("60 points are not in an HNSW index" in n and "rf-mcp optimize -c big" in n for n in report.notes)
    cfg["qdrant"]["hnsw_threshold"] = 61
    assert not (await doubles.service(Config.model_validate(cfg)).index("small", corpus)).notes


async def test_bm25_statistics_follow_documents_indexed_since(tmp_path):
    """Feedback scores use the collection's current statistics: documents indexed after the first search count."""
    rf = doubles.service()
    first, more = tmp_path / "first.jsonl", tmp_path / "more.jsonl"
    first.write_text("\n".join(json.dumps(d) for d in doubles.corpus(60)) + "\n")
    more.write_text("\n".join(json.dumps({"_id": f"x{i}", "title": "zebrafish", "text": "zebrafish fins"})
                              for i in range(30)) + "\n")
    await rf.index("docs", first)
    doc = ["zebrafish fin regeneration"]
    await rf.target("docs")
    before = await rf.scorer.score("zebrafish", doc)
    await rf.index("docs", more)  # 30 more documents, every one with the query term: its IDF falls
    await rf.target("docs")
    after = await rf.scorer.score("zebrafish", doc)
    fresh = doubles.service(engine=rf.engine)  # a process started after the indexing
    await fresh.target("docs")
    assert after == await fresh.scorer.score("zebrafish", doc) and after[0] < before[0]


async def test_bm25_statistics_stay_with_each_requests_collection():
    """Two requests on two collections at once: each scores with its own collection's term statistics."""
    import anyio

    from rf_mcp.adapters.scorers.bm25 import BM25Scorer
    from tests.unit.test_bm25_stats import stats_of

    scorer = BM25Scorer()
    corpora = {"rare": ["tau tau tau protein", "other words here", "more text"] * 3,
               "common": ["tau protein"] * 9 + ["unrelated"]}

    async def texts_of(name: str):
        stats = stats_of(corpora[name], revision=name)

        async def read():
            return stats
        return read

    docs = ["tau protein in neurons", "nothing relevant"]
    alone = {}
    for name in corpora:
        await scorer.bind(name, await texts_of(name))
        alone[name] = await scorer.score("tau", docs)
    assert alone["rare"] != alone["common"]  # the statistics matter
    together = {}

    async def request(name: str, delay: float) -> None:
        await scorer.bind(name, await texts_of(name))
        await anyio.sleep(delay)  # the other request binds its collection meanwhile
        together[name] = await scorer.score("tau", docs)

    async with anyio.create_task_group() as tg:
        tg.start_soon(request, "rare", 0.05)
        tg.start_soon(request, "common", 0.0)
    assert together == alone


async def test_judgments_that_match_no_retrieved_id_name_the_id_field(calibrated):
    """Judgments naming documents by ids the collection does not hold (ids under another payload key): a clear input
    error naming [collection] id_field, not nDCG 0.000 for every method and a failed gate."""
    from rf_mcp import Query

    queries = [Query(id=f"q{i}", text=t) for i, t in enumerate(doubles.queries(12, seed=7))]
    before = await calibrated.engine.get_metadata("docs")
    with pytest.raises(InputError, match="matched an id in the relevance judgments") as err:
        await calibrated.evaluate("docs", queries, qrels={q.id: {f"elsewhere-{q.id}": 1} for q in queries})
    assert "id_field" in err.value.fix
    assert await calibrated.engine.get_metadata("docs") == before  # nothing stored (the stored state, not its age)


async def test_index_creates_a_payload_index_per_filterable_field(tmp_path):
    from rf_mcp.config import Config

    corpus = tmp_path / "c.jsonl"
    corpus.write_text("\n".join(json.dumps(d) for d in doubles.corpus(30)) + "\n")
    cfg = Config.model_validate({"qdrant": {"backend": "memory"}, "collection": {
        "vector_name": "dense", "filterable_fields": {"year": "integer", "topic": "keyword"}}})
    rf = doubles.service(cfg)
    await rf.index("docs", corpus)
    assert rf.engine._get("docs").indexes == {"year": "integer", "topic": "keyword"}  # type: ignore[attr-defined]


async def test_listing_collections_loads_no_model(templates):
    """list_collections (and profiles) need the retriever's identity, not the model: nothing is loaded (offline, a
    model loaded by name would first retry its download for tens of seconds)."""
    import copy

    retriever = doubles.HashRetriever()
    rf = doubles.service(engine=copy.deepcopy(templates["calibrated"]), retriever=retriever)
    overview = await rf.overview()
    assert overview.collections[0].profiles[0].matches_config and not retriever.loaded
    await rf.search_precision("docs", "tau protein")
    assert retriever.loaded


async def test_migrate_refuses_a_file_or_the_source_folder_as_destination(tmp_path):
    from rf_mcp.config import Config, QdrantSettings

    source = tmp_path / "data"
    rf = doubles.service(Config.model_validate({"qdrant": {"path": str(source), "backend": "edge"},
                                                "collection": {"vector_name": "dense"}}))
    a_file = tmp_path / "corpus.jsonl"
    a_file.write_text("{}\n")
    with pytest.raises(InputError, match="is a file, not a folder"):
        await rf.migrate("docs", QdrantSettings(path=str(a_file), backend="edge"))
    with pytest.raises(InputError, match="is the source folder"):
        await rf.migrate("docs", QdrantSettings(path=str(tmp_path / "." / "data"), backend="edge"))
    assert a_file.read_text() == "{}\n" and not source.exists()
