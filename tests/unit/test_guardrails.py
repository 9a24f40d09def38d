"""Each guardrail of Qdrant's RF guide refuses with a clear error; each test fails if its guardrail is removed.

All on the in-memory engine, the hash retriever and BM25 feedback: no model, no shared data.
"""

from __future__ import annotations

import math

import pytest

from rf_mcp.adapters.scorers.bm25 import BM25Scorer
from rf_mcp.config import Config
from rf_mcp.domain.models import Evaluation
from rf_mcp.errors import GuardrailError, InputError, ModelError
from rf_mcp.ports import CollectionSpec, Fusion, Nearest, PointInput, Prefetch, QueryRequest, SparseNearest
from tests import doubles

pytestmark = pytest.mark.anyio
Q = "tau protein in the brain cortex"
BM25 = BM25Scorer().identity


async def test_refuses_an_uncalibrated_collection(indexed):
    for call in (indexed.search_precision("docs", Q), indexed.search_recall("docs", Q)):
        with pytest.raises(GuardrailError, match="no calibration") as err:
            await call
        assert "untrained weights give arbitrary results" in str(err.value) and "calibrate" in str(err.value)


async def test_vanilla_mode_only_on_request_and_equal_to_nearest(indexed):
    res = await indexed.search_precision("docs", Q, vanilla=True, limit=10, fusion="none")
    assert res.profile.vanilla_mode and res.feedback_scores_used == 0 and res.scoring_rounds == 0
    assert res.method == "vanilla" and res.fusion == "none"
    qv = await indexed.retriever.embed_query(Q)
    ann = await indexed.engine.query("docs", QueryRequest(Nearest(qv.tolist(), "dense"), 10))
    assert [h.id for h in res.hits] == [p.id for p in ann]


async def test_plain_hybrid_mode_is_one_fused_query_without_feedback(indexed):
    res = await indexed.search_precision("docs", Q, vanilla=True, limit=10, fusion="sparse")
    assert res.method == "hybrid" and res.fusion == "sparse" and res.feedback_scores_used == 0
    qv = await indexed.retriever.embed_query(Q)
    sq = indexed.sparse_encoder.encode_query(Q)
    fused = await indexed.engine.query("docs", QueryRequest(Fusion((Prefetch(Nearest(qv.tolist(), "dense"), 100),
                                                                    Prefetch(SparseNearest(sq, "bm25"), 100))), 10))
    assert {h.id for h in res.hits} == {p.id for p in fused}
    assert [h.score for h in res.hits] == sorted((p.score for p in fused), reverse=True)


async def test_fewer_than_two_seeds_refused(calibrated):
    """The request model refuses them before any work, with the same words on every surface (MCP, CLI, Python)."""
    with pytest.raises(InputError, match="seeds: Input should be greater than or equal to 2"):
        await calibrated.search_precision("docs", Q, seeds=1)
    hit = (await calibrated.search_precision("docs", Q)).hits[0]
    with pytest.raises(InputError, match="seed_ids: List should have at least 2 items"):
        await calibrated.search_recall("docs", Q, seed_ids=[hit.id])
    with pytest.raises(InputError, match="seeds: Input should be less than or equal to 20"):
        await calibrated.search_precision("docs", Q, seeds=21)


async def test_seeds_without_contrast_refused(templates):
    import copy

    rf = doubles.service(engine=copy.deepcopy(templates["calibrated"]), scorer=doubles.ConstantScorer(1.0, BM25))
    for call in (rf.search_precision("docs", Q), rf.search_recall("docs", Q)):
        with pytest.raises(GuardrailError, match="same feedback score"):
            await call


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
async def test_non_finite_scores_refused(templates, bad):
    import copy

    rf = doubles.service(engine=copy.deepcopy(templates["calibrated"]), scorer=doubles.ConstantScorer(bad, BM25))
    with pytest.raises(GuardrailError, match="non-finite"):
        await rf.search_precision("docs", Q)


async def test_wrong_number_of_scores_is_a_model_error(templates):
    import copy

    class Short(doubles.ConstantScorer):
        async def score(self, query, documents):
            return [1.0]

    rf = doubles.service(engine=copy.deepcopy(templates["calibrated"]), scorer=Short(1.0, BM25))
    with pytest.raises(ModelError, match="returned 1 scores for 5 documents"):
        await rf.search_precision("docs", Q)


async def test_another_feedback_model_or_retriever_refused(templates):
    import copy

    other_scorer = doubles.service(engine=copy.deepcopy(templates["calibrated"]), scorer=BM25Scorer(k1=2.0))
    with pytest.raises(GuardrailError, match=r"different setup: feedback model 'bm25\(k1=1.2") as err:
        await other_scorer.search_precision("docs", Q)
    assert "(configured: 'bm25(k1=2," in str(err.value)
    other_retriever = doubles.service(engine=copy.deepcopy(templates["calibrated"]),
                                      retriever=doubles.HashRetriever(identity="other-hash"))
    with pytest.raises(GuardrailError, match="retriever 'test-hash-32' \\(configured: 'other-hash-32'\\)"):
        await other_retriever.search_recall("docs", Q)


async def test_other_text_fields_are_another_setup(templates):
    """The feedback model read title + text at calibration: weights are refused when it would read only titles."""
    import copy

    cfg = Config.model_validate({"qdrant": {"backend": "memory"},
                                 "collection": {"vector_name": "dense", "text_fields": ["title"]}})
    titles = doubles.service(cfg, engine=copy.deepcopy(templates["calibrated"]))
    with pytest.raises(GuardrailError, match=r"text_fields \['title', 'text'\] \(configured: \['title'\]"):
        await titles.search_precision("docs", Q)
    assert not (await titles.list_profiles("docs"))[0].matches_config


async def test_sparse_multi_missing_and_wrong_size_vectors(indexed):
    engine = indexed.engine
    await engine.create_collection("small", CollectionSpec("dense", 8))
    await engine.upsert("small", [PointInput(1, {"dense": [0.1] * 8}, {"text": "x"})])
    with pytest.raises(GuardrailError, match="sparse"):
        await indexed.search_precision("docs", Q, vector_name="bm25")  # RF never runs on sparse vectors
    with pytest.raises(InputError, match="no vector 'nope'"):
        await indexed.search_precision("docs", Q, vector_name="nope")
    with pytest.raises(InputError, match="8 dimensions but the retriever makes 32"):
        await indexed.search_precision("small", Q, vanilla=True)
    with pytest.raises(InputError, match="does not exist"):
        await indexed.search_precision("nowhere", Q)


async def test_unusable_and_failed_calibrations_refused(calibrated):
    target = await calibrated.target("docs")
    profile = await calibrated.profiles.get("docs", target.parts.fingerprint)
    await calibrated.profiles.save(profile.model_copy(update={"usable": False, "reasons": ["test: no signal"]}))
    with pytest.raises(GuardrailError, match="unusable: test: no signal"):
        await calibrated.search_precision("docs", Q)
    await calibrated.profiles.save(profile)
    ev = Evaluation(fusion="sparse", at_n=10, queries=20, queries_evaluated=20, rf_above_threshold=1,
                    vanilla_above_threshold=1, relative_gain_pct=0, dcg_rf_wins_pct=50, dcg_vanilla_wins_pct=50,
                    dcg_ties_pct=0, feedback_scores_used=1, verdict="failed", reasons=["test: reranker worse"])
    await calibrated.profiles.set_evaluation("docs", target.parts.fingerprint, ev)
    with pytest.raises(GuardrailError, match="failed its ground-truth evaluation with fusion=sparse: test: reranker"):
        await calibrated.search_recall("docs", Q, fusion="sparse")
    # the same weights in the other fusion are judged by that fusion's own evaluation (none yet: a warning)
    res = await calibrated.search_recall("docs", Q, fusion="none")
    assert any("not been evaluated with fusion=none" in w for w in res.warnings)


async def test_drift_warning(calibrated):
    target = await calibrated.target("docs")
    profile = await calibrated.profiles.get("docs", target.parts.fingerprint)
    res = await calibrated.search_precision("docs", Q)
    assert not any("recalibrate" in w for w in res.warnings)
    await calibrated.profiles.save(profile.model_copy(update={"points_count": 150}))
    res = await calibrated.search_precision("docs", Q)
    assert any("from 150 to 300 points (+100%)" in w for w in res.warnings)


async def test_search_defaults_come_from_the_configuration(templates):
    """[search] seeds / limit / recall_budget are the defaults of every call that leaves them out."""
    import copy

    cfg = Config.model_validate({"qdrant": {"backend": "memory"},
                                 "search": {"seeds": 3, "limit": 4, "recall_budget": 6}})
    rf = doubles.service(cfg, engine=copy.deepcopy(templates["calibrated"]))
    prec = await rf.search_precision("docs", Q)
    assert len(prec.hits) == 4 and prec.feedback_scores_used == 3
    rec = await rf.search_recall("docs", Q)
    assert rec.feedback_scores_used == 3 + 6


@pytest.mark.parametrize(("weights", "needle"), [
    ((-0.1, 0.4, 0.01), "a=-0.1"), ((0.1, 12.0, 0.01), "b=12 is above 10"), ((0.1, 0.4, 0.0), "c=0"),
    ((0.1, 0.4, -0.01), "c=-0.01"),
    ((0.1, 0.4, 2e6), "implausibly large"),
])
def test_trained_weights_outside_what_a_search_can_use_are_stored_unusable(weights, needle):
    """Whatever the trainer returns, weights a stored profile would be refused for are never marked usable."""
    from rf_mcp.domain.calibration import judge
    from rf_mcp.domain.models import Signal, Weights

    a, b, c = weights
    signal = Signal(disagreement=0.3, queries_total=60, queries_with_pairs=60, queries_disagreeing=18)
    reasons = judge(Weights(a=a, b=b, c=c), signal)
    assert any(needle in r for r in reasons), reasons
    assert not judge(Weights(a=0.1, b=0.4, c=0.01), signal)


def test_too_little_signal_says_the_numbers_and_what_would_be_enough():
    """A calibration with nothing to learn says how many queries disagreed of how many, in how large a collection,
    the threshold as a count, and what to change."""
    from rf_mcp.domain.calibration import judge
    from rf_mcp.domain.models import Signal, Weights

    weak = Signal(disagreement=4 / 70, queries_total=70, queries_with_pairs=66, queries_disagreeing=4)
    [reason] = judge(Weights(a=0.1, b=0.4, c=0.01), weak, points_count=263, limit=50)
    for needle in ("4 of 70 training queries (6%", "66 had a usable pair", "a collection of 263 documents",
                   "50 candidates are 19% of it", "at least 7 (10%) must disagree", "a larger collection",
                   "a feedback model that knows what the retriever does not"):
        assert needle in reason, reason
    assert "more real queries" not in reason  # 70 is within the guide's 50-200
    few = Signal(disagreement=0.0, queries_total=20, queries_with_pairs=20, queries_disagreeing=0)
    [reason] = judge(Weights(a=0.1, b=0.4, c=0.01), few, points_count=50_000, limit=50)
    assert "more real queries (50-200; 20 were given)" in reason and "larger collection" not in reason
    assert "at least 2 (10%)" in reason
    enough = Signal(disagreement=7 / 70, queries_total=70, queries_with_pairs=66, queries_disagreeing=7)
    assert not judge(Weights(a=0.1, b=0.4, c=0.01), enough, points_count=263, limit=50)
