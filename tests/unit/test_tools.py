"""The MCP tools through the real SDK client, in process, over the in-memory engine (no model, no shared data)."""

from __future__ import annotations

import copy
import json

import pytest
from mcp.client.client import Client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

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
        assert props["limit"]["minimum"] == 6 and props["epochs"]["maximum"] == 100_000  # TrainSettings' bounds
        assert "lr" not in props  # a CLI / Python argument only
        r = await client.call_tool("calibrate", {"collection": "docs", "queries": doubles.queries(), "limit": 20,
                                                 "epochs": 7})
        assert not r.is_error, text(r)
        train = r.structured_content["profile"]["train"]
        assert train["limit"] == 20 and train["epochs"] == 7 and train["context_limit"] == 5  # the rest: defaults
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


def generated_titles(node, *, names: bool = False) -> list[str]:
    """The ``title`` keywords of a schema (a property may be *named* title: add_documents' documents have one)."""
    if isinstance(node, list):
        return [t for n in node for t in generated_titles(n)]
    if not isinstance(node, dict):
        return []
    found = [] if names or "title" not in node else [str(node["title"])]
    return found + [t for k, v in node.items() for t in generated_titles(v, names=k in ("properties", "$defs"))]


async def test_tools_list_fits_a_context_window_and_keeps_what_agents_need(templates):
    """tools/list stays under 15 KB (it was 47.5 KB) with every tool's description, argument descriptions, ranges,
    enums and the filter's shape; schemas refuse unknown arguments."""
    from mcp_types import ListToolsResult

    service = doubles.service(engine=copy.deepcopy(templates["calibrated"]))
    async with Client(build_server(service)) as client:
        listing = await client.list_tools()
    wire = ListToolsResult(tools=listing.tools).model_dump_json(by_alias=True, exclude_none=True)
    assert len(wire.encode()) < 15_000, len(wire.encode())
    tools = {t.name: t for t in listing.tools}
    for t in tools.values():
        props = t.input_schema.get("properties", {})
        assert t.input_schema["additionalProperties"] is False and len(t.description) > 150
        assert all(p.get("description") for p in props.values()), t.name
        assert not generated_titles(t.input_schema), t.name
    recall = tools["rf_search_recall"].input_schema["properties"]
    assert recall["budget"]["minimum"] == 1 and recall["budget"]["maximum"] == 200
    assert recall["fusion"]["enum"] == ["none", "sparse"]
    assert set(recall["filter"]["properties"]) == {"must", "should", "must_not"}
    assert '"range"' in recall["filter"]["description"] and '"match"' in recall["filter"]["description"]
    assert recall["seed_ids"]["minItems"] == 2


async def test_a_full_filter_is_still_validated_by_the_server(templates):
    """The published filter schema is compact; the server checks the whole grammar and names the bad part."""
    service = doubles.service(engine=copy.deepcopy(templates["calibrated"]))
    async with Client(build_server(service)) as client:
        ok = {"must": [{"key": "topic", "match": {"value": "onco"}}], "must_not": [{"key": "year", "range": {"lt": 2000}}]}
        r = await client.call_tool("rf_search_precision", {"collection": "docs", "query": Q, "filter": ok})
        assert not r.is_error, text(r)
        for bad, needle in (({"must": [{"key": "year", "range": {}}]}, "range needs at least one"),
                            ({"must": [{"key": "topic", "match": {"value": "a", "any": ["b"]}}]}, "exactly one of"),
                            ({"must": [{"key": "bad key!", "match": {"value": "a"}}]}, "key"),
                            ({"must": [{"key": "ids", "match": {"any": ["1", 1]}}]}, "all strings or all integers"),
                            ({"nope": []}, "nope")):
            r = await client.call_tool("rf_search_precision", {"collection": "docs", "query": Q, "filter": bad})
            assert r.is_error and needle in text(r), (bad, text(r))


async def test_hit_text_is_capped_and_flagged(templates):
    cfg = Config.model_validate({"qdrant": {"backend": "memory"}, "search": {"max_text_chars": 50}})
    service = doubles.service(cfg, engine=copy.deepcopy(templates["calibrated"]))
    async with Client(build_server(service)) as client:
        r = await client.call_tool("rf_search_recall", {"collection": "docs", "query": Q})
    hits = r.structured_content["hits"]
    assert hits and all(len(h["text"]) <= 50 for h in hits)
    assert any(h["truncated"] for h in hits) and all(len(h["text"]) == 50 for h in hits if h["truncated"])
    default = doubles.service(engine=copy.deepcopy(templates["calibrated"]))  # 1,000 characters: short texts whole
    assert not any(h.truncated for h in (await default.search_recall("docs", Q)).hits)


async def test_empty_text_fields_name_the_payload_keys_seen(templates):
    """Wrong [collection] text_fields: a clear error listing the keys the payloads have, before any scoring."""
    cfg = Config.model_validate({"qdrant": {"backend": "memory"}, "collection": {"text_fields": ["body", "abstract"]}})
    service = doubles.service(cfg, engine=copy.deepcopy(templates["calibrated"]))
    async with Client(build_server(service)) as client:
        r = await client.call_tool("calibrate", {"collection": "docs", "queries": doubles.queries(), "limit": 20})
        assert r.is_error and "text_fields" in text(r) and "title" in text(r) and "text" in text(r), text(r)
        r = await client.call_tool("rf_search_recall", {"collection": "docs", "query": Q})
        assert r.is_error and "text_fields" in text(r), text(r)


async def test_prompts_and_resources_are_real(templates):
    service = doubles.service(engine=copy.deepcopy(templates["calibrated"]))
    async with Client(build_server(service)) as client:
        prompt = await client.get_prompt("rf_workflow", {"collection": "docs"})
        assert "calibrate" in prompt.messages[0].content.text and "'docs'" in prompt.messages[0].content.text
        resource = await client.read_resource("rf-mcp://collections/docs/profiles")
        profiles = json.loads(resource.contents[0].text)
        assert profiles[0]["status"] == "usable" and profiles[0]["profile"]["weights"]
        with pytest.raises(MCPError, match="does not exist") as refused:
            await client.read_resource("rf-mcp://collections/nope/profiles")
        assert refused.value.code == INVALID_PARAMS
        for empty in ("rf-mcp://collections//profiles", "rf-mcp://collections/%2F/profiles"):  # not every profile
            with pytest.raises(MCPError, match=r"names no collection|does not exist|not a valid") as refused:
                await client.read_resource(empty)
            assert refused.value.code == INVALID_PARAMS and "weights" not in refused.value.message
        with pytest.raises(MCPError, match="at most 255 bytes") as refused:  # not the profiles of a 255-byte prefix
            await client.read_resource("rf-mcp://collections/" + "d" * 300 + "/profiles")
        assert refused.value.code == INVALID_PARAMS
        for name, args, needle in (("no_such_prompt", {}, "Unknown prompt 'no_such_prompt'"),
                                   ("rf_workflow", {}, "needs the argument(s) ['collection']"),
                                   ("rf_workflow", {"collection": "docs", "other": "x"}, "unknown: ['other']")):
            with pytest.raises(MCPError) as refused:
                await client.get_prompt(name, args)
            assert refused.value.code == INVALID_PARAMS and needle in refused.value.message


async def test_hits_name_the_mode_that_produced_them(templates):
    service = doubles.service(engine=copy.deepcopy(templates["calibrated"]))
    async with Client(build_server(service)) as client:
        async def sources(tool: str, **args) -> set[str]:
            r = await client.call_tool(tool, {"collection": "docs", "query": Q, **args})
            assert not r.is_error, text(r)
            return {h["source"] for h in r.structured_content["hits"]}

        assert await sources("rf_search_precision", vanilla=True, fusion="none") == {"vanilla"}
        assert await sources("rf_search_precision", vanilla=True, fusion="sparse") == {"hybrid"}
        assert await sources("rf_search_precision", fusion="none") == {"rf"}
        assert await sources("rf_search_recall", fusion="none") == {"seed", "rf"}


async def test_output_schemas_are_portable_and_describe_the_structured_content(templates):
    """One JSON type per output field (no type arrays, no null alternatives: some clients reject both); a field whose
    value is null is left out of the structured content, so the content always matches its schema."""
    service = doubles.service(engine=copy.deepcopy(templates["calibrated"]))
    async with Client(build_server(service)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        r = await client.call_tool("rf_search_precision", {"collection": "docs", "query": Q, "vanilla": True})
    for t in tools.values():
        for name, field in t.output_schema["properties"].items():
            assert isinstance(field.get("type"), str) and field["type"] != "null", (t.name, name, field)
    kinds = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "array": list, "object": dict}
    props = tools["rf_search_precision"].output_schema["properties"]
    assert set(r.structured_content) <= set(props)
    for name, value in r.structured_content.items():
        assert isinstance(value, kinds[props[name]["type"]]), name


async def test_resources_list_has_one_entry_per_collection_and_each_reads(templates):
    service = doubles.service(engine=copy.deepcopy(templates["calibrated"]))
    await service.add_documents("notes", [{"id": "n1", "text": "a note"}])  # a second collection, no calibration
    async with Client(build_server(service)) as client:
        listed = (await client.list_resources()).resources
        assert sorted(str(r.uri) for r in listed) == ["rf-mcp://collections/docs/profiles",
                                                      "rf-mcp://collections/notes/profiles"]
        for r in listed:
            assert isinstance(json.loads((await client.read_resource(str(r.uri))).contents[0].text), list)
