"""The remote path against a real Qdrant server: runs when QDRANT_URL is set (scripts/start_qdrant.sh)."""

from __future__ import annotations

import os
import uuid

import pytest

from rf_mcp.bootstrap import open_service
from rf_mcp.config import QdrantSettings, load_config
from rf_mcp.domain.models import TrainSettings
from tests.common import MINI, make_config, mini_vectors, needs_shared, train_queries

URL = os.environ.get("RF_MCP_TEST_QDRANT_URL")  # conftest moves QDRANT_URL here
pytestmark = [needs_shared, pytest.mark.anyio,
              pytest.mark.skipif(not URL, reason="no Qdrant server: set QDRANT_URL (scripts/start_qdrant.sh starts one)")]


async def test_whole_domain_on_a_server_and_profiles_shared(tmp_path):
    name = f"rf-mcp-test-{uuid.uuid4().hex[:8]}"
    cfg = load_config(make_config(tmp_path, tmp_path / "unused"), env={"QDRANT_URL": URL})
    async with open_service(cfg) as rf:
        await rf.index(name, MINI / "corpus.jsonl", vectors_path=mini_vectors(tmp_path))
        report = await rf.calibrate(name, train_queries(60), TrainSettings(limit=30, epochs=300))
        assert report.profile.usable
        prec = await rf.search_precision(name, "APOE4 and tau phosphorylation")
    async with open_service(cfg) as other:  # a second process-like client sees the same profile through Qdrant
        again = await other.search_precision(name, "APOE4 and tau phosphorylation")
        assert again.profile.fingerprint == prec.profile.fingerprint
        assert [h.id for h in again.hits] == [h.id for h in prec.hits]
        await other.engine.run(lambda c: c.delete_collection(name))


async def test_migrate_embedded_to_server(mini_store):
    cfg, _ = mini_store
    name = "mini"
    async with open_service(cfg) as rf:
        target = QdrantSettings(url=URL)
        exists = await open_service(cfg.model_copy(update={"qdrant": target})).engine.exists(name)
        if exists:
            pytest.skip("the server already has a 'mini' collection")
        report = await rf.migrate(name, target)
        assert report.points == 500 and report.profiles == 1
