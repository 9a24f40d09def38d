"""The HTTP LLM judge against a real OpenAI-compatible server: llama.cpp's (llama-cpp-python[server]) with
SmolLM2-135M-Instruct, structured output on. Skips with the reason when either is not installed (CI builds neither).
"""

from __future__ import annotations

import math

import pytest

from rf_mcp.config import LlmFeedback
from rf_mcp.factory import build_scorer
from tests import llama_server

MISSING = llama_server.missing()
pytestmark = [pytest.mark.anyio, pytest.mark.skipif(MISSING is not None, reason=str(MISSING))]

QUERY = "Do stem cells differentiate into neurons?"
DOCS = ["Neural stem cells from the adult hippocampus differentiate into functional neurons in culture.",
        "Stock markets fell sharply after the central bank raised interest rates.",
        "Mesenchymal stem cells give rise to bone, cartilage and fat cells.",
        "Action potentials travel along the axon of a neuron to its synapses."]


async def test_every_reply_of_a_real_server_parses_with_structured_output():
    with llama_server.LlamaServer() as server:
        judge = build_scorer(LlmFeedback(model=llama_server.MODEL, transport="http", base_url=server.base_url,
                                         structured_output="on", timeout=120, max_retries=0, batch_size=4))
        try:
            grades = await judge.score(QUERY, DOCS)
            # one request per batch, each reply parsed the first time (no retry) in the schema's form
            assert (judge.requests, judge.unusable_replies) == (2, 0)  # type: ignore[attr-defined]
            # llama-cpp-python refuses response_format json_schema (500 naming it), takes json_object with the schema
            assert judge._forms[0] == "json_object" and judge._accepted  # type: ignore[attr-defined]
        finally:
            await judge.aclose()
    assert len(grades) == len(DOCS)
    assert all(math.isfinite(g) and g == int(g) and 0 <= g <= 10 for g in grades), grades
