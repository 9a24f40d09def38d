"""The embedded engine in its own process ([qdrant] engine_process): failures, deadlines, the folder lock, a parent
that dies, the child's stdout, no deadlock under load.

Query agreement with the other engines is in test_congruence.py (the "edge-process" engine)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from contextlib import suppress
from pathlib import Path

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
ROOT = Path(__file__).resolve().parents[2]
REAP_MARGIN = 1.5  # seconds past the deadline for killing and reaping a stuck child (a loaded two-core machine)


def reaped(pid: int) -> bool:
    """The process is gone and collected by its parent (a zombie still answers signal 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def gone(pid: int) -> bool:
    """The process has exited: collected, or a zombie waiting for its reaper (an orphan's reaper, e.g. a container's
    PID 1, may never collect it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    except OSError:
        return reaped(pid)
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


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
    assert engine.pid is not None
    # killed during a call (e.g. by the out-of-memory killer): that call fails clearly
    rng = np.random.default_rng(1)
    big = [PointInput(10_000 + i, {"dense": rng.normal(size=8).tolist()}, {"text": "y" * 2000}) for i in range(20_000)]
    victim = engine.pid

    async def kill_soon() -> None:
        await anyio.sleep(0.05)
        os.kill(victim, signal.SIGKILL)

    async with anyio.create_task_group() as tg:
        tg.start_soon(kill_soon)
        with pytest.raises(EngineError, match="engine process stopped"):
            await engine.upsert("c", big)
    assert 200 <= await engine.count("c") <= 20_200  # started again: the data is there (with what landed before)
    # died while idle: the next call starts a new one instead of failing
    idle = engine.pid
    assert idle is not None and idle != victim
    before = await engine.count("c")
    os.kill(idle, signal.SIGKILL)
    for _ in range(100):
        if reaped(idle):  # collected: the pool knows it is broken
            break
        await anyio.sleep(0.01)
    assert await engine.count("c") == before
    assert engine.pid not in (None, idle)
    await engine.close()


async def test_the_engine_process_holds_the_folder(tmp_path):
    engine = await filled(tmp_path)
    with pytest.raises(EngineError, match="in use by another rf-mcp process"):
        await EdgeEngine(QdrantSettings(path=str(tmp_path / "data"), backend="edge")).list_collections()
    second = factory.open_engine(settings(tmp_path))
    with pytest.raises(EngineError, match="in use by another rf-mcp process"):
        await second.list_collections()  # reported by the child that could not open the folder
    await engine.close()
    assert engine.pid is None
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


async def test_a_stopped_engine_process_misses_the_deadline_and_is_replaced(tmp_path):
    """A child that answers nothing (here stopped with SIGSTOP) fails the call at [qdrant] timeout, is killed (its
    folder lock with it) and replaced: the next call is served."""
    engine = factory.open_engine(QdrantSettings(path=str(tmp_path / "data"), backend="edge", engine_process="on",
                                                timeout=2))
    assert isinstance(engine, ProcessEngine)
    await engine.create_collection("c", CollectionSpec("dense", 4))
    await engine.upsert("c", [PointInput(1, {"dense": [0.1, 0.2, 0.3, 0.4]}, {"text": "x"})])
    stopped = engine.pid
    assert stopped is not None
    os.kill(stopped, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        with pytest.raises(EngineError, match=r"did not answer within 2 s \(\[qdrant\] timeout\); its process was "
                                              r"stopped") as failure:
            await engine.count("c")
        assert time.monotonic() - t0 < 2 + REAP_MARGIN
        assert "Traceback" not in str(failure.value)
        assert reaped(stopped)
        t1 = time.monotonic()
        assert await engine.count("c") == 1  # a fresh child on the same folder: the old one's lock is gone
        assert engine.pid not in (None, stopped)
        assert time.monotonic() - t1 < 60  # the replacement's start
    finally:
        with suppress(ProcessLookupError):
            os.kill(stopped, signal.SIGKILL)
    await engine.close()


async def test_cancelled_calls_leave_the_engine_process_serving(tmp_path):
    """A client that goes away cancels its calls: those not yet sent are dropped, a sent one finishes unseen."""
    engine = await filled(tmp_path, n=10)
    rng = np.random.default_rng(2)
    pid = engine.pid
    with anyio.move_on_after(0.01):
        async with anyio.create_task_group() as tg:
            for start in range(0, 5000, 500):
                tg.start_soon(engine.upsert, "c", [PointInput(100 + i, {"dense": rng.normal(size=8).tolist()}, {})
                                                   for i in range(start, start + 500)])
    assert 10 <= await engine.count("c") <= 5010
    assert engine.pid == pid  # the same child: cancelling is no failure
    await engine.close()


async def test_other_failures_become_engine_errors_without_a_traceback(tmp_path):
    engine = await filled(tmp_path, n=10)
    with pytest.raises(EngineError, match="The engine process failed: AttributeError") as failure:
        await engine._call("no_such_method")
    assert "Traceback" not in str(failure.value) and failure.value.fix
    assert await engine.count("c") == 10
    await engine.close()


PARENT = textwrap.dedent('''
    """A process that owns a ProcessEngine whose opener prints (the child's stdout must not be this one's)."""
    import asyncio
    import os
    import sys
    import time

    from rf_mcp import factory
    from rf_mcp.adapters.engines.process import ProcessEngine
    from rf_mcp.config import QdrantSettings


    def noisy(settings):
        print("NOISE from the engine process", flush=True)
        os.write(1, b"RAW NOISE from the engine process\\n")
        return factory.open_engine(settings)


    async def main(path, mode):
        engine = ProcessEngine(QdrantSettings(path=path, backend="edge"), noisy)
        assert await engine.list_collections() == []
        print("PID", engine.pid, flush=True)
        if mode == "sleep":
            time.sleep(60)
        await engine.close()


    if __name__ == "__main__":
        asyncio.run(main(sys.argv[1], sys.argv[2]))
''')


def run_parent(tmp_path: Path, mode: str) -> subprocess.Popen[str]:
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(script), str(tmp_path / "data"), mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
def test_the_engine_process_exits_when_its_parent_is_killed(tmp_path):
    parent = run_parent(tmp_path, "sleep")
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line.startswith("PID "), (line, parent.stderr.read() if parent.poll() is not None else "")
        child = int(line.split()[1])
        assert not gone(child)
        parent.kill()  # SIGKILL: no cleanup in the parent
        parent.wait(10)
        t0 = time.monotonic()
        while not gone(child) and time.monotonic() - t0 < 5:
            time.sleep(0.05)
        assert gone(child) and time.monotonic() - t0 < 2, "the orphaned engine process lingered"
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.communicate(timeout=30)


def test_the_engine_process_prints_on_stderr_not_on_stdout(tmp_path):
    """The parent's stdout may be the stdio MCP channel: what the child prints goes to stderr."""
    out, err = run_parent(tmp_path, "close").communicate(timeout=120)
    assert out.splitlines()[0].startswith("PID ") and len(out.splitlines()) == 1, out
    assert "NOISE from the engine process" in err and "RAW NOISE from the engine process" in err, err


async def test_arguments_that_cannot_be_sent_fail_as_engine_errors(tmp_path):
    engine = await filled(tmp_path, n=10)
    with pytest.raises(EngineError, match="The engine process failed"):
        await engine.set_metadata("c", {"f": lambda: None})  # a lambda does not pickle
    assert await engine.count("c") == 10
    await engine.close()
