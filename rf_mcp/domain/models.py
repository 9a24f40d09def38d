"""Typed results of the domain operations (also the MCP tools' structured outputs)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from rf_mcp.ports import CollectionInfo, TrainSettings

__all__ = [
    "VANILLA", "Baselines", "CalibrationProfile", "CalibrationReport", "CollectionOverview", "CollectionsOverview",
    "Difference", "Evaluation", "EvaluationReport", "GroundTruth", "Hit", "IndexReport", "MethodMetrics", "ProfileRef",
    "ProfileSummary", "SearchResult", "Signal", "TrainSettings", "Verdict", "VerdictSummary", "Weights",
]


class Weights(BaseModel):
    """Formula weights of the naive strategy: a*sim(q,x) + sum c*(s_i-s_j)^b*(sim(f_i,x)-sim(f_j,x))."""

    a: float
    b: float
    c: float

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.a, self.b, self.c)


VANILLA = Weights(a=1.0, b=0.0, c=0.0)


class Signal(BaseModel):
    """Whether the feedback model disagreed with the retriever, i.e. whether there was anything to learn."""

    disagreement: float = Field(ge=0, le=1, description="Share of training queries where the feedback model ranked a "
                                                        "candidate outside the top context_limit above all inside it.")
    queries_total: int = Field(ge=0)
    queries_with_pairs: int = Field(ge=0, description="Queries whose top candidates had a usable context pair.")
    queries_disagreeing: int = Field(ge=0)
    queries_skipped: int = Field(0, ge=0, description="Training queries skipped: the feedback model's grades stayed "
                                                      "unusable after its retry (disagreement is over the others).")
    skipped_reason: str | None = Field(None, description="Why, the first skipped query's error (cut).")
    library_reported: float | None = Field(None, description="The percentage the library printed, parsed (cross-check).")
    retriever_correlation: float | None = Field(None, description="Mean per-query Spearman correlation between "
                                                "retriever similarity and feedback score over training candidates; "
                                                "strongly negative means the scores look inverted (a distance?).")


FusionMode = Literal["none", "sparse"]
Verdict = Literal["passed", "failed", "inconclusive", "unverified"]


class Difference(BaseModel):
    """The mean per-query difference of nDCG@10 between two rows over the same judged queries, with its paired
    bootstrap interval (resampling the queries; numpy, a fixed seed: the same judgments give the same interval)."""

    method: str
    against: str
    mean: float = Field(description="Mean of method minus against, per judged query.")
    low: float = Field(description="Lower end of the interval.")
    high: float = Field(description="Upper end of the interval.")
    confidence: float = 0.95
    resamples: int = Field(ge=1)

    def text(self) -> str:
        return (f"{self.method} vs {self.against}: nDCG@10 {self.mean:+.4f} ({self.confidence:.0%} interval "
                f"{self.low:+.4f}..{self.high:+.4f})")


class Evaluation(BaseModel):
    fusion: FusionMode = Field("none", description="The search fusion evaluated (sparse: RF fused with BM25, "
                                                   "measured against plain hybrid search).")
    at_n: int
    queries: int
    queries_evaluated: int = Field(description="Queries the library's Evaluator kept (others had no contrast).")
    rf_above_threshold: int
    vanilla_above_threshold: int
    relative_gain_pct: float
    dcg_rf_wins_pct: float
    dcg_vanilla_wins_pct: float
    dcg_ties_pct: float
    feedback_scores_used: int
    note: str = ("The library's metrics measure agreement with the feedback model, not relevance: "
                 "use ground truth (qrels) to decide.")
    ground_truth: GroundTruth | None = None
    verdict: Verdict = Field(description="passed / failed (searches with this fusion refuse the profile) / "
                                         "inconclusive (an interval spans zero: served with a warning) / unverified "
                                         "(no or too few judgments: served with a warning).")
    reasons: list[str] = []
    evaluated_at: str | None = Field(None, description="When (UTC, ISO 8601); None in profiles of schema 3.")
    queries_skipped: int = Field(0, ge=0, description="Queries skipped: the feedback model's grades stayed unusable "
                                                      "after its retry.")
    skipped_reason: str | None = Field(None, description="Why, the first skipped query's error (cut).")

    def judged_queries(self) -> int:
        """The judged queries this verdict rests on (0 without judgments)."""
        return 0 if self.ground_truth is None else self.ground_truth.queries


class MethodMetrics(BaseModel):
    method: str
    feedback_cost: int = Field(description="Feedback-model scores per query.")
    ndcg_at_1: float
    ndcg_at_3: float
    ndcg_at_10: float
    recall_at_10: float
    recall_at_100: float


class GroundTruth(BaseModel):
    queries: int = Field(description="Evaluation queries with relevance judgments.")
    refused_queries: int = Field(0, description="Queries the RF guardrails refused (e.g. seeds without contrast); "
                                                "their RF rows use the first pass, as a user would get it.")
    first_pass: Literal["vanilla", "hybrid"] = Field(description="Where seeds come from: the list the rerankers "
                                                                 "reorder and the reranker gain is measured against.")
    baseline: Literal["vanilla", "hybrid"] = Field(description="The zero-cost search of the evaluated fusion, that "
                                                               "the RF gains are measured against.")
    methods: list[MethodMetrics]
    reranker_gain_ndcg10: float = Field(description="Feedback model as a plain reranker minus the first pass.")
    rf_precision_gain_ndcg10: float
    rf_recall_gain_ndcg10: float
    best_method: str = Field(description="The row with the best nDCG@10.")
    advice: str = Field(description="Which mode to use on this collection, from these numbers.")
    differences: list[Difference] = Field(default_factory=list, description="The differences the verdict rests on "
                                          "(the reranker vs the first pass, each RF row vs the baseline), with their "
                                          "intervals (empty in profiles of schema 3).")
    per_query_ndcg10: dict[str, list[float]] = Field(default_factory=dict, exclude=True,
                                                     description="nDCG@10 per query and method (Python API only).")
    query_ids: list[str] = Field(default_factory=list, exclude=True)


SCHEMA_VERSION = 4
READABLE_SCHEMA_VERSIONS = (3, 4)
"""4 added the verdicts' evidence (intervals, date) and the inconclusive verdict; a profile of schema 3 still reads (its
verdicts show no interval) and is written back as 4 when a new evaluation is stored in it."""
Pairing = Literal["all", "extremes"]


class CalibrationProfile(BaseModel):
    """One calibration, stored in the collection's metadata under its fingerprint."""

    schema_version: int = SCHEMA_VERSION
    fingerprint: str
    collection: str
    vector_name: str
    retriever: str
    feedback: str
    seed_source: str = Field(description='Where seeds come from: "dense" (ANN top) or "hybrid(...)" (dense + BM25, '
                                         "RRF): the search mode the weights were fitted for.")
    strategy: Literal["naive"] = "naive"
    text_fields: list[str] = Field(description="The payload fields the feedback model read (part of the fingerprint).")
    pairing: Pairing = Field("all", description="Feedback sent with a search: all seeds (every ordered pair with a "
                                                "positive score difference), or only the best and the worst.")
    trainer: str = Field(description="What fitted the weights.")
    weights: Weights
    usable: bool
    reasons: list[str] = Field(default_factory=list, description="Why the profile is unusable, if it is.")
    signal: Signal
    train: TrainSettings
    query_count: int = Field(ge=0)
    query_hashes: list[str] = Field(default_factory=list, exclude=True,
                                    description="Short hashes of the training queries (stored, not shown).")
    points_count: int = Field(ge=0)
    created_at: str
    seconds: float = Field(ge=0, allow_inf_nan=False)
    evaluations: dict[FusionMode, Evaluation] = Field(
        default_factory=dict, description="The latest evaluation per search fusion (none / sparse); a failed one "
                                          "makes searches in that mode refuse the profile.")

    def evaluation(self, fusion: FusionMode) -> Evaluation | None:
        return self.evaluations.get(fusion)


def stored_form(profile: CalibrationProfile) -> dict[str, Any]:
    """The JSON stored in Qdrant: the shown fields plus the training-query hashes."""
    return {**profile.model_dump(mode="json"), "query_hashes": list(profile.query_hashes)}


class CalibrationReport(BaseModel):
    profile: CalibrationProfile
    stored_key: str
    feedback_scores_used: int
    warnings: list[str] = []
    message: str


class Baselines(BaseModel):
    """The rows that need no calibration, on judged queries, for a collection without a usable calibration."""

    queries: int = Field(description="Evaluation queries with relevance judgments.")
    first_pass: Literal["vanilla", "hybrid"] = Field(description="Where seeds would come from: the list the "
                                                                 "rerankers reorder.")
    methods: list[MethodMetrics]
    differences: list[Difference] = Field(description="Each reranker row vs the first pass, with its interval.")
    worth_calibrating: bool | None = Field(description="Whether the feedback model as a reranker of the top "
                                                       "seeds+budget beats the first pass beyond the interval's noise "
                                                       "(None: the feedback model cannot score here).")
    advice: str
    feedback_scores_used: int
    queries_skipped: int = Field(0, ge=0, description="Judged queries skipped: the feedback model's grades stayed "
                                                      "unusable after its retry.")
    skipped_reason: str | None = Field(None, description="Why, the first skipped query's error (cut).")
    per_query_ndcg10: dict[str, list[float]] = Field(default_factory=dict, exclude=True,
                                                     description="nDCG@10 per query and method (Python API only).")
    query_ids: list[str] = Field(default_factory=list, exclude=True)


class EvaluationReport(BaseModel):
    fingerprint: str = Field(description='The calibration evaluated ("none" when only the baselines were measured).')
    evaluation: Evaluation | None = Field(None, description="The calibration's evaluation (None: baselines only).")
    baselines: Baselines | None = Field(None, description="Without a usable calibration, with judgments: the rows "
                                                          "that need none, and whether a calibration is worth trying.")
    stored: bool = Field(False, description="Whether this evaluation's verdict was stored in the profile.")
    stored_reason: str = ""
    warnings: list[str] = []
    message: str


HitSource = Literal["rf", "seed", "vanilla", "hybrid"]


class Hit(BaseModel):
    id: int | str = Field(description="Qdrant point id.")
    doc_id: str | None = Field(None, description="The document's own id (from the indexed file).")
    rank: int
    score: float = Field(description="RF formula score (precision) or feedback score (recall). Not comparable "
                                     "across queries: never threshold it.")
    feedback_score: float | None = Field(None, description="Feedback-model score, where one was computed.")
    source: HitSource = Field(description="What produced the hit: rf, the RF query; seed, a scored seed (recall); "
                                          "vanilla, plain dense search; hybrid, plain dense + BM25 search.")
    text: str = Field(description="The document text the feedback model read (the configured text fields), cut to "
                                  "the server's max_text_chars.")
    truncated: bool = Field(False, description="True when text was cut.")
    payload: dict[str, Any] = Field({}, description="Other payload fields of the point.")


class ProfileRef(BaseModel):
    """The calibration a search used (every result says which)."""

    fingerprint: str
    weights: Weights
    created_at: str
    vanilla_mode: bool = False
    seed_source: str = "dense"
    pairing: Pairing = "all"


Method = Literal["rf-precision", "rf-precision+sparse", "rf-recall", "rf-recall+sparse", "vanilla", "hybrid"]


class SearchResult(BaseModel):
    mode: Literal["precision", "recall"]
    method: Method = Field(description="What ran: RF precision / recall, alone or fused with BM25 sparse search "
                                       "(+sparse), plain vector search through the RF API (vanilla), or plain "
                                       "dense + BM25 search (hybrid, no feedback).")
    fusion: FusionMode = Field(description="sparse: results fused with BM25 sparse search (RRF).")
    query: str
    collection: str
    hits: list[Hit]
    feedback_scores_used: int = Field(description="Documents scored by the feedback model for this search.")
    scoring_rounds: int
    profile: ProfileRef
    search_params: str = Field("exact", description="How the engine searched for the RF query: exact, or HNSW with "
                                                    "the breadth (hnsw_ef) used.")
    warnings: list[str] = []
    timings_ms: dict[str, float] = {}


class VerdictSummary(BaseModel):
    """One stored verdict and the evidence it rests on."""

    fusion: FusionMode
    verdict: Verdict
    judged_queries: int
    evaluated_at: str | None
    differences: list[Difference]
    reasons: list[str]


class ProfileSummary(BaseModel):
    collection: str
    key: str
    status: Literal["usable", "unusable", "failed-evaluation", "invalid"]
    verdicts: list[VerdictSummary] = Field(default_factory=list, description="The current profile's stored verdicts, "
                                                                             "per fusion.")
    profile: CalibrationProfile | None = None
    previous: CalibrationProfile | None = None
    matches_config: bool = False
    age_hours: float | None = None
    error: str | None = None


class CollectionOverview(BaseModel):
    info: CollectionInfo
    profiles: list[ProfileSummary]


class CollectionsOverview(BaseModel):
    qdrant: str = Field(description="Where the collections live (embedded folder or server URL).")
    collections: list[CollectionOverview]
    configured_retriever: str | None
    configured_feedback: str | None
    notes: list[str] = []
    errors: list[str] = Field(default_factory=list, description="Collections that could not be read, and why.")


class IndexReport(BaseModel):
    collection: str
    vector_name: str
    documents: int
    created: bool
    points_count: int
    seconds: float
    indexed_vectors: int | None = Field(None, description="Vectors in an HNSW index (exact search for the rest).")
    sparse_vector: str | None = Field(None, description="The BM25 sparse vector written beside the dense one.")
    notes: list[str] = []


class DocumentsReport(BaseModel):
    """What add_documents or delete_documents changed, and whether the collection's calibrations still fit it."""

    collection: str
    documents: int = Field(description="Documents added (or replaced), or deleted.")
    point_ids: list[int | str] = Field(description="Qdrant ids of the points written or deleted.")
    not_found: list[str] = Field([], description="Ids to delete that matched no point (nothing to do for them).")
    created: bool = False
    points_count: int
    warnings: list[str] = Field([], description="Calibrations fit on a collection that has since changed by more than "
                                                "[search] drift_warning: recalibrate.")
    notes: list[str] = []


Evaluation.model_rebuild()
