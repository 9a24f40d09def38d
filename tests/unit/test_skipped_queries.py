"""Calibrate and evaluate skip a query whose grades stay unusable after the judge's retry, count it, and fail past
MAX_SKIPPED_SHARE; a search never skips (issue 23). Through the HTTP judge and the fake OpenAI-compatible server."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import pytest

from rf_mcp.adapters.engines.memory import MemoryEngine
from rf_mcp.domain import guardrails
from rf_mcp.domain.service import RFService
from rf_mcp.errors import ModelError, UnusableGrades
from rf_mcp.ports import Scorer
from rf_mcp.text import render_text
from tests import doubles
from tests.fake_llm import FakeLLM, Served
from tests.unit.test_llm_judge import http_judge

pytestmark = pytest.mark.anyio
QUERIES = doubles.queries(20)


@asynccontextmanager
async def judged_service(engine: MemoryEngine, llm: FakeLLM) -> AsyncIterator[RFService]:
    """A service whose feedback model is the HTTP judge on the fake server (grades by word overlap)."""
    with Served(llm) as served:
        async with http_judge(base_url=served.base_url, structured_output="off") as judge:
            rf = doubles.service(engine=copy.deepcopy(engine), scorer=judge)
            try:
                yield rf
            finally:
                await rf.close()


def test_the_bound_is_ten_percent():
    assert guardrails.MAX_SKIPPED_SHARE == 0.10
    assert [guardrails.max_skipped(n) for n in (9, 10, 19, 20, 30, 200)] == [0, 1, 1, 2, 3, 20]


async def test_calibration_skips_one_query_of_twenty_and_records_it(templates):
    llm = FakeLLM(garbage_queries={QUERIES[4]})
    async with judged_service(templates["indexed"], llm) as rf:
        report = await rf.calibrate("docs", QUERIES, doubles.TRAIN)
        signal = report.profile.signal
        assert signal.queries_skipped == 1 and signal.queries_total == 20
        assert signal.skipped_reason is not None and "unusable grades twice" in signal.skipped_reason
        assert len(signal.skipped_reason) <= 200
        assert any("1 of 20 training queries were skipped" in w for w in report.warnings)
        assert "1 of 20 training queries were skipped" in report.message
        assert "skipped: 1 training queries" in render_text(report)  # the CLI's text
        # 19 queries graded in one request each, the bad one asked twice (its retry), never a third time
        assert llm.requests == 19 + 2
        assert report.feedback_scores_used == 19 * doubles.TRAIN.limit
        stored = (await rf.list_profiles("docs"))[0].profile  # what the collection keeps
        assert stored is not None and stored.signal.queries_skipped == 1
        assert stored.signal.skipped_reason == signal.skipped_reason


async def test_calibration_fails_past_the_bound_naming_the_counts(templates):
    bad = [QUERIES[2], QUERIES[5], QUERIES[8]]
    llm = FakeLLM(garbage_queries=set(bad))
    async with judged_service(templates["indexed"], llm) as rf:
        with pytest.raises(ModelError, match=r"for 3 of 20 training queries \(15%\), over the bound of 10%") as err:
            await rf.calibrate("docs", QUERIES, doubles.TRAIN)
        assert "Nothing was stored" in err.value.problem and "structured_output" in (err.value.fix or "")
        assert not isinstance(err.value, UnusableGrades)  # the calibration's failure, not one query's
        assert llm.requests == 6 + 3 * 2  # it stopped at the third skipped query (the ninth)
        assert all(p.profile is None for p in await rf.list_profiles("docs"))


async def test_two_of_twenty_is_within_the_bound(templates):
    llm = FakeLLM(garbage_queries={QUERIES[0], QUERIES[19]})
    async with judged_service(templates["indexed"], llm) as rf:
        report = await rf.calibrate("docs", QUERIES, doubles.TRAIN)
    assert report.profile.signal.queries_skipped == 2


async def test_other_model_failures_abort_at_once(templates):
    llm = FakeLLM(mode="bad_request")  # a refusal is not a bad reply: nothing to skip
    async with judged_service(templates["indexed"], llm) as rf:
        with pytest.raises(ModelError, match=r"refused the request \(HTTP 400\)") as err:
            await rf.calibrate("docs", QUERIES, doubles.TRAIN)
    assert not isinstance(err.value, UnusableGrades) and llm.requests == 1


class Unusable(Scorer):
    """BM25-like overlap grades, except for the queries in ``bad``: their grades stay unusable (as the judge says)."""

    identity = "test-unusable-for-some"

    def __init__(self, bad: set[str]) -> None:
        self.bad = bad

    async def score(self, query: str, documents: Sequence[str]) -> list[float]:
        if query in self.bad:
            raise UnusableGrades("The LLM judge gave unusable grades twice (x; then y).", fix="Use another model.")
        return [doubles.overlap(query, d) for d in documents]


async def test_a_search_with_unusable_grades_still_fails(templates):
    scorer = Unusable(set())
    rf = doubles.service(engine=copy.deepcopy(templates["indexed"]), scorer=scorer)
    try:
        report = await rf.calibrate("docs", doubles.queries(), doubles.TRAIN)
        assert report.profile.usable, report.message
        query = "tau protein brain study"
        assert (await rf.search_precision("docs", query)).hits  # it searches
        scorer.bad.add(query)
        with pytest.raises(UnusableGrades, match="unusable grades twice"):
            await rf.search_precision("docs", query)
        with pytest.raises(UnusableGrades, match="unusable grades twice"):
            await rf.search_recall("docs", query)
    finally:
        await rf.close()


async def test_evaluation_skips_and_counts_within_the_same_bound(templates):
    qs, qrels = doubles.judged(20)
    scorer = Unusable(set())
    rf = doubles.service(engine=copy.deepcopy(templates["indexed"]), scorer=scorer)
    try:
        assert (await rf.calibrate("docs", doubles.queries(), doubles.TRAIN)).profile.usable
        scorer.bad.update({qs[3]["text"], qs[11]["text"]})
        report = await rf.evaluate("docs", qs, qrels=qrels, store=False)
        ev = report.evaluation
        assert ev is not None and ev.queries_skipped == 2 and "unusable grades" in (ev.skipped_reason or "")
        assert ev.ground_truth is not None and ev.ground_truth.queries == 18  # dropped from every row
        assert qs[3]["id"] not in ev.ground_truth.query_ids
        assert all(len(v) == 18 for v in ev.ground_truth.per_query_ndcg10.values())
        assert any("2 of 20 evaluation queries were skipped" in w for w in report.warnings)
        scorer.bad.add(qs[7]["text"])
        with pytest.raises(ModelError, match=r"3 of 20 evaluation queries \(15%\), over the bound of 10%"):
            await rf.evaluate("docs", qs, qrels=qrels, store=False)
    finally:
        await rf.close()
