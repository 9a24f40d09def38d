"""Unit-test fixtures: the synthetic corpus indexed into the in-memory engine (no model, no ../shared, no torch).

Calibrations use :class:`tests.doubles.NumpyTrainer`, the numpy double of the trainer port; the training library
itself (torch) is tested in ``tests/integration``. Each unit module is checked not to have imported it.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from rf_mcp.adapters.engines.memory import MemoryEngine
from rf_mcp.domain.service import RFService
from tests import doubles

HEAVY = ("torch", "qdrant_relevance_feedback")  # the training library: tests/integration only
UNIT = Path(__file__).resolve().parent
_LOADED_FIRST = {m for m in HEAVY if m in sys.modules}  # before any unit test module is collected


@pytest.fixture(scope="module", autouse=True)
def no_training_library(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails a unit module that imports the training library. In a run of tests/unit alone, an import at collection
    time counts too; with other tests in the run (which may import it), only what each unit module runs counts."""
    only_unit = all(Path(item.path).resolve().is_relative_to(UNIT) for item in request.session.items)
    before = _LOADED_FIRST if only_unit else {m for m in HEAVY if m in sys.modules}
    yield
    loaded = {m for m in HEAVY if m in sys.modules} - before
    assert not loaded, (f"{sorted(loaded)} imported by the time {request.module.__name__} ran: unit tests run on "
                        "the ports' doubles (tests.doubles.NumpyTrainer), the training library in tests/integration")


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
