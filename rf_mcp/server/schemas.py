"""Typed inputs of the MCP tools (their outputs are the domain result models)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rf_mcp.adapters.engine import CollectionInfo
from rf_mcp.domain.models import ProfileSummary, TrainSettings

Collection = Field(min_length=1, max_length=255, description="Qdrant collection name.")
VectorName = Field(None, max_length=255, description='Dense vector to use; omit for the configured one ("" = unnamed).')
QueryText = Field(min_length=1, max_length=4000, description="The user's information need, as text.")


class ToolInput(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QueriesInput(ToolInput):
    """Inputs that take queries either inline (``queries``) or from a server-side file (``queries_path``)."""

    @model_validator(mode="after")
    def _one_source(self) -> "QueriesInput":
        if (getattr(self, "queries", None) is None) == (getattr(self, "queries_path", None) is None):
            raise ValueError("give exactly one of queries (a list) or queries_path (a file)")
        return self


class IndexInput(ToolInput):
    collection: str = Collection
    input_path: str = Field(min_length=1, description="Server-side path of a JSONL corpus (_id, title, text).")
    vectors_path: str | None = Field(None, description="Server-side .npy of precomputed vectors from the same "
                                     "retriever, one row per corpus line: skips embedding.")
    vector_name: str | None = VectorName


class CalibrateInput(QueriesInput):
    collection: str = Collection
    queries: list[str] | None = Field(None, max_length=1000, description="50-200 real, representative user "
                                      "queries (not synthetic). Give these or queries_path.")
    queries_path: str | None = Field(None, description="Server-side file of queries: JSONL (_id, text) or one per line.")
    max_queries: int | None = Field(None, ge=1, le=1000, description="Use at most this many queries.")
    limit: int = Field(50, ge=6, le=1000, description="Candidates retrieved and scored per query: the cost is "
                                                     "queries x limit feedback-model scores.")
    context_limit: int = Field(5, ge=2, le=50, description="Top candidates mined for the context pair.")
    confidence_margin: float = Field(0.0, ge=0.0, description="Minimum feedback-score gap for a context pair.")
    epochs: int = Field(1000, ge=1, le=100_000, description="Training epochs (early stopping applies).")
    max_feedback_scores: int | None = Field(None, ge=1, description="Refuse if queries x limit exceeds this "
                                            "(a cost cap for slow or paid feedback models such as an LLM judge).")
    vector_name: str | None = VectorName

    def train_settings(self) -> TrainSettings:
        return TrainSettings(limit=self.limit, context_limit=self.context_limit,
                             confidence_margin=self.confidence_margin, epochs=self.epochs)


class EvalQuery(ToolInput):
    id: str | None = Field(None, description="Query id, as in the qrels file (needed for ground truth).")
    text: str = QueryText


class EvaluateInput(QueriesInput):
    collection: str = Collection
    queries: list[EvalQuery] | None = Field(None, max_length=2000, description="Held-out queries (not the "
                                            "calibration ones). Give these or queries_path.")
    queries_path: str | None = Field(None, description="Server-side JSONL of queries (_id, text).")
    qrels_path: str | None = Field(None, description="Server-side BEIR qrels TSV: adds nDCG/recall and the "
                                   "ground-truth gate.")
    max_queries: int | None = Field(None, ge=1, le=2000)
    at_n: int = Field(10, ge=1, le=100, description="Cut-off of the library's metrics.")
    vector_name: str | None = VectorName


class PrecisionInput(ToolInput):
    collection: str = Collection
    query: str = QueryText
    limit: int = Field(10, ge=1, le=100, description="Results to return.")
    seeds: int = Field(5, ge=2, le=20, description="Top ANN results scored as seeds (5 is the guide's default).")
    vanilla: bool = Field(False, description="Plain vector search through the RF API (a=1, b=0, c=0): no "
                                             "calibration needed, no feedback used.")
    vector_name: str | None = VectorName


class RecallInput(ToolInput):
    collection: str = Collection
    query: str = QueryText
    budget: int = Field(20, ge=1, le=200, description="New RF results to score: total cost = seeds + budget.")
    limit: int | None = Field(None, ge=1, le=220, description="Results to return (default: all scored).")
    seeds: int = Field(5, ge=2, le=20, description="ANN seeds when seed_ids is not given.")
    seed_ids: list[int | str] | None = Field(None, min_length=2, max_length=20,
                                             description="Point ids to use as seeds (e.g. results the user liked).")
    vector_name: str | None = VectorName


class RollbackInput(ToolInput):
    collection: str = Collection
    vector_name: str | None = VectorName


class CollectionsInput(ToolInput):
    collection: str | None = Field(None, description="One collection; omit for all.")


class CollectionOverview(BaseModel):
    info: CollectionInfo
    profiles: list[ProfileSummary]


class CollectionsOutput(BaseModel):
    qdrant: str = Field(description="Where the collections live (embedded folder or server URL).")
    collections: list[CollectionOverview]
    configured_retriever: str | None
    configured_feedback: str | None
    notes: list[str] = []

