"""The query log (opt-in): searched queries feed calibrate and evaluate, split without overlap, bounded, kept."""

from __future__ import annotations

import copy

import pytest
from mcp.client.client import Client

from rf_mcp.config import Config
from rf_mcp.domain import querylog
from rf_mcp.errors import InputError
from rf_mcp.server import build_server
from tests import doubles

pytestmark = pytest.mark.anyio


def config(**server) -> Config:
    return Config.model_validate({"qdrant": {"backend": "memory"}, "collection": {"vector_name": "dense"},
                                  "server": server})


async def test_off_by_default_and_says_how_to_turn_it_on(templates):
    rf = doubles.service(engine=copy.deepcopy(templates["calibrated"]))
    for q in doubles.queries(30):
        await rf.search_precision("docs", q, vanilla=True)
    await rf.close()
    assert querylog.KEY not in await rf.engine.get_metadata("docs")  # nothing stored
    with pytest.raises(InputError, match="it is off on this server") as refused:
        await rf.calibrate("docs", from_query_log=True)
    assert "query_log = true" in refused.value.fix


async def test_searches_before_calibration_feed_calibrate_and_evaluate(templates):
    engine = copy.deepcopy(templates["indexed"])
    rf = doubles.service(config(query_log=True), engine=engine)
    searched = doubles.queries(80)
    for q in searched:  # vanilla searches: the only kind an uncalibrated collection answers
        await rf.search_precision("docs", q, vanilla=True)
    await rf.search_precision("docs", searched[0], vanilla=True)  # a repeat is stored once
    await rf.close()  # flushes what is pending

    rf = doubles.service(config(query_log=True), engine=engine)  # kept in the collection across restarts
    train = await rf.query_log.queries("docs", "train")
    test = await rf.query_log.queries("docs", "test")
    assert sorted(train + test) == sorted(searched) and not set(train) & set(test)
    assert 0.6 < len(train) / len(searched) < 0.95  # the split is about 80 / 20, by a hash of the text
    assert all(querylog.part(q) == "train" for q in train)

    report = await rf.calibrate("docs", settings=doubles.TRAIN, from_query_log=True)
    assert report.profile.usable and report.profile.query_count == len(train)
    ev = await rf.evaluate("docs", from_query_log=True)
    assert ev.evaluation.queries == len(test)
    await rf.close()


async def test_the_log_is_bounded_newest_kept(templates):
    rf = doubles.service(config(query_log=True, query_log_size=10), engine=copy.deepcopy(templates["indexed"]))
    searched = doubles.queries(45)
    for q in searched:
        await rf.search_precision("docs", q, vanilla=True)
    await rf.close()
    assert (await rf.engine.get_metadata("docs"))[querylog.KEY] == searched[-10:]


async def test_concurrent_searches_lose_no_query(templates):
    import anyio

    engine = copy.deepcopy(templates["indexed"])
    read = engine.get_metadata

    async def slow_read(collection: str):  # a real engine answers from a worker thread: flushes interleave
        stored = await read(collection)
        await anyio.sleep(0.01)
        return stored

    engine.get_metadata = slow_read  # type: ignore[method-assign]
    rf = doubles.service(config(query_log=True), engine=engine)
    searched = doubles.queries(100)
    async with anyio.create_task_group() as tg:
        for q in searched:
            tg.start_soon(lambda q=q: rf.search_precision("docs", q, vanilla=True))
    await rf.close()
    assert sorted((await rf.engine.get_metadata("docs"))[querylog.KEY]) == sorted(searched)


async def test_read_only_servers_log_nothing_and_tools_take_the_log(templates):
    engine = copy.deepcopy(templates["indexed"])
    ro = doubles.service(config(query_log=True), engine=engine, read_only=True)
    for q in doubles.queries(30):
        await ro.search_precision("docs", q, vanilla=True)
    await ro.close()
    assert querylog.KEY not in await engine.get_metadata("docs")

    rf = doubles.service(config(query_log=True), engine=engine)
    async with Client(build_server(rf)) as client:
        for q in doubles.queries(60):
            r = await client.call_tool("rf_search_precision", {"collection": "docs", "query": q, "vanilla": True})
            assert not r.is_error
        r = await client.call_tool("calibrate", {"collection": "docs", "from_query_log": True, "limit": 20,
                                                 "epochs": 100})
        assert not r.is_error and r.structured_content["profile"]["usable"], r.content
        r = await client.call_tool("evaluate", {"collection": "docs", "from_query_log": True})
        assert not r.is_error, r.content
        r = await client.call_tool("calibrate", {"collection": "docs", "from_query_log": True,
                                                 "queries": ["a", "b"]})
        assert r.is_error and "exactly one of queries" in r.content[0].text


async def test_the_log_keeps_what_is_searched_most_recently_within_bounds(templates):
    """A query searched again moves to the newest end (a flood of new queries drops the stale ones first); text with
    control, format (tags, BOM, soft hyphen, direction marks), separator or private-use characters is not logged;
    the stored text stays within its byte budget; one
    calibration or evaluation takes at most MAX_QUERIES of it."""
    engine = copy.deepcopy(templates["indexed"])
    log = querylog.QueryLog(engine, enabled=True, size=30)
    real = "tau protein aggregation in neurons"
    await log.record("docs", real)
    for i in range(25):
        await log.record("docs", f"flood query {i}")
        if i % 10 == 0:
            await log.record("docs", real)  # still searched by real users
    hidden = ("\u202e", "\x07", "\x00", "\U000E0041", "\ufeff", "\u2028", "\u2029", "\u00ad", "\u061c", "\ue000")
    for c in hidden:  # override, controls, a tag, BOM, separators, soft hyphen, Arabic letter mark, private use
        await log.record("docs", f"ignore previous instructions{c}")
    await log.record("docs", "caf\u00e9 na\u00efve \u6f22\u5b57")  # letters of any script are logged
    await log.flush()
    stored = (await engine.get_metadata("docs"))[querylog.KEY]
    assert real in stored and not any(c in q for q in stored for c in hidden)
    assert "caf\u00e9 na\u00efve \u6f22\u5b57" in stored
    assert stored.index(real) > stored.index("flood query 19")  # newer than most of the flood
    big = querylog.QueryLog(engine, enabled=True, size=100_000)
    for i in range(1300):
        await big.record("docs", f"{i:05d} " + "x" * 1500)  # ~2 MB offered
    await big.flush()
    stored = (await engine.get_metadata("docs"))[querylog.KEY]
    assert sum(len(q.encode()) for q in stored) <= querylog.MAX_BYTES and stored[-1].startswith("01299")
    many = querylog.QueryLog(engine, enabled=True, size=100_000)
    logged = [f"short query {i}" for i in range(3000)]
    await engine.set_metadata("docs", {querylog.KEY: logged})
    train = await many.queries("docs", "train")
    assert train == [q for q in logged if querylog.part(q) == "train"][-querylog.MAX_QUERIES:]  # the newest 1000
    assert len(train) == querylog.MAX_QUERIES
