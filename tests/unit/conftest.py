"""Unit-test fixtures: the synthetic corpus indexed into the in-memory engine (no model, no ../shared)."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rf_mcp.adapters.engines.memory import MemoryEngine
from rf_mcp.domain.service import RFService
from tests import doubles


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in doubles.corpus()) + "\n")
    return path


@pytest.fixture(scope="session")
async def templates(corpus_file: Path) -> dict[str, MemoryEngine]:
    """Engines built once: the corpus indexed ("indexed"), and also calibrated with BM25 ("calibrated")."""
    rf = doubles.service()
    await rf.index("docs", corpus_file)
    indexed = copy.deepcopy(rf.engine)
    report = await rf.calibrate("docs", doubles.queries(), doubles.TRAIN)
    assert report.profile.usable, report.message
    assert isinstance(rf.engine, MemoryEngine) and isinstance(indexed, MemoryEngine)
    return {"indexed": indexed, "calibrated": rf.engine}


@pytest.fixture
async def indexed(templates: dict[str, MemoryEngine]) -> AsyncIterator[RFService]:
    """A service whose in-memory engine holds the synthetic corpus as collection "docs" (uncalibrated)."""
    rf = doubles.service(engine=copy.deepcopy(templates["indexed"]))
    yield rf
    await rf.close()


@pytest.fixture
async def calibrated(templates: dict[str, MemoryEngine]) -> AsyncIterator[RFService]:
    """The same, calibrated with BM25 feedback on 60 synthetic queries (a short training run)."""
    rf = doubles.service(engine=copy.deepcopy(templates["calibrated"]))
    yield rf
    await rf.close()
