"""The embedded engine in its own process ([qdrant] engine_process): failures, the folder lock, no deadlock under load.

Query agreement with the other engines is in test_congruence.py (the "edge-process" engine)."""

from __future__ import annotations

import os
import signal

import anyio
import numpy as np
import pytest

from rf_mcp import factory
from rf_mcp.adapters.engines.edge import EdgeEngine
from rf_mcp.adapters.engines.process import ProcessEngine
from rf_mcp.config import QdrantSettings
from rf_mcp.errors import EngineError, InputError
from rf_mcp.ports import CollectionSpec, Nearest, PointInput, QueryRequest

pytest.importorskip("qdrant_edge", reason="needs qdrant-edge-py")
pytestmark = pytest.mark.anyio


def settings(tmp_path) -> QdrantSettings:
    return QdrantSettings(path=str(tmp_path / "data"), backend="edge", engine_process="on")


async def filled(tmp_path, n: int = 200, text: int = 100, dim: int = 8) -> ProcessEngine:
    engine = factory.open_engine(settings(tmp_path))
    assert isinstance(engine, ProcessEngine)
    rng = np.random.default_rng(0)
    await engine.create_collection("c", CollectionSpec("dense", dim))
    for start in range(0, n, 100):
        await engine.upsert("c", [PointInput(i + 1, {"dense": rng.normal(size=dim).tolist()}, {"text": "x" * text})
                                  for i in range(start, min(n, start + 100))])
    return engine


async def test_a_killed_engine_process_fails_calls_clearly_and_comes_back(tmp_path):
    engine = await filled(tmp_path)
    assert engine._process is not None
    # killed during a call (e.g. by the out-of-memory killer): that call fails clearly
    rng = np.random.default_rng(1)
    big = [PointInput(10_000 + i, {"dense": rng.normal(size=8).tolist()}, {"text": "y" * 2000}) for i in range(20_000)]
    victim = engine._process

    async def kill_soon() -> None:
        await anyio.sleep(0.05)
        os.kill(victim.pid, signal.SIGKILL)

    async with anyio.create_task_group() as tg:
        tg.start_soon(kill_soon)
        with pytest.raises(EngineError, match="engine process stopped"):
            await engine.upsert("c", big)
    assert 200 <= await engine.count("c") <= 20_200  # started again: the data is there (with what landed before)
    # died while idle: the next call starts a new one instead of failing
    assert engine._process is not None
    idle = engine._process
    before = await engine.count("c")
    os.kill(idle.pid, signal.SIGKILL)
    for _ in range(100):
        if idle.poll() is not None:
            break
        await anyio.sleep(0.01)
    assert await engine.count("c") == before
    await engine.close()


async def test_the_engine_process_holds_the_folder(tmp_path):
    engine = await filled(tmp_path)
    with pytest.raises(EngineError, match="in use by another rf-mcp process"):
        await EdgeEngine(QdrantSettings(path=str(tmp_path / "data"), backend="edge")).list_collections()
    second = factory.open_engine(settings(tmp_path))
    with pytest.raises(EngineError, match="in use by another rf-mcp process"):
        await second.list_collections()  # reported by the child that could not open the folder
    await engine.close()
    assert engine._process is None
    reopened = EdgeEngine(QdrantSettings(path=str(tmp_path / "data"), backend="edge"))  # released on close
    assert await reopened.count("c") == 200
    await reopened.close()


async def test_errors_keep_their_class_and_message(tmp_path):
    engine = await filled(tmp_path, n=10)
    with pytest.raises(InputError, match=r"Collection 'nope' does not exist \(existing: \['c'\]\)"):
        await engine.describe("nope")
    assert (await engine.describe("c")).points_count == 10  # and the engine process keeps serving
    await engine.close()


async def test_many_concurrent_calls_with_large_answers_do_not_deadlock(tmp_path):
    """Requests and answers larger than the socket buffers, in flight at once: each side keeps reading."""
    engine = await filled(tmp_path, n=300, text=20_000, dim=2048)  # 50 hits x 20 KB = 1 MB per answer
    rng = np.random.default_rng(1)
    done = 0

    async def one() -> None:
        nonlocal done
        hits = await engine.query("c", QueryRequest(Nearest(rng.normal(size=2048).tolist(), "dense"), 50))  # 20 KB
        assert len(hits) == 50 and len(hits[0].payload["text"]) == 20_000
        done += 1

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(one)
    assert done == 100
    await engine.close()


@pytest.mark.parametrize("backend", ["edge", "local"])
async def test_the_engine_process_closes_quietly(tmp_path, capfd, backend):
    """Stopping the server closes the engine in its child: no traceback on stderr (qdrant-client's local mode closes
    through a worker thread, which needs the child's event loop)."""
    engine = factory.open_engine(QdrantSettings(path=str(tmp_path / "data"), backend=backend, engine_process="on"))
    assert isinstance(engine, ProcessEngine)
    await engine.create_collection("c", CollectionSpec("dense", 4))
    await engine.upsert("c", [PointInput(1, {"dense": [0.1, 0.2, 0.3, 0.4]}, {"text": "x"})])
    assert await engine.count("c") == 1
    await engine.close()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Error" not in err, err
