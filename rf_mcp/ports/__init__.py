"""The seams the domain owns: what an engine, a retriever, a sparse encoder, a feedback model and a trainer
must provide, and the types they exchange, one module per concern: :mod:`.queries` (query shapes,
filters, points), :mod:`.engine`, :mod:`.models` (retriever, sparse encoder, scorers) and :mod:`.training`.

This package imports nothing concrete (no qdrant-client, no qdrant-edge, no model runtime). The adapters
implement these ports; :mod:`rf_mcp.factory` is the only place that picks and builds them.

* :class:`Engine`: a Qdrant engine. ``ClientEngine`` (qdrant-client, embedded or a server), ``EdgeEngine``
  (qdrant-edge, embedded Rust engine) and ``MemoryEngine`` (the in-memory test double) implement it, and the
  congruence tests hold them to the same results.
* :class:`Retriever`: the dense embedding model that built the collection.
* :class:`SparseEncoder`: the lexical analyzer behind the BM25 sparse vectors.
* :class:`Scorer`: the feedback model (higher score = more relevant).
* :class:`Trainer`: fits the formula weights (the training library, or the all-pairs objective).

Queries follow Qdrant's Query API: one :class:`QueryRequest` holds a :data:`Query` (nearest, sparse, relevance
feedback, or an RRF fusion of prefetches), a :class:`Filter`, a limit and search parameters, so every engine
receives the same request shape.
"""

from rf_mcp.ports.engine import Engine
from rf_mcp.ports.models import GradeReplyError, Retriever, SampledScorer, Scorer, SparseEncoder, TermStatistics, TermStats
from rf_mcp.ports.queries import (
    HNSW_M,
    RRF_K,
    CollectionInfo,
    CollectionSpec,
    Distance,
    FeedbackItem,
    FieldCondition,
    Filter,
    Fusion,
    HasId,
    Match,
    Nearest,
    Point,
    PointId,
    PointInput,
    Prefetch,
    Progress,
    Query,
    QueryRequest,
    Range,
    RelevanceFeedback,
    Rescore,
    SearchParams,
    SparseNearest,
    SparseVector,
    VectorInfo,
    Weights3,
)
from rf_mcp.ports.training import LibraryEvaluation, SkippedQuery, Trainer, TrainingJob, TrainingOutcome, TrainSettings

__all__ = [
    "HNSW_M",
    "RRF_K",
    "CollectionInfo",
    "CollectionSpec",
    "Distance",
    "Engine",
    "FeedbackItem",
    "FieldCondition",
    "Filter",
    "Fusion",
    "GradeReplyError",
    "HasId",
    "LibraryEvaluation",
    "Match",
    "Nearest",
    "Point",
    "PointId",
    "PointInput",
    "Prefetch",
    "Progress",
    "Query",
    "QueryRequest",
    "Range",
    "RelevanceFeedback",
    "Rescore",
    "Retriever",
    "SampledScorer",
    "Scorer",
    "SearchParams",
    "SkippedQuery",
    "SparseEncoder",
    "SparseNearest",
    "SparseVector",
    "TermStatistics",
    "TermStats",
    "TrainSettings",
    "Trainer",
    "TrainingJob",
    "TrainingOutcome",
    "VectorInfo",
    "Weights3",
]
