"""Each guardrail refuses with a clear error; each test fails if its guardrail is removed."""

from __future__ import annotations

import math

import pytest

from rf_mcp.adapters.scorers.bm25 import BM25Scorer
from rf_mcp.bootstrap import open_service
from rf_mcp.config import Bm25Feedback
from rf_mcp.domain.models import Evaluation
from rf_mcp.errors import GuardrailError, InputError, ModelError
from rf_mcp.ports import CollectionSpec, Nearest, QueryRequest
from tests.common import ConstantScorer, needs_shared

pytestmark = [needs_shared, pytest.mark.anyio]
Q = "APOE4 expression in neurons increases tau phosphorylation"


async def test_refuses_uncalibrated_collection(mini_store):
    cfg, _ = mini_store
    async with open_service(cfg) as rf:
        info = await rf.target("mini")
        # drop the stored calibration: the same collection is now uncalibrated
        await rf.engine.set_metadata("mini", {info.parts.key: None})
        for call in (rf.search_precision("mini", Q), rf.search_recall("mini", Q)):
            with pytest.raises(GuardrailError, match="no calibration") as err:
                await call
            assert "calibrate" in str(err.value)


async def test_vanilla_mode_only_on_request_and_equals_ann(mini_store):
    cfg, _ = mini_store
    async with open_service(cfg) as rf:
        target = await rf.target("mini")
        await rf.engine.set_metadata("mini", {target.parts.key: None})
        res = await rf.search_precision("mini", Q, vanilla=True, limit=10, fusion="none")
        assert res.profile.vanilla_mode and res.feedback_scores_used == 0
        qv = await rf.retriever.embed_query(Q)
        ann = await rf.engine.query("mini", QueryRequest(Nearest(qv.tolist(), "dense"), 10))
        assert [h.id for h in res.hits] == [p.id for p in ann]


async def test_fewer_than_two_seeds_refused(mini_store):
    cfg, _ = mini_store
    async with open_service(cfg) as rf:  # refused by the request model before any work, as on MCP and the CLI
        with pytest.raises(InputError, match="seeds: Input should be greater than or equal to 2"):
            await rf.search_precision("mini", Q, seeds=1)
        hit = (await rf.search_precision("mini", Q)).hits[0]
        with pytest.raises(InputError, match="seed_ids: List should have at least 2 items"):
            await rf.search_recall("mini", Q, seed_ids=[hit.id])


async def test_seeds_without_contrast_refused(mini_store):
    cfg, _ = mini_store
    # a feedback model that gives every document the same score, calibrated identity faked as the BM25 one
    scorer = ConstantScorer(1.0, identity=BM25Scorer().identity)
    async with open_service(cfg, scorer=scorer) as rf:
        with pytest.raises(GuardrailError, match="same feedback score"):
            await rf.search_precision("mini", Q)
        with pytest.raises(GuardrailError, match="same feedback score"):
            await rf.search_recall("mini", Q)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
async def test_non_finite_scores_refused(mini_store, bad):
    cfg, _ = mini_store
    scorer = ConstantScorer(bad, identity=BM25Scorer().identity)
    async with open_service(cfg, scorer=scorer) as rf:
        with pytest.raises(GuardrailError, match="non-finite"):
            await rf.search_precision("mini", Q)


async def test_wrong_number_of_scores_is_a_model_error(mini_store):
    cfg, _ = mini_store

    class Short(ConstantScorer):
        async def score(self, query, documents):
            return [1.0]

    async with open_service(cfg, scorer=Short(1.0, identity=BM25Scorer().identity)) as rf:
        with pytest.raises(ModelError, match="returned 1 scores for 5 documents"):
            await rf.search_precision("mini", Q)


async def test_different_feedback_model_refused(mini_store):
    cfg, _ = mini_store
    other = cfg.model_copy(update={"feedback": Bm25Feedback(k1=2.0)})
    async with open_service(other) as rf:
        with pytest.raises(GuardrailError, match=r"different setup: feedback model 'bm25\(k1=1.2,b=0.75,analyzer=en-v1"):
            await rf.search_precision("mini", Q)


async def test_sparse_vector_refused(mini_store):
    cfg, _ = mini_store
    async with open_service(cfg) as rf:
        await rf.engine.create_collection("hybrid", CollectionSpec("dense", 384, sparse=("bm25",)))
        with pytest.raises(GuardrailError, match="sparse"):
            await rf.search_precision("hybrid", Q, vector_name="bm25")
        with pytest.raises(InputError, match="no vector 'nope'"):
            await rf.search_precision("hybrid", Q, vector_name="nope")


async def test_wrong_dimension_and_missing_collection(mini_store):
    cfg, _ = mini_store
    async with open_service(cfg) as rf:
        await rf.engine.create_collection("small", CollectionSpec("dense", 8))
        with pytest.raises(InputError, match="8 dimensions but the retriever makes 384"):
            await rf.search_precision("small", Q)
        with pytest.raises(InputError, match="does not exist"):
            await rf.search_precision("nowhere", Q)


async def test_unusable_calibration_refused(mini_store):
    cfg, _ = mini_store
    async with open_service(cfg) as rf:
        target = await rf.target("mini")
        profile = await rf.profiles.get("mini", target.parts.fingerprint)
        await rf.profiles.save(profile.model_copy(update={"usable": False, "reasons": ["test: no signal"]}))
        with pytest.raises(GuardrailError, match="unusable: test: no signal"):
            await rf.search_precision("mini", Q)


async def test_failed_ground_truth_evaluation_refused(mini_store):
    cfg, _ = mini_store
    async with open_service(cfg) as rf:
        target = await rf.target("mini")
        ev = Evaluation(fusion="none", at_n=10, queries=20, queries_evaluated=20, rf_above_threshold=1,
                        vanilla_above_threshold=1, relative_gain_pct=0, dcg_rf_wins_pct=50, dcg_vanilla_wins_pct=50,
                        dcg_ties_pct=0, feedback_scores_used=1, verdict="failed", reasons=["test: reranker worse"])
        await rf.profiles.set_evaluation("mini", target.parts.fingerprint, ev)
        with pytest.raises(GuardrailError, match="failed its ground-truth evaluation with fusion=none: test: reranker"):
            await rf.search_precision("mini", Q, fusion="none")


async def test_drift_warning(mini_store):
    cfg, _ = mini_store
    async with open_service(cfg) as rf:
        target = await rf.target("mini")
        profile = await rf.profiles.get("mini", target.parts.fingerprint)
        res = await rf.search_precision("mini", Q)
        assert not any("recalibrate" in w for w in res.warnings)
        await rf.profiles.save(profile.model_copy(update={"points_count": 250}))
        res = await rf.search_precision("mini", Q)
        assert any("from 250 to 500 points (+100%)" in w for w in res.warnings)


async def test_inverted_scores_are_flagged_at_calibration(mini_store):
    """A scorer whose scores fall as relevance rises (a distance) is caught and the profile is unusable."""
    from rf_mcp.domain.models import TrainSettings
    from tests.common import train_queries

    class Distance(BM25Scorer):
        identity = "test-negated-bm25"

        async def score(self, query, documents):
            return [-s for s in await super().score(query, documents)]

    cfg, _ = mini_store
    async with open_service(cfg) as rf:
        ok = (await rf.list_profiles("mini"))[0].profile
        assert ok.signal.retriever_correlation > 0.1 and ok.usable
    async with open_service(cfg, scorer=Distance()) as rf:
        report = await rf.calibrate("mini", train_queries(), TrainSettings(limit=30, epochs=200))
        assert report.profile.signal.retriever_correlation < -0.1
        assert not report.profile.usable and any("look like a distance" in r for r in report.profile.reasons)
        with pytest.raises(GuardrailError, match="look like a distance"):
            await rf.search_precision("mini", Q)
