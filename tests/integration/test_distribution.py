"""The built wheel in a fresh virtual environment without torch: the base install serves, indexes, searches and
calibrates (the default trainer is numpy); the training library's own trainer names the install line of the
``calibrate`` extra.

Builds the wheel (``pip wheel --no-deps``) and installs it with its real base dependencies from the package
registry (pip's cache makes a re-run quick); nothing else is reached over the network. The stdio server is started
through the ``mcp-server-qdrant-rf`` console script alone, as ``uvx mcp-server-qdrant-rf`` would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

from rf_mcp.cli import DISTRIBUTION
from rf_mcp.demo import demo_folder
from tests.common import ROOT, make_config, needs_shared

pytestmark = needs_shared


ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
"""The fresh venv's own view: with the checkout on PYTHONPATH, pip would take its egg-info for an installed copy."""


def _run(*args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=ENV)


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel and its base dependencies (not the calibrate extra)."""
    tmp = tmp_path_factory.mktemp("wheel")
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp / "dist", ROOT)
    assert built.returncode == 0, built.stderr[-3000:]
    [wheel] = (tmp / "dist").glob("mcp_server_qdrant_rf-*.whl")
    venv = tmp / "venv"
    made = _run(sys.executable, "-m", "venv", venv)
    assert made.returncode == 0, made.stderr
    installed = _run(venv / "bin" / "python", "-m", "pip", "install", "-q", wheel)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return venv


def test_base_install_has_no_torch(base_venv: Path) -> None:
    probe = _run(base_venv / "bin" / "python", "-c",
                 "import importlib.util as u, json; print(json.dumps({m: u.find_spec(m) is not None for m in "
                 "('torch', 'qdrant_relevance_feedback', 'rf_mcp', 'fastembed', 'mcp')}))")
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout) == {"torch": False, "qdrant_relevance_feedback": False, "rf_mcp": True,
                                        "fastembed": True, "mcp": True}
    for script in (DISTRIBUTION, "rf-mcp"):
        assert (base_venv / "bin" / script).is_file(), script


@pytest.mark.anyio
async def test_base_install_serves_indexes_and_searches(base_venv: Path, tmp_path: Path) -> None:
    cfg = make_config(tmp_path, tmp_path / "data")
    script = base_venv / "bin" / DISTRIBUTION
    indexed = _run(script, "--config", cfg, "--json", "index", "-c", "docs", "-i", demo_folder() / "corpus.jsonl")
    assert indexed.returncode == 0, indexed.stderr[-3000:]
    assert json.loads(indexed.stdout)["points_count"] > 0

    params = StdioServerParameters(command=str(script), args=["--config", str(cfg)], env=ENV)  # no command: serve
    async with Client(params) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"rf_search_precision", "rf_search_recall", "calibrate", "index", "list_collections"} <= names
        found = await client.call_tool("rf_search_precision", {"collection": "docs", "query": "how to brew coffee",
                                                               "vanilla": True, "limit": 3})
        assert not found.is_error, found
        assert len(found.structured_content["hits"]) == 3
        assert found.structured_content["feedback_scores_used"] == 0

    queries = demo_folder() / "queries.jsonl"
    calibrated = _run(script, "--config", cfg, "--json", "calibrate", "-c", "docs", "-q", queries, "--limit", "20")
    assert calibrated.returncode == 0, calibrated.stderr[-3000:]  # no torch, no training library
    assert json.loads(calibrated.stdout)["profile"]["trainer"].startswith("numpy-fit")
    library = {**ENV, "RF_MCP_CALIBRATION__TRAINER": "library"}
    refused = subprocess.run([str(script), "--config", str(cfg), "--json", "calibrate", "-c", "docs", "-q", str(queries)],
                             capture_output=True, text=True, timeout=600, env=library)
    assert refused.returncode == 2, refused.stderr[-3000:]
    error = json.loads(refused.stdout)["error"]
    assert "missing: qdrant_relevance_feedback, torch" in error["message"]
    assert f"pip install '{DISTRIBUTION}[calibrate]'" in error["fix"]
    assert "--index-url https://download.pytorch.org/whl/cpu" in error["fix"]
