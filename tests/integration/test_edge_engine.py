"""qdrant-edge (Rust engine, embedded) runs the whole domain; folder ownership, migration, the HNSW build.

Query agreement between the engines is in test_congruence.py."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from rf_mcp.adapters.engines.client import ClientEngine
from rf_mcp.adapters.engines.edge import EdgeEngine
from rf_mcp.bootstrap import open_service
from rf_mcp.config import QdrantSettings, load_config
from rf_mcp.domain.models import TrainSettings
from rf_mcp.errors import EngineError
from rf_mcp.ports import CollectionSpec, PointInput
from tests.common import MINI, make_config, mini_vectors, needs_shared, train_queries

pytest.importorskip("qdrant_edge", reason="needs qdrant-edge-py")
pytestmark = pytest.mark.anyio


async def test_one_process_per_folder_and_metadata_survive_a_reopen(tmp_path):
    edge = EdgeEngine(QdrantSettings(path=str(tmp_path / "edge"), backend="edge"))
    await edge.create_collection("c", CollectionSpec("dense", 4))
    await edge.upsert("c", [PointInput(1, {"dense": [0.1, 0.2, 0.3, 0.4]}, {"i": 1})])
    await edge.set_metadata("c", {"rf_mcp:x": {"current": {"v": 1}}})
    second = EdgeEngine(QdrantSettings(path=str(tmp_path / "edge"), backend="edge"))
    with pytest.raises(EngineError, match="in use by another rf-mcp process"):
        await second.list_collections()  # one process per folder: a second writer is refused
    await edge.close()
    reopened = EdgeEngine(QdrantSettings(path=str(tmp_path / "edge"), backend="edge"))
    assert await reopened.get_metadata("c") == {"rf_mcp:x": {"current": {"v": 1}}}
    assert await reopened.list_collections() == ["c"] and await reopened.count("c") == 1
    await reopened.close()


@needs_shared
async def test_whole_domain_on_edge(tmp_path):
    cfg_path = make_config(tmp_path, tmp_path / "data")
    cfg_path.write_text(cfg_path.read_text().replace("[qdrant]\n", '[qdrant]\nbackend = "edge"\n'))
    cfg = load_config(cfg_path, env={})
    async with open_service(cfg) as rf:
        assert isinstance(rf.engine, EdgeEngine)
        await rf.index("mini", MINI / "corpus.jsonl", vectors_path=mini_vectors(tmp_path))
        report = await rf.calibrate("mini", train_queries(60), TrainSettings(limit=30, epochs=300))
        assert report.profile.usable and report.profile.signal.disagreement >= 0.10
        from rf_mcp.domain.datasets import read_queries
        ev = await rf.evaluate("mini", read_queries(MINI / "queries.jsonl")[:10])
        assert ev.evaluation.queries_evaluated > 0
        prec = await rf.search_precision("mini", "APOE4 and tau phosphorylation")
        rec = await rf.search_recall("mini", "APOE4 and tau phosphorylation", budget=10)
        assert prec.feedback_scores_used == 5 and rec.feedback_scores_used == 15
    async with open_service(cfg) as rf:  # profiles survive a reopen (file next to the shard)
        assert (await rf.list_profiles("mini"))[0].status == "usable"
    shutil.rmtree(tmp_path / "data")


@needs_shared
async def test_migrate_collection_and_profiles(mini_store, tmp_path):
    """`rf-mcp migrate` copies points and calibration profiles; searches give the same results there."""
    import json
    import subprocess
    import sys

    cfg, cfg_path = mini_store
    target = tmp_path / "edge-copy"
    r = subprocess.run([sys.executable, "-m", "rf_mcp", "--config", str(cfg_path), "--json", "migrate", "-c", "mini",
                        "--to", str(target), "--to-backend", "edge"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["points"] == 500 and report["profiles"] == 1
    again = subprocess.run([sys.executable, "-m", "rf_mcp", "--config", str(cfg_path), "migrate", "-c", "mini",
                            "--to", str(target), "--to-backend", "edge"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 2 and "already exists" in again.stderr
    edge_cfg = cfg.model_copy(update={"qdrant": QdrantSettings(path=str(target), backend="edge")})
    query = "APOE4 expression in neurons increases tau phosphorylation"
    async with open_service(cfg) as a, open_service(edge_cfg) as b:
        pa, pb = await a.search_precision("mini", query), await b.search_precision("mini", query)
        assert pa.profile.fingerprint == pb.profile.fingerprint
        assert [h.doc_id for h in pa.hits] == [h.doc_id for h in pb.hits]
        assert np.allclose([h.score for h in pa.hits], [h.score for h in pb.hits], atol=1e-4)


async def test_a_local_engine_folder_is_recognised(tmp_path):
    local = ClientEngine(QdrantSettings(path=str(tmp_path / "data"), backend="local"))
    await local.create_collection("c", CollectionSpec("dense", 4))
    await local.close()
    edge = EdgeEngine(QdrantSettings(path=str(tmp_path / "data"), backend="edge"))
    with pytest.raises(EngineError, match='backend = "local"'):
        await edge.list_collections()


@needs_shared
def test_cli_index_builds_the_hnsw_index_above_the_threshold(tmp_path):
    import json
    import subprocess
    import sys

    cfg = make_config(tmp_path, tmp_path / "data")
    cfg.write_text(cfg.read_text().replace("[qdrant]\n", "[qdrant]\nhnsw_threshold = 100\n"))

    def rf(*args):
        r = subprocess.run([sys.executable, "-m", "rf_mcp", "--config", str(cfg), "--json", *args],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    out = rf("index", "-c", "mini", "-i", str(MINI / "corpus.jsonl"), "--vectors", str(mini_vectors(tmp_path)))
    assert out["points_count"] == 500 and out["indexed_vectors"] >= 500  # dense (+ the sparse index)
    hits = rf("search", "-c", "mini", "--vanilla", "APOE4 and tau phosphorylation")["hits"]
    assert len(hits) == 10
    assert rf("optimize", "-c", "mini")["indexed_vectors"] >= 500
