"""``rf-mcp demo``: a tour on the bundled demo corpus (self-written documents, queries and judgments).

index -> calibrate (training queries) -> evaluate (held-out queries with judgments) -> precision and recall search,
and the zero-cost search beside them, with what each step did. Refusals are part of the tour: a calibration that the
evaluation failed is refused by the searches, and the report says so and what to use instead.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

from pydantic import BaseModel

from rf_mcp.domain.datasets import Query, read_qrels
from rf_mcp.domain.indexing import CREATED_BY_KEY
from rf_mcp.domain.models import CalibrationReport, EvaluationReport, IndexReport, SearchResult
from rf_mcp.domain.service import RFService
from rf_mcp.errors import GuardrailError, RFError
from rf_mcp.ports import Progress


class DemoReport(BaseModel):
    collection: str
    data: str
    store: str = ""
    config: str = ""
    index: IndexReport
    calibration: CalibrationReport
    evaluation: EvaluationReport | None = None
    query: str
    precision: SearchResult | None = None
    recall: SearchResult | None = None
    zero_cost: SearchResult
    refusals: list[str] = []


def demo_folder() -> Path:
    return Path(str(files("rf_mcp") / "demo_data"))


def demo_queries() -> tuple[list[str], list[Query]]:
    """(training query texts, held-out queries with ids) of the demo set."""
    train, test = [], []
    for line in (demo_folder() / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            q = json.loads(line)
            (train.append(q["text"]) if q["split"] == "train" else test.append(Query(id=q["_id"], text=q["text"])))
    return train, test


async def _demo_owned(rf: RFService, name: str) -> bool:
    """Whether the demo may write ``name``: it does not exist, or the demo created it."""
    return not await rf.engine.exists(name) or (await rf.engine.get_metadata(name)).get(CREATED_BY_KEY) == "demo"


async def claim_collection(rf: RFService, collection: str) -> None:
    """Refuse an existing collection the demo did not create (its points and calibrations are someone's data), naming
    the first free name it would use instead."""
    if await _demo_owned(rf, collection):
        return
    instead = None
    for i in range(2, 1000):
        if await _demo_owned(rf, f"{collection}-{i}"):
            instead = f"{collection}-{i}"
            break
    raise GuardrailError(
        f"Collection {collection!r} already exists and was not created by the demo: the demo leaves it as it is "
        "(its points and calibration profiles are unchanged).",
        fix=f"Run the demo on another collection: --collection {instead}." if instead else
            "Run the demo on another collection (--collection NAME).")


async def run_demo(rf: RFService, collection: str = "demo", progress: Progress | None = None) -> DemoReport:
    folder = demo_folder()
    await claim_collection(rf, collection)
    index = await rf.index(collection, folder / "corpus.jsonl", progress=progress)
    if index.created:
        await rf.engine.set_metadata(collection, {CREATED_BY_KEY: "demo"})
    train, test = demo_queries()
    calibration = await rf.calibrate(collection, train, progress=progress)
    refusals: list[str] = []
    evaluation = None
    try:
        evaluation = await rf.evaluate(collection, test, qrels=read_qrels(folder / "qrels.tsv"), progress=progress)
    except RFError as exc:
        refusals.append(f"evaluate: {exc}")
    query = test[0].text
    precision = recall = None
    try:
        precision = await rf.search_precision(collection, query, limit=5)
    except RFError as exc:
        refusals.append(f"rf_search_precision: {exc}")
    try:
        recall = await rf.search_recall(collection, query, limit=5)
    except RFError as exc:
        refusals.append(f"rf_search_recall: {exc}")
    zero_cost = await rf.search_precision(collection, query, limit=5, vanilla=True)
    return DemoReport(collection=collection, data=str(folder), store=rf.engine.location,
                      config=rf.config.shown_source, index=index, calibration=calibration,
                      evaluation=evaluation, query=query, precision=precision, recall=recall, zero_cost=zero_cost,
                      refusals=refusals)
