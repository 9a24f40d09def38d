"""The MCP server through the real SDK client: in-process, over stdio, streamable HTTP and SSE."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import anyio
import pytest
from mcp.client.client import Client
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters

from rf_mcp.bootstrap import open_service
from rf_mcp.server import build_server
from tests.common import MINI, make_config, mini_vectors, needs_shared, train_queries
from tests.integration.serving import ServedMCP

pytestmark = [needs_shared, pytest.mark.anyio]
TOOLS = {"list_collections", "calibrate", "evaluate", "rf_search_precision", "rf_search_recall", "index",
         "rollback_calibration", "add_documents", "delete_documents"}
Q = "APOE4 expression in neurons increases tau phosphorylation"


def text(result) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "text", None))


async def test_tools_schemas_and_annotations(mini_store):
    cfg, _ = mini_store
    async with open_service(cfg) as service, Client(build_server(service)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == TOOLS
        for t in tools.values():
            assert t.input_schema["type"] == "object" and t.output_schema is not None
            assert len(t.description) > 150
        assert tools["rf_search_precision"].annotations.read_only_hint
        assert tools["rf_search_recall"].annotations.read_only_hint
        assert not tools["calibrate"].annotations.read_only_hint
        assert tools["rf_search_precision"].input_schema["required"] == ["query"]  # collection is optional (COLLECTION_NAME)
        assert all(t.input_schema.get("additionalProperties") is False for t in tools.values())
        seeds = tools["rf_search_precision"].input_schema["properties"]["seeds"]
        assert {k: seeds[k] for k in ("type", "minimum", "maximum")} == {"type": "integer", "minimum": 2, "maximum": 20}
        assert "hits" in tools["rf_search_recall"].output_schema["properties"]
        assert tools["calibrate"].annotations.destructive_hint and not tools["calibrate"].annotations.idempotent_hint
        assert tools["rollback_calibration"].annotations.destructive_hint
        assert not tools["rollback_calibration"].annotations.idempotent_hint  # a second call undoes the first
    async with open_service(cfg, read_only=True) as service, Client(build_server(service, read_only=True)) as client:
        read_only = {t.name: t for t in (await client.list_tools()).tools}
        assert set(read_only) == {"list_collections", "evaluate", "rf_search_precision", "rf_search_recall"}
        assert all(t.annotations.read_only_hint for t in read_only.values())


async def test_guardrail_refusals_arrive_as_tool_errors(mini_store):
    cfg, _ = mini_store
    async with open_service(cfg) as service, Client(build_server(service)) as client:
        cases = [
            ("rf_search_precision", {"collection": "mini", "query": Q, "seeds": 1}, "seeds"),
            ("rf_search_recall", {"collection": "mini", "query": Q, "seed_ids": [1]}, "seed_ids"),
            ("rf_search_precision", {"collection": "nowhere", "query": Q}, "does not exist"),
            ("rf_search_precision", {"collection": "mini", "query": Q, "vector_name": "sparse"}, "no vector"),
            ("calibrate", {"collection": "mini", "queries": ["a", "b"]}, "too few"),
            ("calibrate", {"collection": "mini"}, "exactly one of queries"),
            ("evaluate", {"collection": "mini", "queries_path": "/no/such/file.jsonl"}, "does not exist"),
        ]
        for tool, args, needle in cases:
            r = await client.call_tool(tool, args)
            assert r.is_error, (tool, args)
            assert needle in text(r) and "Traceback" not in text(r)
        # unusable / uncalibrated / wrong feedback model: the domain's refusals, through the protocol
        target = await service.target("mini")
        await service.engine.set_metadata("mini", {target.parts.key: None})
        r = await client.call_tool("rf_search_precision", {"collection": "mini", "query": Q})
        assert r.is_error and "refused" in text(r) and "calibrate" in text(r)
        # still serving
        ok = await client.call_tool("rf_search_precision", {"collection": "mini", "query": Q, "vanilla": True})
        assert not ok.is_error and ok.structured_content["feedback_scores_used"] == 0


async def test_index_tool_embeds_documents(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("\n".join((MINI / "corpus.jsonl").read_text().splitlines()[:8]) + "\n")
    from rf_mcp.config import load_config

    cfg = load_config(make_config(tmp_path, tmp_path / "data"), env={})
    progress: list[float] = []

    async def on_progress(done, total, message):
        progress.append(done)

    async with open_service(cfg) as service, Client(build_server(service)) as client:
        r = await client.call_tool("index", {"collection": "docs", "input_path": str(corpus)},
                                   progress_callback=on_progress)
        assert not r.is_error, text(r)
        assert r.structured_content["points_count"] == 8 and progress == [8.0]
        listed = await client.call_tool("list_collections", {})
        assert listed.structured_content["collections"][0]["info"]["points_count"] == 8


def _flow_args(tmp: Path) -> list[tuple[str, dict]]:
    return [
        ("index", {"collection": "mini", "input_path": str(MINI / "corpus.jsonl"), "vectors_path": str(mini_vectors(tmp))}),
        ("calibrate", {"collection": "mini", "queries": train_queries(60), "epochs": 300}),
        ("evaluate", {"collection": "mini", "queries_path": str(MINI / "queries.jsonl"), "max_queries": 10}),
        ("rf_search_precision", {"collection": "mini", "query": Q, "limit": 5}),
        ("rf_search_recall", {"collection": "mini", "query": Q, "budget": 10, "limit": 5}),
        ("list_collections", {}),
    ]


async def _run_flow(client: Client, tmp: Path) -> dict[str, dict]:
    out = {}
    progress: dict[str, int] = {}
    for tool, args in _flow_args(tmp):
        def counter(name=tool):
            async def cb(done, total, message):
                progress[name] = progress.get(name, 0) + 1
            return cb
        r = await client.call_tool(tool, args, progress_callback=counter())
        assert not r.is_error, (tool, text(r))
        out[tool] = r.structured_content
    assert progress.get("calibrate", 0) >= 10 and progress.get("evaluate", 0) >= 10
    assert out["rf_search_precision"]["feedback_scores_used"] == 5
    assert out["rf_search_recall"]["feedback_scores_used"] == 15
    assert out["evaluate"]["evaluation"]["verdict"] == "unverified"
    profile = out["list_collections"]["collections"][0]["profiles"][0]
    assert profile["status"] == "usable" and profile["matches_config"]
    return out


async def test_whole_flow_over_stdio_keeps_stdout_clean(tmp_path):
    cfg = make_config(tmp_path, tmp_path / "data")
    out_log, err_log = tmp_path / "stdout.log", tmp_path / "stderr.log"
    cmd = f"set -o pipefail; {sys.executable} -m rf_mcp serve 2>{err_log} | tee {out_log}"
    params = StdioServerParameters(command="bash", args=["-c", cmd],
                                   env={**os.environ, "RF_MCP_CONFIG": str(cfg)})
    async with Client(params, read_timeout_seconds=300) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert tools == TOOLS
        await _run_flow(client, tmp_path)
    lines = [line for line in out_log.read_text().splitlines() if line.strip()]
    assert len(lines) >= 8
    for line in lines:  # every byte on stdout is a JSON-RPC message
        assert json.loads(line)["jsonrpc"] == "2.0"
    wire = out_log.read_text()
    assert "Naive formula params" not in wire and "Building training data" not in wire  # the library's prints


async def test_streamable_http_flow_and_concurrency(tmp_path):
    served = ServedMCP(tmp_path, "streamable-http")
    url = f"http://127.0.0.1:{served.port}/mcp"
    try:
        async with Client(url, read_timeout_seconds=300) as client:
            await _run_flow(client, tmp_path)
        # a long calibrate must not block a concurrent precision search on another connection
        done: dict[str, float] = {}

        async def calibrate():
            async with Client(url, read_timeout_seconds=300) as c:
                r = await c.call_tool("calibrate", {"collection": "mini", "queries": train_queries(120),
                                                    "limit": 200, "epochs": 3000})
                assert not r.is_error, text(r)
                done["calibrate"] = time.perf_counter()

        async def search():
            await anyio.sleep(1.0)
            async with Client(url, read_timeout_seconds=300) as c:
                t0 = time.perf_counter()
                r = await c.call_tool("rf_search_precision", {"collection": "mini", "query": Q})
                assert not r.is_error, text(r)
                done["search"] = time.perf_counter()
                done["search_seconds"] = done["search"] - t0

        async with anyio.create_task_group() as tg:
            tg.start_soon(calibrate)
            tg.start_soon(search)
        assert done["search"] < done["calibrate"], done
    finally:
        served.stop()


async def test_sse_transport(tmp_path):
    served = ServedMCP(tmp_path, "sse")
    try:
        async with Client(sse_client(f"http://127.0.0.1:{served.port}/sse")) as client:
            assert {t.name for t in (await client.list_tools()).tools} == TOOLS
            r = await client.call_tool("index", {"collection": "mini", "input_path": str(MINI / "corpus.jsonl"),
                                                 "vectors_path": str(mini_vectors(tmp_path))})
            assert not r.is_error, text(r)
            r = await client.call_tool("rf_search_precision", {"collection": "mini", "query": Q})
            assert r.is_error and "no calibration" in text(r)
            r = await client.call_tool("rf_search_precision", {"collection": "mini", "query": Q, "vanilla": True})
            assert not r.is_error and len(r.structured_content["hits"]) == 10
    finally:
        served.stop()


NOTES = [{"id": f"note-{i}", "text": text, "metadata": {"n": i}} for i, text in enumerate([
    "Quokkas on Rottnest Island were counted by volunteers", "Tau tangles spread between connected neurons",
    "Insulin resistance precedes type 2 diabetes", "Zebrafish regrow their fins after amputation",
    "Coral bleaching follows marine heatwaves", "Statins lower LDL cholesterol in most adults"])]


async def _documents_flow(client: Client) -> None:
    """add_documents, a search that finds the new document by id, delete_documents, a search that does not."""
    search = {"collection": "notes", "query": NOTES[3]["text"], "vanilla": True, "limit": 3}
    r = await client.call_tool("add_documents", {"collection": "notes", "documents": NOTES})
    assert not r.is_error, text(r)
    assert r.structured_content["created"] and r.structured_content["points_count"] == len(NOTES)
    r = await client.call_tool("rf_search_precision", search)
    assert not r.is_error, text(r)
    assert r.structured_content["hits"][0]["doc_id"] == "note-3"
    assert r.structured_content["hits"][0]["payload"]["metadata"] == {"n": 3}
    r = await client.call_tool("delete_documents", {"collection": "notes", "ids": ["note-3"]})
    assert not r.is_error and r.structured_content["points_count"] == len(NOTES) - 1, text(r)
    r = await client.call_tool("rf_search_precision", search)
    assert "note-3" not in [h["doc_id"] for h in r.structured_content["hits"]]


async def test_add_and_delete_documents_over_stdio_and_streamable_http(tmp_path):
    for sub in ("stdio", "http", "http-ro"):
        (tmp_path / sub).mkdir()
    cfg = make_config(tmp_path / "stdio", tmp_path / "stdio" / "data")
    params = StdioServerParameters(command=sys.executable, args=["-m", "rf_mcp", "serve"],
                                   env={**os.environ, "RF_MCP_CONFIG": str(cfg)})
    async with Client(params, read_timeout_seconds=300) as client:
        await _documents_flow(client)
    served = ServedMCP(tmp_path / "http", "streamable-http")
    read_only = ServedMCP(tmp_path / "http-ro", "streamable-http", "--read-only")
    try:
        async with Client(f"http://127.0.0.1:{served.port}/mcp", read_timeout_seconds=300) as client:
            await _documents_flow(client)
        async with Client(f"http://127.0.0.1:{read_only.port}/mcp", read_timeout_seconds=300) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert names.isdisjoint({"add_documents", "delete_documents"}) and "rf_search_precision" in names
            r = await client.call_tool("add_documents", {"collection": "notes", "documents": NOTES})
            assert r.is_error and text(r).startswith("invalid_input: unknown tool")
    finally:
        served.stop()
        read_only.stop()
