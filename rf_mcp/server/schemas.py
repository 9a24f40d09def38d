"""Typed inputs of the MCP tools (their outputs are the domain result models).

An omitted optional argument means "the server's configured default" (``[search]`` of the config for the search
sizes, :class:`rf_mcp.ports.TrainSettings` for calibration): each default is defined once, there.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from rf_mcp.domain.models import TrainSettings

Collection = Field(min_length=1, max_length=255, description="Qdrant collection name.")
VectorName = Field(None, max_length=255, description='Dense vector to use; omit for the configured one ("" = unnamed).')
QueryText = Field(min_length=1, max_length=4000, description="The user's information need, as text.")


class ToolInput(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QueriesInput(ToolInput):
    """Inputs that take queries either inline (``queries``) or from a server-side file (``queries_path``)."""

    @model_validator(mode="after")
    def _one_source(self) -> QueriesInput:
        if (getattr(self, "queries", None) is None) == (getattr(self, "queries_path", None) is None):
            raise ValueError("give exactly one of queries (a list) or queries_path (a file)")
        return self


class IndexInput(ToolInput):
    collection: str = Collection
    input_path: str | None = Field(None, min_length=1, description="Server-side path of a JSONL corpus (_id, title, "
                                   "text). Omit with sparse_only.")
    vectors_path: str | None = Field(None, description="Server-side .npy of precomputed vectors from the same "
                                     "retriever, one row per corpus line: skips embedding.")
    sparse_only: bool = Field(False, description="Only (re)write the BM25 sparse vectors from the points' payload "
                                                 "text (for a collection built by another tool).")
    vector_name: str | None = VectorName


TRAIN_ARGUMENTS = ("limit", "context_limit", "confidence_margin", "epochs")


def _train_fields() -> dict[str, Any]:
    """TrainSettings' fields, optional: omitted means TrainSettings' own default."""
    out: dict[str, Any] = {}
    for name in TRAIN_ARGUMENTS:
        f = TrainSettings.model_fields[name]
        ann = Annotated[f.annotation | None, *f.metadata]  # type: ignore[name-defined]
        out[name] = (ann, Field(None, description=f"{f.description} Default {f.default}."))
    return out


class _CalibrateBase(QueriesInput):
    collection: str = Collection
    queries: list[str] | None = Field(None, max_length=1000, description="50-200 real, representative user "
                                      "queries (not synthetic). Give these or queries_path.")
    queries_path: str | None = Field(None, description="Server-side file of queries: JSONL (_id, text) or one per line.")
    max_queries: int | None = Field(None, ge=1, le=1000, description="Use at most this many queries.")
    max_feedback_scores: int | None = Field(None, ge=1, description="Refuse if queries x limit exceeds this "
                                            "(a cost cap for slow or paid feedback models such as an LLM judge).")
    vector_name: str | None = VectorName

    def train_settings(self) -> TrainSettings:
        given = {k: getattr(self, k) for k in TRAIN_ARGUMENTS if getattr(self, k) is not None}
        return TrainSettings(**given)


CalibrateInput = create_model("CalibrateInput", __base__=_CalibrateBase, **_train_fields())


class EvalQuery(ToolInput):
    id: str | None = Field(None, max_length=255, description="Query id, as in the qrels file (needed for ground truth).")
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
    limit: int | None = Field(None, ge=1, le=100, description="Results to return (default: the server's [search] "
                                                              "limit).")
    seeds: int | None = Field(None, ge=2, le=20, description="Top ANN results scored as seeds (default: the server's "
                                                             "[search] seeds, 5 as the guide advises).")
    vanilla: bool = Field(False, description="Plain vector search through the RF API (a=1, b=0, c=0): no "
                                             "calibration needed, no feedback used.")
    vector_name: str | None = VectorName


class RecallInput(ToolInput):
    collection: str = Collection
    query: str = QueryText
    budget: int | None = Field(None, ge=1, le=200, description="New RF results to score: total cost = seeds + budget "
                                                               "(default: the server's [search] recall_budget).")
    limit: int | None = Field(None, ge=1, le=220, description="Results to return (default: all scored).")
    seeds: int | None = Field(None, ge=2, le=20, description="ANN seeds when seed_ids is not given (default: the "
                                                             "server's [search] seeds).")
    seed_ids: list[int | str] | None = Field(None, min_length=2, max_length=20,
                                             description="Point ids to use as seeds (e.g. results the user liked).")
    vector_name: str | None = VectorName


class RollbackInput(ToolInput):
    collection: str = Collection
    vector_name: str | None = VectorName


class CollectionsInput(ToolInput):
    collection: str | None = Field(None, max_length=255, description="One collection; omit for all.")
