"""The MCP tools through the real SDK client, in process, over the in-memory engine (no model, no shared data)."""

from __future__ import annotations

import copy

import pytest
from mcp.client.client import Client

from rf_mcp.config import Config
from rf_mcp.server import build_server
from tests import doubles

pytestmark = pytest.mark.anyio
Q = "tumor metastasis after chemotherapy"


def text(result) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "text", None))


async def test_search_defaults_of_mcp_calls_come_from_the_config(templates):
    """Omitted arguments mean the server's [search] defaults (each default is defined once)."""
    cfg = Config.model_validate({"qdrant": {"backend": "memory"},
                                 "search": {"seeds": 3, "limit": 4, "recall_budget": 6}})
    service = doubles.service(cfg, engine=copy.deepcopy(templates["calibrated"]))
    async with Client(build_server(service)) as client:
        r = await client.call_tool("rf_search_precision", {"collection": "docs", "query": Q})
        assert not r.is_error, text(r)
        assert len(r.structured_content["hits"]) == 4 and r.structured_content["feedback_scores_used"] == 3
        r = await client.call_tool("rf_search_recall", {"collection": "docs", "query": Q})
        assert r.structured_content["feedback_scores_used"] == 3 + 6
        r = await client.call_tool("rf_search_precision", {"collection": "docs", "query": Q, "limit": 7, "seeds": 2})
        assert len(r.structured_content["hits"]) == 7 and r.structured_content["feedback_scores_used"] == 2


async def test_calibrate_defaults_are_train_settings(templates):
    service = doubles.service(engine=copy.deepcopy(templates["indexed"]))
    async with Client(build_server(service)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        props = tools["calibrate"].input_schema["properties"]
        assert "Default 50." in props["limit"]["description"] and "Default 1000." in props["epochs"]["description"]
        r = await client.call_tool("calibrate", {"collection": "docs", "queries": doubles.queries(), "limit": 30,
                                                 "epochs": 300})
        assert not r.is_error, text(r)
        train = r.structured_content["profile"]["train"]
        assert train["limit"] == 30 and train["epochs"] == 300 and train["context_limit"] == 5  # the rest: defaults
        r = await client.call_tool("calibrate", {"collection": "docs", "queries": doubles.queries(), "limit": 3})
        assert r.is_error and "limit" in text(r) and "greater than or equal to 6" in text(r)


async def test_list_collections_goes_through_the_service(templates):
    service = doubles.service(engine=copy.deepcopy(templates["calibrated"]))
    async with Client(build_server(service)) as client:
        r = await client.call_tool("list_collections", {})
        assert not r.is_error
        ov = r.structured_content
        assert ov["qdrant"] == "memory" and ov["collections"][0]["info"]["points_count"] == 300
        assert ov["collections"][0]["profiles"][0]["matches_config"]
