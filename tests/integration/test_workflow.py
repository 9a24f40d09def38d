"""index -> calibrate -> evaluate -> search on scifact-mini, with real models and an embedded Qdrant."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rf_mcp.adapters.scorers.bm25 import BM25Scorer
from rf_mcp.bootstrap import open_service
from rf_mcp.config import load_config
from rf_mcp.domain.datasets import read_qrels, read_queries
from rf_mcp.domain.models import TrainSettings
from rf_mcp.errors import GuardrailError, InputError
from tests.common import MINI, SCIFACT, CachedDenseScorer, make_config, needs_shared, train_queries

pytestmark = [needs_shared, pytest.mark.anyio]
Q = "APOE4 expression in neurons increases tau phosphorylation"


async def test_index_embeds_with_the_model_and_is_idempotent(tmp_path):
    corpus = tmp_path / "c.jsonl"
    lines = (MINI / "corpus.jsonl").read_text().splitlines()[:12]
    corpus.write_text("\n".join(lines) + "\n")
    cfg = load_config(make_config(tmp_path, tmp_path / "data"), env={})
    async with open_service(cfg) as rf:
        first = await rf.index("docs", corpus)
        again = await rf.index("docs", corpus)
        assert first.created and not again.created
        assert first.points_count == again.points_count == 12
        # the stored vectors are the MiniLM vectors of the same texts (int8 vs fp32 model: cos >= 0.999)
        ids = json.loads((SCIFACT / "embeddings" / "minilm_ids.json").read_text())["corpus_ids"]
        ref = np.load(SCIFACT / "embeddings" / "minilm_corpus.npy", mmap_mode="r")
        doc = json.loads(lines[3])
        rec = (await rf.engine.retrieve("docs", [int(doc["_id"])], with_vector="dense"))[0]
        assert rec.payload["doc_id"] == doc["_id"] and rec.payload["title"] == doc["title"]
        assert float(np.dot(rec.vector, ref[ids.index(doc["_id"])])) > 0.999


async def test_index_rejects_bad_input(tmp_path):
    cfg = load_config(make_config(tmp_path, tmp_path / "data"), env={})
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"_id": "1", "text": "ok"}\n{"_id": "2", "text": \n')
    noid = tmp_path / "noid.jsonl"
    noid.write_text('{"text": "no id"}\n')
    vectors = tmp_path / "v.npy"
    np.save(vectors, np.random.default_rng(0).normal(size=(1, 384)).astype(np.float32))
    good = tmp_path / "good.jsonl"
    good.write_text('{"_id": "1", "title": "Cells", "text": "Stem cells divide."}\n')
    async with open_service(cfg) as rf:
        with pytest.raises(InputError, match=r"Line 2 of the corpus file is not valid JSON"):
            await rf.index("x", bad)
        with pytest.raises(InputError, match="no usable id in field '_id'"):
            await rf.index("x", noid)
        with pytest.raises(InputError, match="do not match the configured retriever"):
            await rf.index("x", good, vectors_path=vectors)
        assert not await rf.engine.exists("x")  # nothing half-written


async def test_calibration_profile_signal_and_restart(mini_template, tmp_path):
    """The session fixture calibrated mini with BM25; the profile is in Qdrant and survives a reopen."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(mini_template, data)
    cfg = load_config(make_config(tmp_path, data), env={})
    async with open_service(cfg) as rf:
        summaries = await rf.list_profiles("mini")
    assert len(summaries) == 1
    s = summaries[0]
    p = s.profile
    assert s.status == "usable" and s.matches_config
    assert p.feedback == BM25Scorer().identity and p.retriever.startswith("local/all-MiniLM-L6-v2@sha256:")
    assert p.query_count == len(set(train_queries())) and p.points_count == 500
    assert (p.weights.a, p.weights.b, p.weights.c) != (1.0, 1.0, 1.0)
    assert p.signal.disagreement >= 0.10
    # the default trainer is the library's objective in numpy: nothing printed (the library's own trainer prints the
    # share, cross-checked in tests/integration/test_trainer_double.py)
    assert p.trainer.startswith("numpy-fit") and p.signal.library_reported is None
    # a second process-like reopen sees the same profile and can search with it
    async with open_service(cfg) as rf:
        res = await rf.search_precision("mini", Q)
    assert res.profile.fingerprint == p.fingerprint and res.feedback_scores_used == 5


async def test_recalibration_keeps_previous_and_other_profiles(mini_store):
    cfg, _ = mini_store
    async with open_service(cfg) as rf:
        before = (await rf.list_profiles("mini"))[0].profile
        other = open_service(cfg, engine=rf.engine, scorer=BM25Scorer(k1=2.0))
        other_report = await other.calibrate("mini", train_queries(), TrainSettings(limit=20, epochs=200))
        report = await rf.calibrate("mini", train_queries(), TrainSettings(limit=30, epochs=300))
        listing = {s.key: s for s in await rf.list_profiles("mini")}
        assert set(listing) == {report.stored_key, other_report.stored_key}
        mine = listing[report.stored_key]
        assert mine.profile.train.limit == 30 and mine.previous.train.limit == 50
        assert mine.previous.weights == before.weights
        restored = await rf.rollback("mini")
        assert restored.weights == before.weights
        assert (await rf.list_profiles("mini"))[0].profile is not None


async def test_no_signal_is_stored_as_unusable_and_refused(mini_store):
    """A feedback model that agrees with the retriever (its own cached vectors) has nothing to teach."""
    cfg, _ = mini_store
    async with open_service(cfg) as rf:
        agree = open_service(cfg, engine=rf.engine, retriever=rf.retriever, scorer=CachedDenseScorer(rf.retriever))
        report = await agree.calibrate("mini", train_queries(30), TrainSettings(limit=20, epochs=100))
        assert not report.profile.usable
        assert "UNUSABLE" in report.message
        assert any("disagreed with the retriever on only" in r for r in report.profile.reasons)
        assert report.profile.signal.disagreement < 0.10
        with pytest.raises(GuardrailError, match="unusable"):
            await agree.search_precision("mini", Q)


async def test_calibration_input_checks(mini_store):
    cfg, _ = mini_store
    async with open_service(cfg) as rf:
        with pytest.raises(InputError, match="too few"):
            await rf.calibrate("mini", ["one query", "two"])
        with pytest.raises(InputError, match="context_limit=6 must be smaller than limit=6"):
            await rf.calibrate("mini", train_queries(), TrainSettings(limit=6, context_limit=6))
        with pytest.raises(InputError, match="has 500 points"):
            await rf.calibrate("mini", train_queries(), TrainSettings(limit=501))


async def test_searches_follow_the_guide(mini_store):
    cfg, _ = mini_store
    async with open_service(cfg) as rf:
        prec = await rf.search_precision("mini", Q, limit=10)
        assert prec.feedback_scores_used == 5 and prec.scoring_rounds == 1 and len(prec.hits) == 10
        assert any("not been evaluated" in w for w in prec.warnings)
        assert all(h.source == "rf" for h in prec.hits)
        rec = await rf.search_recall("mini", Q, budget=20)
        assert rec.feedback_scores_used == 25 and rec.scoring_rounds == 2 and len(rec.hits) == 25
        scores = [h.feedback_score for h in rec.hits]
        assert scores == sorted(scores, reverse=True)  # merged and sorted by feedback score
        seeds = [h for h in rec.hits if h.source == "seed"]
        assert len(seeds) == 5 and len({h.id for h in rec.hits}) == 25  # seed ids excluded from RF results
        by_ids = await rf.search_recall("mini", Q, seed_ids=[h.id for h in seeds[:3]], budget=7, limit=5)
        assert by_ids.feedback_scores_used == 10 and len(by_ids.hits) == 5
        with pytest.raises(InputError, match="not found"):
            await rf.search_recall("mini", Q, seed_ids=[h.id for h in seeds[:2]] + [987654321])
        with pytest.raises(InputError, match="empty"):
            await rf.search_precision("mini", "   ")


async def test_evaluate_reports_library_and_ground_truth(mini_store):
    cfg, _ = mini_store
    queries = read_queries(MINI / "queries.jsonl")
    qrels = read_qrels(MINI / "qrels" / "test.tsv")
    async with open_service(cfg) as rf:
        with pytest.raises(InputError, match="training queries"):
            from rf_mcp.domain.datasets import Query
            await rf.evaluate("mini", [Query(text=t) for t in train_queries()[:5]])
        report = await rf.evaluate("mini", queries[:30], qrels=qrels, fusion="none")
        ev = report.evaluation
        gt = ev.ground_truth
        assert ev.queries == 30 and 0 < ev.queries_evaluated <= 30
        assert ev.dcg_rf_wins_pct + ev.dcg_vanilla_wins_pct + ev.dcg_ties_pct == pytest.approx(100, abs=0.05)
        assert gt.queries == 30
        assert [m.method for m in gt.methods] == ["vanilla", "hybrid", "rerank top-5", "rerank top-25",
                                                  "rf precision", "rf recall"]
        assert [m.feedback_cost for m in gt.methods] == [0, 0, 5, 25, 5, 25]
        assert gt.first_pass == gt.baseline == "vanilla" and gt.best_method in {m.method for m in gt.methods}
        by = {m.method: m for m in gt.methods}
        assert gt.reranker_gain_ndcg10 == pytest.approx(by["rerank top-25"].ndcg_at_10 - by["vanilla"].ndcg_at_10, abs=1e-3)
        # the verdict follows from the intervals of the differences it rests on (reranker; RF precision, recall)
        rerank, *rf_rows = gt.differences
        assert rerank.mean == pytest.approx(gt.reranker_gain_ndcg10, abs=1e-3)
        failed = rerank.high <= 0 or rerank.mean <= 0 or all(d.high <= 0 for d in rf_rows)
        passed = rerank.low > 0 and any(d.low > 0 for d in rf_rows)
        assert ev.verdict == ("failed" if failed else "passed" if passed else "inconclusive")
        stored = (await rf.list_profiles("mini"))[0]
        assert stored.profile.evaluation("none").model_dump() == ev.model_dump()
        if failed:
            with pytest.raises(GuardrailError, match="failed its ground-truth evaluation"):
                await rf.search_precision("mini", Q, fusion="none")
        without = await rf.evaluate("mini", queries[30:40], fusion="none")
        assert without.evaluation.verdict == "unverified" and without.evaluation.ground_truth is None
        assert not without.stored  # the verdict on 30 judged queries stands
