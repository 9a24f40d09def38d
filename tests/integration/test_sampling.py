"""The client's own LLM as the feedback model: MCP sampling through the real SDK client, both protocol versions."""

from __future__ import annotations

import json

import anyio
import pytest
from mcp.client.client import Client
from mcp_types import CreateMessageResult, TextContent

from rf_mcp.bootstrap import open_service
from rf_mcp.config import LlmFeedback
from rf_mcp.domain.models import TrainSettings
from rf_mcp.errors import GuardrailError
from rf_mcp.server import build_server
from tests.common import needs_shared, train_queries
from tests.fake_llm import FakeLLM, Served, rule_grades, rule_reply

pytestmark = [needs_shared, pytest.mark.anyio]
Q = "APOE4 expression in neurons increases tau phosphorylation"
MODES = ["legacy", "2026-07-28"]


def sampling_config(cfg):
    return cfg.model_copy(update={"feedback": LlmFeedback(model="rule-judge", transport="sampling")})


class Grader:
    """The client side: grades deterministically from the prompt text, like tests/fake_llm.py's server."""

    def __init__(self, garbage_first: int = 0) -> None:
        self.calls = 0
        self.garbage_first = garbage_first

    async def __call__(self, context, params) -> CreateMessageResult:
        self.calls += 1
        prompt = params.messages[0].content.text
        text = "sure, all good" if self.calls <= self.garbage_first else rule_reply(prompt)
        return CreateMessageResult(role="assistant", content=TextContent(type="text", text=text), model="rule-judge")


async def _calibrate_with_http_judge(cfg) -> None:
    with Served(FakeLLM()) as served:
        http_cfg = cfg.model_copy(update={"feedback": LlmFeedback(
            model="rule-judge", transport="http", base_url=served.base_url)})
        async with open_service(http_cfg) as rf:
            report = await rf.calibrate("mini", train_queries(60), TrainSettings(limit=20, epochs=300))
            assert report.profile.usable, report.message
            assert report.feedback_scores_used == report.profile.query_count * 20


@pytest.mark.parametrize("mode", MODES)
async def test_searches_graded_by_the_clients_llm(mini_store, mode):
    cfg, _ = mini_store
    await _calibrate_with_http_judge(cfg)
    async with open_service(sampling_config(cfg)) as service:
        server = build_server(service)
        grader = Grader()
        async with Client(server, sampling_callback=grader, mode=mode) as client:
            r = await client.call_tool("rf_search_precision", {"collection": "mini", "query": Q, "limit": 5})
            assert not r.is_error, r.content
            assert grader.calls == 1 and r.structured_content["feedback_scores_used"] == 5
            before = grader.calls
            r = await client.call_tool("rf_search_recall", {"collection": "mini", "query": Q + " in mice",
                                                            "budget": 10, "limit": 5})
            assert not r.is_error, r.content
            assert grader.calls - before == 2 and r.structured_content["feedback_scores_used"] == 15
            assert r.structured_content["profile"]["weights"]["c"] != 0
            # an unusable reply is asked again once (one more round trip), never guessed
            retry = Grader(garbage_first=1)
        async with Client(server, sampling_callback=retry, mode=mode) as client:
            r = await client.call_tool("rf_search_precision", {"collection": "mini", "query": Q + " tauopathy"})
            assert not r.is_error and retry.calls == 2
        bad = Grader(garbage_first=10)
        async with Client(server, sampling_callback=bad, mode=mode) as client:
            r = await client.call_tool("rf_search_precision", {"collection": "mini", "query": Q + " in humans"})
            assert r.is_error and "unusable grades twice" in r.content[0].text and bad.calls == 2


@pytest.mark.parametrize("mode", MODES)
async def test_clients_without_sampling_get_a_clear_refusal(mini_store, mode):
    cfg, _ = mini_store
    await _calibrate_with_http_judge(cfg)
    async with open_service(sampling_config(cfg)) as service, Client(build_server(service), mode=mode) as client:
        r = await client.call_tool("rf_search_precision", {"collection": "mini", "query": Q})
        assert r.is_error and "does not support sampling" in r.content[0].text
        assert 'transport = "http"' in r.content[0].text
        ok = await client.call_tool("rf_search_precision", {"collection": "mini", "query": Q, "vanilla": True})
        assert not ok.is_error


async def test_uncalibrated_judge_is_refused_before_asking_the_client(mini_store):
    cfg, _ = mini_store
    async with open_service(sampling_config(cfg)) as service:
        grader = Grader()
        async with Client(build_server(service), sampling_callback=grader) as client:
            r = await client.call_tool("rf_search_precision", {"collection": "mini", "query": Q})
            assert r.is_error and "different setup" in r.content[0].text and grader.calls == 0
        with pytest.raises(GuardrailError, match="sampling round trips"):
            await service.calibrate("mini", train_queries(60))


class InvertedGrader(Grader):
    """Another client's LLM, which grades every document 10 minus what :class:`Grader` gives it."""

    async def __call__(self, context, params) -> CreateMessageResult:
        self.calls += 1
        grades = rule_grades(params.messages[0].content.text)
        text = json.dumps({"grades": [{"id": i, "grade": 10 - g} for i, g in grades.items()]})
        return CreateMessageResult(role="assistant", content=TextContent(type="text", text=text), model="rule-judge")


async def test_each_client_is_graded_by_its_own_llm_only(mini_store):
    """Two clients search the same queries at the same time; every feedback score a client sees comes from its own
    LLM (the grade cache is per session), so a document's two scores always add up to the full scale."""
    cfg, _ = mini_store
    await _calibrate_with_http_judge(cfg)
    queries = [Q, Q + " in mice", "tau phosphorylation in neurons"]
    seen: dict[str, dict[str, set[float]]] = {"plain": {}, "inverted": {}}
    async with open_service(sampling_config(cfg)) as service:
        server = build_server(service)

        async def client(name: str, grader: Grader) -> None:
            async with Client(server, sampling_callback=grader) as c:
                async def one(query: str) -> None:
                    r = await c.call_tool("rf_search_recall", {"collection": "mini", "query": query, "budget": 10,
                                                               "limit": 15})  # every scored document
                    assert not r.is_error, r.content
                    for h in r.structured_content["hits"]:
                        if h["feedback_score"] is not None:
                            seen[name].setdefault(f"{query}|{h['doc_id']}", set()).add(h["feedback_score"])

                async with anyio.create_task_group() as tg:
                    for _ in range(4):
                        for query in queries:
                            tg.start_soon(one, query)

        async with anyio.create_task_group() as tg:
            tg.start_soon(client, "plain", Grader())
            tg.start_soon(client, "inverted", InvertedGrader())
    assert all(len(s) == 1 for side in seen.values() for s in side.values()), seen
    shared = seen["plain"].keys() & seen["inverted"].keys()
    assert len(shared) >= 10
    totals = {next(iter(seen["plain"][k])) + next(iter(seen["inverted"][k])) for k in shared}
    assert len(totals) == 1, totals  # a single scale: g + (10 - g), whatever the normalisation


async def test_a_grading_request_never_answered_is_bounded(mini_store):
    """A client that never answers the server's sampling request (handshake-era protocol, where the server waits):
    the search ends with a model error after 4 x [feedback].timeout + 2 s, and the server goes on serving."""
    import time

    cfg, _ = mini_store
    await _calibrate_with_http_judge(cfg)
    slow = cfg.model_copy(update={"feedback": LlmFeedback(model="rule-judge", transport="sampling", timeout=0.5)})
    release = anyio.Event()

    async def never(context, params) -> CreateMessageResult:
        await release.wait()  # (released at the end, so the client can close)
        return CreateMessageResult(role="assistant", content=TextContent(type="text", text="late"), model="x")

    async with open_service(slow) as service:
        server = build_server(service)
        async with Client(server, sampling_callback=never, mode="legacy") as client:
            t0 = time.monotonic()
            r = await client.call_tool("rf_search_precision", {"collection": "mini", "query": Q})
            assert r.is_error and "No grades within 4 s" in r.content[0].text, r.content
            assert time.monotonic() - t0 < 15
            release.set()
        async with Client(server, sampling_callback=Grader(), mode="legacy") as client:
            assert not (await client.call_tool("rf_search_precision", {"collection": "mini", "query": Q})).is_error
