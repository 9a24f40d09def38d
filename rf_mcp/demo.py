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
from rf_mcp.domain.models import CalibrationReport, EvaluationReport, IndexReport, SearchResult
from rf_mcp.domain.service import RFService
from rf_mcp.errors import RFError
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


async def run_demo(rf: RFService, collection: str = "demo", progress: Progress | None = None) -> DemoReport:
    folder = demo_folder()
    index = await rf.index(collection, folder / "corpus.jsonl", progress=progress)
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
