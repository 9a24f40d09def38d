"""A full disk is an error, never a crash: the edge engine checks free space before opening a shard, building the
HNSW index and creating a payload index (a real full filesystem: a small tmpfs, filled; needs root to mount)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import anyio
import pytest

from rf_mcp.adapters.engines import _shared
from rf_mcp.adapters.engines.edge import EdgeEngine
from rf_mcp.config import QdrantSettings
from rf_mcp.errors import EngineError
from rf_mcp.ports import CollectionSpec, PointInput
from tests.common import make_config, needs_shared

pytestmark = [needs_shared, pytest.mark.anyio]
VECTOR = "dense"


async def build_store(path: Path, points: int = 20) -> None:
    engine = EdgeEngine(QdrantSettings(path=str(path), backend="edge"))
    try:
        await engine.create_collection("c", CollectionSpec(VECTOR, 384))
        await engine.upsert("c", [PointInput(i, {VECTOR: [float(i + 1)] * 384}, {"text": f"doc {i}"})
                                  for i in range(points)])
    finally:
        await engine.close()


async def test_no_space_refuses_open_optimize_and_payload_index(tmp_path, monkeypatch):
    """In process, with the free space reported by shutil.disk_usage made small: each write is refused with the
    space named, and works once space is back."""
    store = tmp_path / "store"
    await build_store(store)
    usage = namedtuple("usage", "total used free")
    real = shutil.disk_usage
    monkeypatch.setattr(_shared.shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 10**6, 10**6))  # 1 MB free
    engine = EdgeEngine(QdrantSettings(path=str(store), backend="edge"))
    try:
        with pytest.raises(EngineError, match=r"Not enough disk space .* for opening collection 'c'"):
            await engine.describe("c")
        monkeypatch.setattr(_shared.shutil, "disk_usage", real)
        assert (await engine.describe("c")).points_count == 20  # opened now
        monkeypatch.setattr(_shared.shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 10**6, 10**6))
        with pytest.raises(EngineError, match=r"Not enough disk space .* for building the HNSW index"):
            await engine.optimize("c")
        with pytest.raises(EngineError, match=r"Not enough disk space .* for a payload index on 'text'"):
            await engine.create_payload_index("c", "text", "keyword")
        with pytest.raises(EngineError, match=r"Not enough disk space .* for creating collection 'd'"):
            await engine.create_collection("d", CollectionSpec(VECTOR, 384))
        assert not (store / "d" / "collection.json").exists()
        monkeypatch.setattr(_shared.shutil, "disk_usage", real)
        assert (await engine.describe("c")).payload_indexes == []
    finally:
        await engine.close()


@pytest.fixture
def full_tmpfs(tmp_path):
    """A 96 MB tmpfs holding an edge store, then filled to about 8 MB free (under the 64 MB safety margin)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode(errors='replace').strip()[:200]}")
    try:
        anyio.run(build_store, mount / "store")
        free = shutil.disk_usage(mount).free
        with open(mount / "filler", "wb") as f:
            f.write(b"\0" * max(0, free - 8 * 1024**2))
        assert shutil.disk_usage(mount).free < _shared.MIN_FREE_BYTES
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_commands_on_a_full_disk_exit_with_a_message_not_a_signal(full_tmpfs, tmp_path):
    cfg = make_config(tmp_path, full_tmpfs / "store")
    env = {**os.environ, "RF_MCP_COLLECTION__VECTOR_NAME": VECTOR, "RF_MCP_COLLECTION__TEXT_FIELDS": '["text"]'}
    search = subprocess.run([sys.executable, "-m", "rf_mcp", "--config", str(cfg), "search", "-c", "c", "--vanilla",
                             "doc"], capture_output=True, text=True, timeout=300, env=env)
    assert search.returncode == 4, (search.returncode, search.stderr[-2000:])  # an engine error, not a signal
    assert "Not enough disk space" in search.stderr and "Traceback" not in search.stderr
    profiles = subprocess.run([sys.executable, "-m", "rf_mcp", "--config", str(cfg), "--json", "profiles"],
                              capture_output=True, text=True, timeout=300, env=env)
    assert profiles.returncode >= 0 and profiles.returncode != 135, profiles.stderr[-2000:]  # never a signal/SIGBUS
    assert "Traceback" not in profiles.stderr
    if profiles.returncode == 0:
        json.loads(profiles.stdout)  # the profiles stored beside the shard are read without opening it
    else:
        assert "Not enough disk space" in profiles.stderr


def test_serve_on_a_full_disk_answers_with_the_message_and_keeps_serving(full_tmpfs, tmp_path):
    """The stdio server on a store whose disk is full: the call that would open the shard is answered with the
    disk-space error (a tool error, not a crash or a signal), and the server still answers the next request."""
    import anyio
    from mcp.client.client import Client
    from mcp.client.stdio import StdioServerParameters

    cfg = make_config(tmp_path, full_tmpfs / "store")
    env = {**os.environ, "RF_MCP_COLLECTION__VECTOR_NAME": VECTOR, "RF_MCP_COLLECTION__TEXT_FIELDS": '["text"]'}

    async def run() -> None:
        params = StdioServerParameters(command=sys.executable, args=["-m", "rf_mcp", "--config", str(cfg), "serve"],
                                       env=env)
        async with Client(params, read_timeout_seconds=120) as client:
            r = await client.call_tool("rf_search_precision", {"collection": "c", "query": "doc", "vanilla": True})
            assert r.is_error and "Not enough disk space" in r.content[0].text, r.content
            assert "Traceback" not in r.content[0].text
            assert len((await client.list_tools()).tools) == 9  # still serving

    anyio.run(run)
