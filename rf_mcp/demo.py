"""``rf-mcp demo``: a tour on the bundled demo corpus (a self-written support knowledge base, its queries and
judgments; ``scripts/make_demo_data.py`` writes it).

index -> calibrate (training queries) -> evaluate (held-out queries with judgments) -> RF precision and recall
search, then plain and hybrid search (no feedback) for the same query. RF runs with fusion "none", the mode the
evaluation gate compares with plain dense search; hybrid search (dense + BM25, no feedback) is measured beside it.
Each step says whether it was served, refused by a guardrail (and what that guardrail protects the user from) or
skipped, and the RF steps carry their nDCG@10 on the judged queries beside plain and hybrid search.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from rf_mcp.domain.datasets import Query, read_qrels
from rf_mcp.domain.indexing import CREATED_BY_KEY
from rf_mcp.domain.models import CalibrationReport, EvaluationReport, IndexReport, MethodMetrics, SearchResult
from rf_mcp.domain.service import RFService
from rf_mcp.errors import GuardrailError, RFError
from rf_mcp.ports import Progress

DEFAULT_COLLECTION = "rf-demo"
FUSION = "none"  # RF alone: the evaluation gate compares it with plain dense search

TERMS = {
    "seeds": "the top few results of plain vector search (5 here) that the feedback model scores for each query; "
             "RF needs at least 2 that score differently.",
    "signal": "how often the feedback model prefers a document the retriever ranked below its top seeds, on the "
              "training queries; under 10% there is nothing to learn and the calibration is stored as unusable.",
    "a, b, c": "the learned weights of the RF formula: a for the query's own similarity, c (with exponent b on the "
               "score gap) for the pull towards well-scored seeds and away from poorly scored ones.",
    "fingerprint": "a hash of the retriever, feedback model, seed source and text fields a calibration was trained "
                   "for; a search with any of them changed is refused.",
    "nDCG@10": "ranking quality of the first 10 results against the judgments (1 = every relevant document first).",
    "plain / hybrid": "plain: vector search alone; hybrid: vector + BM25 keyword search fused by rank; neither calls "
                      "the feedback model (zero cost).",
}


class DemoStep(BaseModel):
    step: str
    status: Literal["served", "refused", "skipped"]
    call: str = ""
    summary: str = ""
    reason: str = ""
    ndcg_at_10: float | None = None
    plain_ndcg_at_10: float | None = None
    hybrid_ndcg_at_10: float | None = None
    judged_relevant_in_hits: int | None = None


class DemoReport(BaseModel):
    steps: list[DemoStep]
    collection: str
    data: str
    store: str = ""
    config: str = ""
    fusion: str = FUSION
    index: IndexReport
    calibration: CalibrationReport
    evaluation: EvaluationReport | None = None
    query: str
    precision: SearchResult | None = None
    recall: SearchResult | None = None
    zero_cost: SearchResult
    hybrid: SearchResult | None = None
    advice: str = ""
    terms: dict[str, str] = TERMS
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


def plain_words(exc: RFError) -> str:
    """What the guardrail that refused a step protects the user from, in one sentence."""
    text = exc.problem
    if "unusable" in text:
        return ("The calibration learned nothing the retriever does not already know, so searching with it would "
                "spend feedback calls on arbitrary weights: it is refused.")
    if "failed its ground-truth evaluation" in text or "FAILED" in text:
        return ("On the judged test queries RF did not beat the search that costs nothing, so paying for feedback "
                "calls is refused: use the advised zero-cost search.")
    if "same feedback score" in text or "too few" in text:
        return "The seeds gave the feedback model nothing to tell apart, so there is no direction to move the query in."
    if "different setup" in text or "no calibration" in text:
        return "The weights were not trained for this retriever, feedback model and search mode, so they are not used."
    return "A Relevance Feedback usage rule would have been broken, so nothing was searched."


def _rows(evaluation: EvaluationReport | None) -> tuple[list[MethodMetrics], str]:
    """The evaluation's measured rows and advice: its ground truth, or the baselines without a usable calibration."""
    if evaluation is None:
        return [], ""
    gt = None if evaluation.evaluation is None else evaluation.evaluation.ground_truth
    if gt is not None:
        return gt.methods, gt.advice
    return (evaluation.baselines.methods, evaluation.baselines.advice) if evaluation.baselines else ([], "")


def _row(evaluation: EvaluationReport | None, prefix: str) -> float | None:
    """nDCG@10 of the measured row whose method name starts with ``prefix`` (None without one)."""
    return next((m.ndcg_at_10 for m in _rows(evaluation)[0] if m.method.startswith(prefix)), None)


def _judged(result: SearchResult | None, rels: dict[str, int]) -> int | None:
    return None if result is None else sum(1 for h in result.hits if rels.get(h.doc_id or str(h.id), 0) > 0)


async def run_demo(rf: RFService, collection: str = DEFAULT_COLLECTION,
                   progress: Progress | None = None) -> DemoReport:
    folder = demo_folder()
    await claim_collection(rf, collection)
    index = await rf.index(collection, folder / "corpus.jsonl", progress=progress)
    if index.created:
        await rf.engine.set_metadata(collection, {CREATED_BY_KEY: "demo"})
    steps = [DemoStep(step="index", status="served", call=f"index(collection={collection!r})",
                      summary=f"{index.documents} documents embedded with the retriever, with BM25 vectors beside")]
    train, test = demo_queries()
    qrels = read_qrels(folder / "qrels.tsv")
    calibration = await rf.calibrate(collection, train, fusion=FUSION, progress=progress)
    p = calibration.profile
    steps.append(DemoStep(
        step="calibrate", status="served", call=f"calibrate({len(train)} training queries, fusion={FUSION!r})",
        summary=(f"signal {p.signal.disagreement:.0%} ({p.signal.queries_disagreeing}/{p.signal.queries_total} "
                 f"queries), a={p.weights.a:.4g} b={p.weights.b:.4g} c={p.weights.c:.4g}, fingerprint "
                 f"{p.fingerprint}: stored as {'usable' if p.usable else 'UNUSABLE'}"),
        reason="" if p.usable else "; ".join(p.reasons)))
    refusals: list[str] = []

    def refused(name: str, call: str, exc: RFError) -> DemoStep:
        refusals.append(f"{name}: {exc}")
        return DemoStep(step=name, status="refused", call=call, summary=plain_words(exc), reason=str(exc))

    evaluation = None
    call = f"evaluate({len(test)} held-out queries with judgments, fusion={FUSION!r})"
    try:
        evaluation = await rf.evaluate(collection, test, qrels=qrels, fusion=FUSION, progress=progress)
    except GuardrailError as exc:
        steps.append(refused("evaluate", call, exc))
    else:
        ev = evaluation.evaluation
        summary = "baselines only (no usable calibration)" if ev is None else \
            f"verdict {ev.verdict}" + (f": {'; '.join(ev.reasons)}" if ev.reasons else "")
        steps.append(DemoStep(step="evaluate", status="served", call=call, summary=summary,
                              plain_ndcg_at_10=_row(evaluation, "vanilla"),
                              hybrid_ndcg_at_10=_row(evaluation, "hybrid")))
    plain, hybrid_row = _row(evaluation, "vanilla"), _row(evaluation, "hybrid")
    query = test[0]
    rels = qrels.get(query.id or "", {})
    results: dict[str, SearchResult | None] = {"rf_search_precision": None, "rf_search_recall": None}
    for name, row in (("rf_search_precision", "rf precision"), ("rf_search_recall", "rf recall")):
        call = f"{name}({query.text!r}, fusion={FUSION!r}, limit=5)"
        try:
            search = rf.search_precision if name == "rf_search_precision" else rf.search_recall
            res = await search(collection, query.text, limit=5, fusion=FUSION)
        except GuardrailError as exc:
            step = refused(name, call, exc)
        else:
            results[name] = res
            step = DemoStep(step=name, status="served", call=call,
                            summary=f"{len(res.hits)} hits, {res.feedback_scores_used} feedback scores, calibration "
                                    f"{res.profile.fingerprint}", judged_relevant_in_hits=_judged(res, rels))
        step.ndcg_at_10, step.plain_ndcg_at_10, step.hybrid_ndcg_at_10 = _row(evaluation, row), plain, hybrid_row
        steps.append(step)
    zero_cost = await rf.search_precision(collection, query.text, limit=5, vanilla=True, fusion="none")
    steps.append(DemoStep(step="search", status="served", call=f"rf_search_precision({query.text!r}, vanilla=true, "
                                                                 "fusion='none', limit=5)",
                          summary="plain vector search: no feedback calls", ndcg_at_10=plain,
                          judged_relevant_in_hits=_judged(zero_cost, rels)))
    hybrid: SearchResult | None = None
    call = f"rf_search_precision({query.text!r}, vanilla=true, fusion='sparse', limit=5)"
    if rf.config.collection.sparse_vector:
        hybrid = await rf.search_precision(collection, query.text, limit=5, vanilla=True, fusion="sparse")
        steps.append(DemoStep(step="search", status="served", call=call,
                              summary="hybrid search (vector + BM25 keywords, fused by rank): no feedback calls",
                              ndcg_at_10=hybrid_row, judged_relevant_in_hits=_judged(hybrid, rels)))
    else:
        steps.append(DemoStep(step="search", status="skipped", call=call,
                              reason="[collection] sparse_vector is empty: no BM25 vectors for hybrid search"))
    return DemoReport(steps=steps, collection=collection, data=str(folder), store=rf.engine.location,
                      config=rf.config.shown_source, index=index, calibration=calibration, evaluation=evaluation,
                      query=query.text, precision=results["rf_search_precision"], recall=results["rf_search_recall"],
                      zero_cost=zero_cost, hybrid=hybrid, advice=_rows(evaluation)[1], refusals=refusals)

