"""Bad input, faults and concurrency: clear errors, a server that keeps serving, nothing lost."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from mcp.client.client import Client

from rf_mcp.bootstrap import open_service
from rf_mcp.config import load_config
from rf_mcp.domain.models import TrainSettings
from rf_mcp.ports import CollectionSpec, PointInput
from rf_mcp.server import build_server
from tests.asgi import ServedApp
from tests.common import MINI, MODEL, make_config, needs_shared, train_queries
from tests.integration.serving import ServedMCP, free_port

pytestmark = pytest.mark.anyio
Q = "APOE4 expression in neurons increases tau phosphorylation"
LONG = "x" * 4001


def text(r) -> str:
    return "\n".join(c.text for c in r.content if getattr(c, "text", None))


BAD_INPUTS = [
    # (tool, arguments, a phrase the error must contain)
    ("rf_search_precision", {}, "query: Field required"),
    ("rf_search_precision", {"query": Q}, "No collection given"),
    ("rf_search_precision", {"collection": "mini"}, "query: Field required"),
    ("rf_search_precision", {"collection": "mini", "query": ""}, "query: String should have at least 1"),
    ("rf_search_precision", {"collection": "mini", "query": LONG}, "at most 4000"),
    ("rf_search_precision", {"collection": "mini", "query": "   "}, "The query is empty"),
    ("rf_search_precision", {"collection": "mini", "query": Q, "limit": 0}, "limit: Input should be greater"),
    ("rf_search_precision", {"collection": "mini", "query": Q, "limit": 10_000}, "limit: Input should be less"),
    ("rf_search_precision", {"collection": "mini", "query": Q, "seeds": 1}, "seeds: Input should be greater"),
    ("rf_search_precision", {"collection": "mini", "query": Q, "seeds": 50}, "seeds: Input should be less"),
    ("rf_search_precision", {"collection": "mini", "query": Q, "limit": "ten"}, "limit: Input should be a valid integer"),
    ("rf_search_precision", {"collection": "mini", "query": Q, "colour": "red"}, "colour: unknown argument"),
    ("rf_search_precision", {"collection": "", "query": Q}, "collection: String should have at least 1"),
    ("rf_search_precision", {"collection": "nowhere", "query": Q}, "'nowhere' does not exist"),
    ("rf_search_precision", {"collection": "mini", "query": Q, "vector_name": "nope"}, "no vector 'nope'"),
    ("rf_search_precision", {"collection": "hybrid", "query": Q, "vector_name": "bm25"}, "sparse"),
    ("rf_search_precision", {"collection": "small", "query": Q}, "8 dimensions but the retriever makes 384"),
    ("rf_search_precision", {"collection": "empty", "query": Q}, "'empty' has no points"),
    ("rf_search_precision", {"collection": "tiny", "query": Q, "vanilla": True}, "3 points, fewer than the 5 seeds"),
    ("rf_search_precision", {"collection": "uncalibrated", "query": Q}, "no calibration"),
    ("rf_search_recall", {"collection": "mini", "query": Q, "budget": 0}, "budget: Input should be greater"),
    ("rf_search_recall", {"collection": "mini", "query": Q, "budget": 5000}, "budget: Input should be less"),
    ("rf_search_recall", {"collection": "mini", "query": Q, "seed_ids": [1]}, "seed_ids: List should have at least 2"),
    ("rf_search_recall", {"collection": "mini", "query": Q, "seed_ids": list(range(30))}, "seed_ids: List should have at most 20"),
    ("rf_search_recall", {"collection": "mini", "query": Q, "seed_ids": [123456789, 987654321]}, "not found"),
    ("rf_search_recall", {"collection": "mini", "query": Q, "seed_ids": [{"a": 1}, 2]}, "seed_ids.0"),
    ("rf_search_recall", {"collection": "mini", "query": Q, "seed_ids": ["no-such-doc", "nor-this"]}, "not found"),
    ("rf_search_precision", {"collection": "mini", "query": Q, "fusion": "bogus"}, "fusion: Input should be"),
    ("rf_search_precision", {"collection": "mini", "query": Q, "filter": {"must": [{"key": "year"}]}},
     'needs exactly one of "match" or "range"'),
    ("rf_search_precision", {"collection": "mini", "query": Q, "filter": {"must": [{"key": "a b", "match": {"value": 1}}]}},
     "filter.must.0"),
    ("rf_search_precision", {"collection": "mini", "query": Q, "filter": {"must": [{"key": "x", "match": {}}]}},
     'exactly one of "value", "any" or "except"'),
    ("rf_search_precision", {"collection": "mini", "query": Q, "filter": {"nope": []}}, "filter.nope"),
    ("calibrate", {"collection": "mini"}, "exactly one of queries"),
    ("calibrate", {"collection": "mini", "queries": ["q1", "q2"]}, "too few"),
    ("calibrate", {"collection": "mini", "queries_path": "/no/such/queries.txt"}, "does not exist"),
    ("calibrate", {"collection": "mini", "queries": ["q"] * 3, "queries_path": "/x"}, "exactly one of queries"),
    ("calibrate", {"collection": "mini", "queries": [f"query {i}" for i in range(20)], "limit": 3}, "limit: Input should be greater"),
    ("calibrate", {"collection": "mini", "queries": [f"query {i}" for i in range(20)], "limit": 800}, "has 500 points"),
    ("calibrate", {"collection": "mini", "queries": [f"query {i}" for i in range(20)], "max_feedback_scores": 10},
     "over your max_feedback_scores"),
    ("calibrate", {"collection": "mini", "queries": [f"query {i}" for i in range(20)], "limit": 10,
                   "context_limit": 10}, "context_limit=10 must be smaller than limit=10"),
    ("evaluate", {"collection": "mini"}, "exactly one of queries"),
    ("evaluate", {"collection": "mini", "queries": [{"text": Q}], "qrels_path": "/no/qrels.tsv"}, "does not exist"),
    ("evaluate", {"collection": "mini", "queries": [{"text": Q}], "at_n": 0}, "at_n: Input should be greater"),
    ("evaluate", {"collection": "mini", "queries": [{"id": "1"}]}, "queries.0.text: Field required"),
    ("index", {"collection": "mini", "input_path": "/no/corpus.jsonl"}, "does not exist"),
    ("index", {"collection": "x", "input_path": str(Path(__file__))}, "is not valid JSON"),
    ("rollback_calibration", {"collection": "uncalibrated"}, "has no previous version"),
    ("list_collections", {"collection": "nowhere"}, "does not exist"),
]


@needs_shared
async def test_bad_input_table(mini_store):
    assert len(BAD_INPUTS) >= 30
    cfg, _ = mini_store
    async with open_service(cfg) as service:
        engine = service.engine
        await engine.create_collection("hybrid", CollectionSpec("dense", 384, sparse=("bm25",)))
        await engine.create_collection("small", CollectionSpec("dense", 8))
        await engine.create_collection("empty", CollectionSpec("dense", 384))
        await engine.create_collection("tiny", CollectionSpec("dense", 384))
        await engine.upsert("tiny", [PointInput(i, {"dense": [0.1] * 384}, {"text": "a"}) for i in (1, 2, 3)])
        await engine.create_collection("uncalibrated", CollectionSpec("dense", 384))
        await engine.upsert("uncalibrated", [PointInput(i, {"dense": [float(i)] + [0.1] * 383}, {"text": f"d{i}"})
                                             for i in range(1, 8)])
        async with Client(build_server(service)) as client:
            for tool, args, needle in BAD_INPUTS:
                r = await client.call_tool(tool, args)
                assert r.is_error, (tool, args, r.structured_content)
                msg = text(r)
                assert needle in msg, (tool, args, msg)
                assert "Fix:" in msg and "Traceback" not in msg, msg
                ok = await client.call_tool("list_collections", {})  # still serving
                assert not ok.is_error


class FakeQdrant(ServedApp):
    """Just enough of Qdrant's REST API (list collections) to show recovery once the server is back."""

    def __init__(self, port: int) -> None:
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def collections(request):
            return JSONResponse({"result": {"collections": []}, "status": "ok", "time": 0.0})

        async def root(request):
            return JSONResponse({"title": "qdrant - vector search engine", "version": "1.17.0", "commit": None})

        super().__init__(Starlette(routes=[Route("/collections", collections), Route("/", root)]), port)


@needs_shared
async def test_qdrant_unreachable_then_back(tmp_path):
    port = free_port()
    cfg = load_config(make_config(tmp_path, tmp_path / "unused"), env={
        "QDRANT_URL": f"http://127.0.0.1:{port}", "QDRANT_API_KEY": "sekret-api-key-123"})
    cfg = cfg.model_copy(update={"qdrant": cfg.qdrant.model_copy(update={"timeout": 2.0})})
    async with open_service(cfg) as service, Client(build_server(service)) as client:
        for _ in range(2):
            r = await client.call_tool("list_collections", {})
            assert r.is_error and "did not answer" in text(r) and "QDRANT_URL" in text(r)
            assert "sekret" not in text(r)
        with FakeQdrant(port):
            r = await client.call_tool("list_collections", {})
            assert not r.is_error, text(r)
            assert r.structured_content["qdrant"] == f"http://127.0.0.1:{port}"
            assert "sekret" not in str(r.structured_content)


@needs_shared
async def test_missing_or_corrupt_model_folder(tmp_path, mini_template):
    import shutil

    broken = tmp_path / "broken-model"
    shutil.copytree(MODEL, broken)
    (broken / "model.onnx").write_bytes(b"not an onnx file")
    shutil.copytree(mini_template, tmp_path / "data")
    for folder, needle in ((tmp_path / "missing", "is not a folder"), (broken, "Could not load [retriever]")):
        cfg_text = make_config(tmp_path, tmp_path / "data").read_text().replace(str(MODEL), str(folder))
        (tmp_path / "c.toml").write_text(cfg_text)
        cfg = load_config(tmp_path / "c.toml", env={})
        async with open_service(cfg) as service, Client(build_server(service)) as client:
            r = await client.call_tool("rf_search_precision", {"collection": "mini", "query": Q})
            assert r.is_error and needle in text(r) and "model_error" in text(r), text(r)
            ok = await client.call_tool("list_collections", {})
            assert not ok.is_error


@needs_shared
async def test_cancelled_calibration_leaves_the_stored_profile_alone(mini_store):
    cfg, _ = mini_store
    async with open_service(cfg) as rf:
        before = (await rf.list_profiles("mini"))[0]
        seen: list[float] = []

        with anyio.CancelScope() as scope:  # like a client that disconnects after three progress notifications
            async def progress(done, total, message):
                seen.append(done)
                if len(seen) == 3:
                    scope.cancel()

            await rf.calibrate("mini", train_queries(200), TrainSettings(limit=200, epochs=3000), progress=progress)
        assert scope.cancelled_caught and len(seen) == 3
        count = len(seen)
        await anyio.sleep(0.5)
        assert len(seen) == count  # the training thread stopped too
        after = (await rf.list_profiles("mini"))[0]
        assert after.profile == before.profile and after.previous == before.previous
        res = await rf.search_precision("mini", Q)  # still works
        assert res.profile.fingerprint == before.profile.fingerprint


@needs_shared
async def test_killed_server_mid_calibration_loses_nothing(mini_store, tmp_path):
    cfg, cfg_path = mini_store
    async with open_service(cfg) as rf:
        before = (await rf.list_profiles("mini"))[0].profile
    queries = tmp_path / "q.txt"
    queries.write_text("\n".join(train_queries(200)))
    proc = subprocess.Popen([sys.executable, "-m", "rf_mcp", "--config", str(cfg_path), "calibrate", "-c", "mini",
                             "-q", str(queries), "--limit", "200", "--epochs", "5000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:  # wait until training runs, then kill it hard
        if "training query" in line:
            break
    proc.kill()
    proc.wait(timeout=30)
    proc.stderr.close()
    async with open_service(cfg) as rf:
        summary = (await rf.list_profiles("mini"))[0]
        assert summary.status == "usable" and summary.profile == before


@needs_shared
async def test_concurrent_calibrations_are_serialised(mini_store):
    cfg, _ = mini_store
    async with open_service(cfg) as rf:
        async def run(limit: int):
            await rf.calibrate("mini", train_queries(40), TrainSettings(limit=limit, epochs=200))

        async with anyio.create_task_group() as tg:
            tg.start_soon(run, 20)
            tg.start_soon(run, 30)
        s = (await rf.list_profiles("mini"))[0]
        assert {s.profile.train.limit, s.previous.train.limit} == {20, 30}  # both complete, neither lost
        assert s.profile.query_count == s.previous.query_count == 40


@needs_shared
async def test_http_bearer_token_and_host_checks(tmp_path):
    import httpx
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    served = ServedMCP(tmp_path, env={"RF_MCP_AUTH_TOKEN": "tok-" + "a" * 32})
    url = f"http://127.0.0.1:{served.port}/mcp"
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    try:
        async with httpx.AsyncClient() as http:
            r = await http.post(url, json=init, headers=headers)
            assert r.status_code == 401 and "Bearer" in r.text
            r = await http.post(url, json=init, headers={**headers, "authorization": "Bearer wrong"})
            assert r.status_code == 401
            ok = {**headers, "authorization": "Bearer tok-" + "a" * 32}
            r = await http.post(url, json=init, headers={**ok, "host": "evil.example.com"})  # DNS rebinding
            assert r.status_code in (400, 403, 421)
            r = await http.post(url, json=init, headers={**ok, "origin": "http://evil.example.com"})
            assert r.status_code in (400, 403)
        async with (httpx2.AsyncClient(headers={"authorization": "Bearer tok-" + "a" * 32}) as http2,
                    Client(streamable_http_client(url, http_client=http2)) as client):
            assert {t.name for t in (await client.list_tools()).tools} >= {"rf_search_precision"}
    finally:
        served.stop()


def test_binding_beyond_loopback_needs_a_flag(tmp_path):
    cfg = make_config(tmp_path, tmp_path / "data")
    r = subprocess.run([sys.executable, "-m", "rf_mcp", "--config", str(cfg), "serve", "--transport",
                        "streamable-http", "--host", "0.0.0.0", "--port", str(free_port())],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--allow-remote" in r.stderr
    r = subprocess.run([sys.executable, "-m", "rf_mcp", "--config", str(cfg), "serve", "--transport", "sse",
                        "--auth-token-env", "RF_MCP_TEST_EMPTY_TOKEN"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "RF_MCP_TEST_EMPTY_TOKEN" in r.stderr


@pytest.fixture
def mini_served(mini_template, tmp_path):  # type: ignore[no-untyped-def]
    """A served copy of the mini collection and the load generator's queries for it (benchmarks/load.py)."""
    import shutil

    from benchmarks.load import Queries
    from rf_mcp.domain.datasets import read_queries

    shutil.copytree(mini_template, tmp_path / "data")
    served = ServedMCP(tmp_path)
    try:
        yield f"http://127.0.0.1:{served.port}/mcp", Queries([q.text for q in read_queries(MINI / "queries.jsonl")])
    finally:
        served.stop()


@needs_shared
async def test_short_load_over_streamable_http(mini_served):
    """The CI version of benchmarks/load.py: 10 clients for 5 s, no errors."""
    from benchmarks.load import phase

    url, queries = mini_served
    report = await phase(url, 10, 5, queries, collection="mini")
    assert report["errors"] == 0, report.get("first_error")
    assert report["requests"] >= 10 and queries.n == report["requests"]


@needs_shared
async def test_short_load_during_calibration(mini_served):
    """The CI version of benchmarks/load.py's "during calibration" row: searches run while a calibration does."""
    from benchmarks.load import during_calibration

    url, queries = mini_served
    report = await during_calibration(url, queries, train_queries(60), 20, collection="mini")
    assert not report["calibration_error"], report["calibration_message"]
    assert report["errors"] == 0, report.get("first_error")
    assert report["requests"] >= 1 and report["p99_ms"] <= report["max_ms"]


@needs_shared
async def test_client_gone_mid_calibrate_over_http(mini_template, tmp_path):
    """A client that abandons a calibrate call: the server cancels the run and keeps the old profile."""
    import shutil

    shutil.copytree(mini_template, tmp_path / "data")
    served = ServedMCP(tmp_path)
    url = f"http://127.0.0.1:{served.port}/mcp"
    args = {"collection": "mini", "queries": train_queries(60), "limit": 50, "epochs": 300}
    try:
        async with Client(url, read_timeout_seconds=300) as client:
            t0 = time.perf_counter()
            assert not (await client.call_tool("calibrate", args)).is_error  # how long a full run takes
            full_run = time.perf_counter() - t0
            before = (await client.call_tool("list_collections", {})).structured_content
        progress: list[float] = []
        with anyio.CancelScope() as scope:
            async with Client(url, read_timeout_seconds=300) as client:
                async def on_progress(done, total, message):
                    progress.append(done)
                    if len(progress) == 2:
                        scope.cancel()

                await client.call_tool("calibrate", args, progress_callback=on_progress)
        assert scope.cancelled_caught and len(progress) == 2
        await anyio.sleep(2 * full_run + 2)  # had the run gone on, it would have finished and stored a profile
        async with Client(url) as client:
            after = (await client.call_tool("list_collections", {})).structured_content
            ok = await client.call_tool("rf_search_precision", {"collection": "mini", "query": Q})
        def stored(overview):
            return [(p["profile"], p["previous"]) for p in overview["collections"][0]["profiles"]]

        assert stored(after) == stored(before)  # the abandoned run wrote nothing
        assert not ok.is_error
    finally:
        served.stop()
