"""Fixtures: the environment is cleaned for every test; the shared-data fixtures skip with a reason without ../shared."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import anyio
import pytest

# A Qdrant server given by QDRANT_URL is for the server-path tests only; every other test must not reach
# it (nor a user's config or tokens) through the environment its subprocesses inherit.
if os.environ.get("QDRANT_URL") and not os.environ.get("RF_MCP_TEST_QDRANT_URL"):
    os.environ["RF_MCP_TEST_QDRANT_URL"] = os.environ["QDRANT_URL"]
for _name in ("QDRANT_URL", "QDRANT_API_KEY", "QDRANT_LOCAL_PATH", "RF_MCP_CONFIG", "RF_MCP_AUTH_TOKEN",
              "RF_MCP_READ_ONLY", "COLLECTION_NAME", "EMBEDDING_MODEL"):
    os.environ.pop(_name, None)

from rf_mcp.bootstrap import open_service  # noqa: E402 - after the environment is cleaned
from rf_mcp.config import Config, load_config  # noqa: E402
from tests.common import MINI, MODEL, SHARED, make_config, mini_vectors, train_queries  # noqa: E402


@pytest.fixture(scope="session")
def mini_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedded Qdrant folder with scifact-mini indexed (precomputed vectors) and calibrated with BM25."""
    if not (MODEL / "model.onnx").is_file() or not (MINI / "corpus.jsonl").is_file():
        pytest.skip(f"needs the shared models and data at {SHARED}")
    tmp = tmp_path_factory.mktemp("mini")
    data = tmp / "data"
    cfg = load_config(make_config(tmp, data), env={})

    async def build() -> None:
        async with open_service(cfg) as rf:
            await rf.index("mini", MINI / "corpus.jsonl", vectors_path=mini_vectors(tmp))
            await rf.calibrate("mini", train_queries())

    anyio.run(build)
    return data


@pytest.fixture
def mini_store(mini_template: Path, tmp_path: Path) -> tuple[Config, Path]:
    """A private copy of the calibrated scifact-mini store and its config."""
    data = tmp_path / "data"
    shutil.copytree(mini_template, data)
    cfg_path = make_config(tmp_path, data)
    return load_config(cfg_path, env={}), cfg_path


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"
