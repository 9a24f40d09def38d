"""Typed inputs of the MCP tools (their outputs are the domain result models).

An omitted optional argument means "the server's configured default" (``[search]`` of the config for the search
sizes and the fusion, :class:`rf_mcp.ports.TrainSettings` for calibration, ``COLLECTION_NAME`` for the collection):
each default is defined once, there. Every input model forbids unknown arguments (``additionalProperties: false``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from rf_mcp.domain.models import TrainSettings
from rf_mcp.ports import Filter

Collection = Field(None, min_length=1, max_length=255, description="Qdrant collection (default: the server's).")
VectorName = Field(None, max_length=255, description='Dense vector (default: the configured one; "" = unnamed).')
QueryText = Field(min_length=1, max_length=4000, description="The user's information need, as text.")
FusionArg = Field(None, description='"sparse": RF fused with BM25 search; "none": dense only (default: the '
                                    "server's). Use the fusion you calibrated.")
FilterArg = Field(None, description='Payload filter (Qdrant\'s): {"must"|"should"|"must_not": [{"key": "year", '
                                    '"range": {"gte": 2010}}, {"key": "metadata.lang", "match": {"value": "en"}}]}; '
                                    'match takes "value", "any" or "except". Applies to seeds, RF and fusion.')
FusionMode = Literal["none", "sparse"]
ExactArg = Field(None, description="Exact search without the HNSW index (slow on large collections).")
HnswEfArg = Field(None, ge=16, le=100_000, description="HNSW search breadth (default: chosen from the collection and "
                                                       "the feedback).")


class ToolInput(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QueriesInput(ToolInput):
    """Inputs that take queries inline (``queries``), from a server-side file, or from the query log."""

    @model_validator(mode="after")
    def _one_source(self) -> QueriesInput:
        given = [getattr(self, "queries", None) is not None, getattr(self, "queries_path", None) is not None,
                 bool(getattr(self, "from_query_log", False))]
        if sum(given) != 1:
            raise ValueError("give exactly one of queries (a list), queries_path (a file) or from_query_log")
        return self


class IndexInput(ToolInput):
    collection: str | None = Collection
    input_path: str | None = Field(None, min_length=1, max_length=4096,
                                   description="Server-side JSONL corpus (_id, title, text), inside the server's "
                                               "data roots. Omit with sparse_only.")
    vectors_path: str | None = Field(None, max_length=4096, description="Server-side .npy of precomputed vectors "
                                     "from the same retriever, one row per corpus line: skips embedding.")
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


class CalibrateArgs(QueriesInput):
    collection: str | None = Collection
    queries: list[Annotated[str, Field(min_length=1, max_length=4000)]] | None = Field(
        None, max_length=1000, description="50-200 real, representative user queries (not synthetic).")
    queries_path: str | None = Field(None, max_length=4096, description="Server-side file of queries (JSONL _id, "
                                     "text; or one per line), inside the server's data roots.")
    from_query_log: bool = Field(False, description="Use the calibration part of the queries this server logged "
                                                    "([server] query_log).")
    max_queries: int | None = Field(None, ge=1, le=1000, description="Use at most this many queries.")
    max_feedback_scores: int | None = Field(None, ge=1, description="Refuse if queries x limit exceeds this "
                                            "(a cost cap for slow or paid feedback models such as an LLM judge).")
    fusion: FusionMode | None = FusionArg
    vector_name: str | None = VectorName

    def train_settings(self) -> TrainSettings:
        given = {k: getattr(self, k) for k in TRAIN_ARGUMENTS if getattr(self, k) is not None}
        return TrainSettings(**given)


CalibrateInput = create_model("CalibrateInput", __base__=CalibrateArgs, **_train_fields())


class EvalQuery(ToolInput):
    id: str | None = Field(None, max_length=255, description="Query id, as in the qrels file (needed for ground truth).")
    text: str = QueryText


class EvaluateInput(QueriesInput):
    collection: str | None = Collection
    queries: list[EvalQuery] | None = Field(None, max_length=2000, description="Held-out queries (not the "
                                            "calibration ones).")
    queries_path: str | None = Field(None, max_length=4096, description="Server-side JSONL of queries (_id, text).")
    from_query_log: bool = Field(False, description="Use the held-out part of the logged queries (no judgments).")
    qrels_path: str | None = Field(None, max_length=4096, description="Server-side BEIR qrels TSV: adds nDCG/recall "
                                   "and the ground-truth gate.")
    max_queries: int | None = Field(None, ge=1, le=2000)
    at_n: int = Field(10, ge=1, le=100, description="Cut-off of the library's metrics.")
    fusion: FusionMode | None = FusionArg
    vector_name: str | None = VectorName


class PrecisionInput(ToolInput):
    collection: str | None = Collection
    query: str = QueryText
    limit: int | None = Field(None, ge=1, le=100, description="Results to return (default: the server's).")
    seeds: int | None = Field(None, ge=2, le=20, description="Seeds scored (default: the server's, 5).")
    vanilla: bool = Field(False, description="No feedback, no calibration needed: plain vector search (fusion "
                                             "none) or plain hybrid search (fusion sparse).")
    fusion: FusionMode | None = FusionArg
    filter: Filter | None = FilterArg
    vector_name: str | None = VectorName
    exact: bool | None = ExactArg
    hnsw_ef: int | None = HnswEfArg


SeedId = int | Annotated[str, Field(min_length=1, max_length=255)]  # smart union: "12074066" stays a string (a doc_id)


class RecallInput(ToolInput):
    collection: str | None = Collection
    query: str = QueryText
    budget: int | None = Field(None, ge=1, le=200, description="New RF results to score: cost = seeds + budget "
                                                               "(default: the server's, 20).")
    limit: int | None = Field(None, ge=1, le=220, description="Results to return (default: all scored).")
    seeds: int | None = Field(None, ge=2, le=20, description="ANN seeds when seed_ids is not given.")
    seed_ids: list[SeedId] | None = Field(None, min_length=2, max_length=20,
                                          description="Seeds you choose: the id or doc_id of hits (e.g. ones the user "
                                                      "liked).")
    fusion: FusionMode | None = FusionArg
    filter: Filter | None = FilterArg
    vector_name: str | None = VectorName
    exact: bool | None = ExactArg
    hnsw_ef: int | None = HnswEfArg


class RollbackInput(ToolInput):
    collection: str | None = Collection
    fusion: FusionMode | None = FusionArg
    vector_name: str | None = VectorName


class CollectionsInput(ToolInput):
    collection: str | None = Field(None, min_length=1, max_length=255, description="One collection; omit for all.")
