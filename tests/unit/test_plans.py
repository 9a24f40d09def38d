"""A search is one plan: it embeds once and chooses its seeds once, whoever grades (a local feedback model, or the
MCP client's LLM over either protocol era). Counted with a counting engine and a counting retriever."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest
from mcp.client.client import Client
from mcp_types import CreateMessageResult, TextContent

from rf_mcp.adapters.scorers.bm25 import BM25Scorer
from rf_mcp.adapters.scorers.llm_judge import SamplingJudge
from rf_mcp.config import load_config
from rf_mcp.server import build_server
from tests import doubles
from tests.fake_llm import rule_reply

pytestmark = pytest.mark.anyio
Q = "tumor metastasis after chemotherapy"
MODES = ["legacy", "2026-07-28"]


def counted(service: Any) -> Counter[str]:
    """Count the engine's queries and describes and the retriever's query embeddings of ``service``."""
    calls: Counter[str] = Counter()
    engine, retriever = service.engine, service.retriever
    for obj, name in ((engine, "query"), (engine, "describe"), (engine, "retrieve"), (retriever, "embed_query")):
        original = getattr(obj, name)

        async def wrapper(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            calls[_name] += 1
            return await _original(*args, **kwargs)

        setattr(obj, name, wrapper)
    return calls


def judge() -> SamplingJudge:
    """The client's LLM as the feedback model, under the identity the template was calibrated for (BM25), so the
    stored calibration serves it: this test counts calls, it does not judge quality."""
    settings = load_config(env={"RF_MCP_FEEDBACK__TYPE": "llm", "RF_MCP_FEEDBACK__MODEL": "rule-judge",
                                "RF_MCP_FEEDBACK__TRANSPORT": "sampling"}).feedback
    out = SamplingJudge(settings)  # type: ignore[arg-type]
    out.identity = BM25Scorer().identity
    return out


class Grader:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, context: Any, params: Any) -> CreateMessageResult:
        self.calls += 1
        reply = rule_reply(params.messages[0].content.text)
        return CreateMessageResult(role="assistant", content=TextContent(type="text", text=reply), model="rule-judge")


async def local_counts(templates: Any, tool: str, args: dict[str, Any]) -> Counter[str]:
    service = doubles.service(engine=copy.deepcopy(templates["calibrated"]))
    calls = counted(service)
    result = await (service.search_precision if tool == "rf_search_precision" else service.search_recall)(**args)
    assert result.hits
    return calls


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("tool", ["rf_search_precision", "rf_search_recall"])
async def test_a_sampled_search_embeds_once_and_queries_the_engine_as_a_local_one(templates, mode, tool):
    args = {"collection": "docs", "query": Q}
    if tool == "rf_search_recall":
        args["budget"] = 10
    service = doubles.service(engine=copy.deepcopy(templates["calibrated"]), scorer=judge())
    calls = counted(service)
    grader = Grader()
    async with Client(build_server(service), sampling_callback=grader, mode=mode) as client:
        r = await client.call_tool(tool, args)
    assert not r.is_error, r.content
    rounds = 1 if tool == "rf_search_precision" else 2
    assert grader.calls == rounds and r.structured_content["scoring_rounds"] == rounds
    assert calls["embed_query"] == 1
    assert calls["query"] <= (2 if tool == "rf_search_precision" else 3)  # seeds, RF (recall: no more than that)
    assert calls == await local_counts(templates, tool, args)  # exactly what the same search costs graded locally


@pytest.mark.parametrize("mode", MODES)
async def test_one_clients_waiting_plan_is_not_anothers(templates, mode):
    """Two clients searching at once each get their own plan and grades (state is per request)."""
    service = doubles.service(engine=copy.deepcopy(templates["calibrated"]), scorer=judge())
    server = build_server(service)
    a, b = Grader(), Grader()
    async with Client(server, sampling_callback=a, mode=mode) as ca, Client(server, sampling_callback=b, mode=mode) as cb:
        ra = await ca.call_tool("rf_search_recall", {"collection": "docs", "query": Q, "budget": 5})
        rb = await cb.call_tool("rf_search_recall", {"collection": "docs", "query": "insulin glucose obesity",
                                                     "budget": 5})
    assert not ra.is_error and not rb.is_error
    assert a.calls == b.calls == 2
    assert ra.structured_content["query"] == Q and rb.structured_content["query"] == "insulin glucose obesity"
