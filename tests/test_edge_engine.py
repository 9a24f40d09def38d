"""qdrant-edge (Rust engine, embedded) agrees with qdrant-client's embedded engine, and runs the whole domain."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from rf_mcp.adapters.edge_engine import EdgeEngine
from rf_mcp.adapters.engine import QdrantEngine
from rf_mcp.config import QdrantSettings, load_config
from rf_mcp.domain.models import TrainSettings
from rf_mcp.domain.service import RFService
from rf_mcp.errors import EngineError
from tests.conftest import MINI, make_config, mini_vectors, needs_shared, train_queries

pytest.importorskip("qdrant_edge", reason="needs qdrant-edge-py")
pytestmark = pytest.mark.anyio
N, DIM = 3000, 32


def clustered(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, DIM))
    return (centres[rng.integers(0, 20, N)] + 0.4 * rng.normal(size=(N, DIM))).astype(np.float32)


@pytest.fixture
async def engines(tmp_path):
    vectors = clustered()
    local = QdrantEngine(QdrantSettings(path=str(tmp_path / "local")))
    edge = EdgeEngine(QdrantSettings(path=str(tmp_path / "edge"), backend="edge"))
    for e in (local, edge):
        await e.create_collection("c", "dense", DIM)
        for start in range(0, N, 1000):
            ids = list(range(start + 1, min(start + 1001, N + 1)))
            await e.upsert("c", "dense", ids, vectors[start:start + 1000], [{"i": i} for i in ids])
    yield local, edge, vectors
    await local.close()
    await edge.close()


def same(a, b) -> None:
    assert [p.id for p in a] == [p.id for p in b]
    assert np.allclose([p.score for p in a], [p.score for p in b], atol=1e-4)


@pytest.mark.parametrize("n_feedback", [2, 3, 5])
@pytest.mark.parametrize("as_ids", [True, False])
async def test_rf_queries_agree(engines, n_feedback, as_ids):
    local, edge, vectors = engines
    rng = np.random.default_rng(n_feedback)
    for trial in range(5):
        target = vectors[rng.integers(N)] + 0.1 * rng.normal(size=DIM)
        seeds = [int(i) + 1 for i in rng.choice(N, n_feedback, replace=False)]
        scores = rng.uniform(0, 10, n_feedback).tolist()
        examples = seeds if as_ids else [vectors[i - 1] for i in seeds]
        weights = (0.2, 0.5, 0.05)
        a = await local.relevance_feedback("c", "dense", target, list(zip(examples, scores)), weights, 10)
        b = await edge.relevance_feedback("c", "dense", target, list(zip(examples, scores)), weights, 10)
        same(a, b)
        if as_ids:
            assert not set(seeds) & {p.id for p in b}  # point-id examples are excluded, as on a server


async def test_nearest_retrieve_metadata_agree(engines, tmp_path):
    local, edge, vectors = engines
    q = vectors[7]
    same(await local.nearest("c", "dense", q, 10, exclude=[8]), await edge.nearest("c", "dense", q, 10, exclude=[8]))
    assert (await edge.describe("c")).points_count == N and (await edge.describe("c")).vector("dense").dim == DIM
    rec = (await edge.retrieve("c", [5], with_vectors=True))[0]
    assert rec.payload == {"i": 5} and len(rec.vector["dense"]) == DIM
    await edge.set_metadata("c", {"rf_mcp:x": {"current": {"v": 1}}, "other": 1})
    await edge.set_metadata("c", {"other": None})
    second = EdgeEngine(QdrantSettings(path=str(tmp_path / "edge"), backend="edge"))
    with pytest.raises(EngineError, match="in use by another rf-mcp process"):
        await second.list_collections()  # one process per folder: a second writer is refused
    await edge.close()
    reopened = EdgeEngine(QdrantSettings(path=str(tmp_path / "edge"), backend="edge"))
    assert await reopened.get_metadata("c") == {"rf_mcp:x": {"current": {"v": 1}}}
    assert await reopened.list_collections() == ["c"]
    await reopened.close()


@needs_shared
async def test_whole_domain_on_edge(tmp_path):
    cfg_path = make_config(tmp_path, tmp_path / "data")
    cfg_path.write_text(cfg_path.read_text().replace("[qdrant]\n", '[qdrant]\nbackend = "edge"\n'))
    cfg = load_config(cfg_path, env={})
    async with RFService(cfg) as rf:
        assert isinstance(rf.engine, EdgeEngine)
        await rf.index("mini", MINI / "corpus.jsonl", vectors_path=mini_vectors(tmp_path))
        report = await rf.calibrate("mini", train_queries(60), TrainSettings(limit=30, epochs=300))
        assert report.profile.usable and report.profile.signal.library_reported == pytest.approx(
            report.profile.signal.disagreement, abs=1e-4)
        from rf_mcp.domain.datasets import read_queries
        ev = await rf.evaluate("mini", read_queries(MINI / "queries.jsonl")[:10])
        assert ev.evaluation.queries_evaluated > 0
        prec = await rf.search_precision("mini", "APOE4 and tau phosphorylation")
        rec = await rf.search_recall("mini", "APOE4 and tau phosphorylation", budget=10)
        assert prec.feedback_scores_used == 5 and rec.feedback_scores_used == 15
    async with RFService(cfg) as rf:  # profiles survive a reopen (file next to the shard)
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
    async with RFService(cfg) as a, RFService(edge_cfg) as b:
        pa, pb = await a.search_precision("mini", query), await b.search_precision("mini", query)
        assert pa.profile.fingerprint == pb.profile.fingerprint
        assert [h.doc_id for h in pa.hits] == [h.doc_id for h in pb.hits]
        assert np.allclose([h.score for h in pa.hits], [h.score for h in pb.hits], atol=1e-4)


async def test_a_local_engine_folder_is_recognised(tmp_path):
    local = QdrantEngine(QdrantSettings(path=str(tmp_path / "data")))
    await local.create_collection("c", "dense", 4)
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
    assert out["points_count"] == 500 and out["indexed_vectors"] == 500
    hits = rf("search", "-c", "mini", "--vanilla", "APOE4 and tau phosphorylation")["hits"]
    assert len(hits) == 10
    assert rf("optimize", "-c", "mini")["indexed_vectors"] == 500
