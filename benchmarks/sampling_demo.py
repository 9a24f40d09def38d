"""Precision and recall searches on scifact-mini whose feedback comes through MCP sampling.

No hosted LLM is reachable here: the client's "LLM" is the deterministic rule-based grader of
tests/fake_llm.py (query words found in each document, 0-10), served once over HTTP for calibration
(the HTTP judge) and answering sampling requests for the searches. Counts the sampling round trips.

usage (from the repo root): python -m benchmarks.sampling_demo --shared ../shared [--mode 2026-07-28|legacy]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import anyio
from mcp.client.client import Client
from mcp_types import CreateMessageResult, TextContent

from rf_mcp.config import load_config
from rf_mcp.domain.datasets import read_qrels, read_queries
from rf_mcp.domain.models import TrainSettings
from rf_mcp.domain.service import RFService
from rf_mcp.server import build_server
from tests.conftest import config_text, mini_vectors
from tests.fake_llm import FakeLLM, Served, rule_reply


async def main(a: argparse.Namespace) -> None:
    shared = Path(a.shared)
    tmp = Path(tempfile.mkdtemp())
    base = config_text(tmp / "data")
    with Served(FakeLLM()) as served:
        http = tmp / "http.toml"
        http.write_text(base.replace('type = "bm25"', f'type = "llm"\nmodel = "rule-judge"\ntransport = "http"\n'
                                                     f'base_url = "{served.base_url}"'))
        ids = set(read_qrels(shared / "data/scifact/qrels/train.tsv"))
        queries = [q.text for q in read_queries(shared / "data/scifact/queries.jsonl", ids=ids)][:100]
        async with RFService(load_config(http, env={})) as rf:
            await rf.index("mini", shared / "data/scifact-mini/corpus.jsonl", vectors_path=mini_vectors(tmp))
            cal = await rf.calibrate("mini", queries, TrainSettings(limit=20))
            print(json.dumps({"calibration": cal.profile.weights.model_dump(), "signal": cal.profile.signal.disagreement,
                              "usable": cal.profile.usable, "http_requests": served.llm.requests}))
    sampling = tmp / "sampling.toml"
    sampling.write_text(base.replace('type = "bm25"', 'type = "llm"\nmodel = "rule-judge"\ntransport = "sampling"'))
    trips = {"n": 0}

    async def llm(context, params) -> CreateMessageResult:
        trips["n"] += 1
        return CreateMessageResult(role="assistant", model="rule-judge",
                                   content=TextContent(type="text", text=rule_reply(params.messages[0].content.text)))

    query = read_queries(shared / "data/scifact-mini/queries.jsonl")[0].text
    async with RFService(load_config(sampling, env={})) as service:
        async with Client(build_server(service), sampling_callback=llm, mode=a.mode) as client:
            for tool, args in (("rf_search_precision", {"limit": 5}), ("rf_search_recall", {"budget": 20, "limit": 5})):
                before = trips["n"]
                r = await client.call_tool(tool, {"collection": "mini", "query": query, **args})
                sc = r.structured_content or {}
                print(json.dumps({"tool": tool, "protocol": client.protocol_version, "query": query,
                                  "is_error": r.is_error, "sampling_round_trips": trips["n"] - before,
                                  "feedback_scores_used": sc.get("feedback_scores_used"),
                                  "hits": [(h["doc_id"], h["feedback_score"]) for h in sc.get("hits", [])]}))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--shared", default="../shared")
    p.add_argument("--mode", default="2026-07-28")
    anyio.run(main, p.parse_args())
