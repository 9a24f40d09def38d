"""The seams the domain owns: what an engine, a retriever, a sparse encoder, a feedback model and a trainer
must provide, and the types they exchange.

This module imports nothing concrete (no qdrant-client, no qdrant-edge, no model runtime). The adapters
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

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator

__all__ = [
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
    "Retriever",
    "SampledScorer",
    "Scorer",
    "SearchParams",
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

PointId = int | str
"""A Qdrant point id: an unsigned integer or a UUID string."""

Distance = Literal["Cosine", "Dot", "Euclid", "Manhattan"]
Weights3 = tuple[float, float, float]
"""The naive strategy's a, b, c."""

Progress = Callable[[float, float, str], Awaitable[None]]
"""``progress(done, total, message)``: reports long operations (MCP progress notifications, CLI lines)."""


# -- BM25 term statistics, maintained by the index path ------------------------
@dataclass(frozen=True)
class TermStatistics:
    """A collection's term statistics over a sparse encoder's term ids, kept current by the index path."""

    revision: str
    """Changes with every write of the statistics: anything derived under another revision is stale."""
    encoder: str
    """The identity of the sparse encoder (so of the analyzer) whose term ids these are."""
    documents: int
    total_length: int
    """Terms in all documents together (the average document length is ``total_length / documents``)."""
    frequencies: Callable[[], tuple[np.ndarray, np.ndarray]]
    """Decodes (sorted term ids, their document frequencies): O(terms), so call it for a new revision only."""


TermStats = Callable[[], Awaitable[TermStatistics | None]]
"""Reads a collection's stored term statistics (one metadata read; None when the collection has none)."""

RRF_K = 2
"""Qdrant's reciprocal-rank-fusion constant: score = sum over prefetches of 1 / (rank + RRF_K), rank from 0."""


# -- collections --------------------------------------------------------------------------------------------
class VectorInfo(BaseModel):
    """One vector of a collection, as the engine reports it."""

    name: str = Field(description='Vector name ("" for the unnamed default vector).')
    kind: Literal["dense", "sparse", "multi"]
    dim: int | None = None
    distance: str | None = None
    modifier: Literal["idf"] | None = Field(None, description="Sparse vectors: the engine applies IDF at query time.")


class CollectionInfo(BaseModel):
    name: str
    points_count: int
    vectors: list[VectorInfo]
    indexed_vectors: int | None = Field(None, description="Vectors in an HNSW index (exact search for the rest).")
    payload_indexes: list[str] = Field(default_factory=list, description="Payload keys with an index.")

    def vector(self, name: str) -> VectorInfo | None:
        return next((v for v in self.vectors if v.name == name), None)


@dataclass(frozen=True, slots=True)
class CollectionSpec:
    """What ``create_collection`` makes: one dense vector and optional BM25 sparse vectors (IDF modifier)."""

    vector_name: str
    dim: int
    distance: Distance = "Cosine"
    sparse: tuple[str, ...] = ()


# -- points -------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SparseVector:
    indices: tuple[int, ...]
    values: tuple[float, ...]


@dataclass(slots=True)
class Point:
    """A point as returned by queries, retrieval and scrolling."""

    id: PointId
    score: float = 0.0
    payload: dict[str, Any] = field(default_factory=dict)
    vector: list[float] | None = None  # the dense vector asked for with ``with_vector``


@dataclass(frozen=True, slots=True)
class PointInput:
    """A point to write: named vectors (dense lists or sparse vectors) and, for upserts, its payload."""

    id: PointId
    vectors: Mapping[str, Sequence[float] | SparseVector]
    payload: dict[str, Any] | None = None


# -- filters (Qdrant's filter language, the subset agents use) ----------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Scalar = Annotated[StrictStr | StrictBool | Annotated[StrictInt, Field(ge=-(2**63), lt=2**63)],
                   Field(union_mode="left_to_right")]
"""A match value as JSON gives it: true stays a boolean (not 1), 1 stays a number (not true); integers are Qdrant's
64-bit ones."""
Bound = Annotated[float, Field(strict=True, allow_inf_nan=False)]
"""A range bound: a finite number (not true, not "2003")."""


class Match(_Strict):
    """Exactly one of ``value`` (equals), ``any`` (one of) or ``except`` (none of)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    value: Scalar | None = None
    any: list[Scalar] | None = Field(None, min_length=1, max_length=1000)
    except_: list[Scalar] | None = Field(None, alias="except", min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _one(self) -> Match:
        if sum(x is not None for x in (self.value, self.any, self.except_)) != 1:
            raise ValueError('a match needs exactly one of "value", "any" or "except"')
        for values in (self.any, self.except_):  # Qdrant matches lists of keywords or of integers, one kind per list
            if values and any(isinstance(v, bool) for v in values):
                raise ValueError('"any" and "except" take strings or integers: match a boolean with "value"')
            if values and len({type(v) for v in values}) > 1:
                raise ValueError('the values of "any" and "except" must be all strings or all integers: use one '
                                 'list per kind in a "should" of two conditions')
        return self


class Range(_Strict):
    gt: Bound | None = None
    gte: Bound | None = None
    lt: Bound | None = None
    lte: Bound | None = None

    @model_validator(mode="after")
    def _bounded(self) -> Range:
        if all(x is None for x in (self.gt, self.gte, self.lt, self.lte)):
            raise ValueError('a range needs at least one of "gt", "gte", "lt", "lte"')
        return self


class FieldCondition(_Strict):
    """A condition on a payload key (a dotted path such as ``metadata.year``)."""

    key: str = Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")
    match: Match | None = None
    range: Range | None = None

    @model_validator(mode="after")
    def _one(self) -> FieldCondition:
        if (self.match is None) == (self.range is None):
            raise ValueError(f'the condition on "{self.key}" needs exactly one of "match" or "range"')
        return self


class HasId(_Strict):
    has_id: list[PointId] = Field(min_length=1, max_length=10_000)


Condition = Union[FieldCondition, HasId, "Filter"]


class Filter(_Strict):
    """Qdrant's boolean filter: every ``must``, at least one ``should`` (if any), no ``must_not``."""

    must: list[Condition] = Field(default_factory=list, max_length=64)
    should: list[Condition] = Field(default_factory=list, max_length=64)
    must_not: list[Condition] = Field(default_factory=list, max_length=64)

    def is_empty(self) -> bool:
        return not (self.must or self.should or self.must_not)

    def keys(self) -> set[str]:
        """Every payload key the filter reads."""
        return {cond.key for cond in self.field_conditions()}

    def field_conditions(self) -> list[FieldCondition]:
        """Every condition on a payload key, nested filters included."""
        out: list[FieldCondition] = []
        for cond in (*self.must, *self.should, *self.must_not):
            if isinstance(cond, FieldCondition):
                out.append(cond)
            elif isinstance(cond, Filter):
                out += cond.field_conditions()
        return out

    @staticmethod
    def combine(base: Filter | None, *, exclude: Sequence[PointId] = ()) -> Filter | None:
        """``base`` with the given point ids excluded (None when there is nothing to filter)."""
        if not exclude:
            return None if base is None or base.is_empty() else base
        excluded = HasId(has_id=list(exclude))
        if base is None or base.is_empty():
            return Filter(must_not=[excluded])
        return Filter(must=[base], must_not=[excluded])


Filter.model_rebuild()


# -- queries ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Nearest:
    vector: Sequence[float]
    using: str


@dataclass(frozen=True, slots=True)
class SparseNearest:
    vector: SparseVector
    using: str


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    """A feedback example (a point id, or a vector in the collection's space) and its feedback score."""

    example: PointId | Sequence[float]
    score: float


@dataclass(frozen=True, slots=True)
class RelevanceFeedback:
    """Qdrant's RelevanceFeedbackQuery with the naive strategy. Point-id examples are left out of the results."""

    target: Sequence[float]
    feedback: Sequence[FeedbackItem]
    weights: Weights3
    using: str


@dataclass(frozen=True, slots=True)
class Prefetch:
    query: Nearest | SparseNearest | RelevanceFeedback
    limit: int
    filter: Filter | None = None


@dataclass(frozen=True, slots=True)
class Fusion:
    """Reciprocal rank fusion (k = :data:`RRF_K`) of the prefetches' results."""

    prefetch: tuple[Prefetch, ...]


Query = Nearest | SparseNearest | RelevanceFeedback | Fusion


@dataclass(frozen=True, slots=True)
class SearchParams:
    hnsw_ef: int | None = None
    exact: bool = False


@dataclass(frozen=True, slots=True)
class QueryRequest:
    query: Query
    limit: int
    filter: Filter | None = None
    with_vector: str | None = None  # return this dense vector with each point
    params: SearchParams | None = None


# -- the engine port ----------------------------------------------------------------------------------------
class Engine(ABC):
    """A Qdrant engine. Every method is async; blocking engines run their calls in worker threads.

    Errors: a missing collection is an ``InputError`` naming the existing ones; anything the engine rejects is an
    ``EngineError`` (never a raw exception of the underlying library).
    """

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the data lives, safe to show (no credentials)."""

    @abstractmethod
    async def list_collections(self) -> list[str]: ...

    @abstractmethod
    async def exists(self, collection: str) -> bool: ...

    @abstractmethod
    async def describe(self, collection: str) -> CollectionInfo: ...

    @abstractmethod
    async def create_collection(self, collection: str, spec: CollectionSpec) -> None:
        """Create a collection; refuses (``InputError``) if it, or data under its name, already exists."""

    @abstractmethod
    async def add_sparse_vector(self, collection: str, name: str) -> None:
        """Declare a BM25 sparse vector (IDF modifier) on an existing collection."""

    @abstractmethod
    async def upsert(self, collection: str, points: Sequence[PointInput]) -> None: ...

    @abstractmethod
    async def update_vectors(self, collection: str, points: Sequence[PointInput]) -> None:
        """Add or replace the given named vectors of existing points (their payload is kept)."""

    @abstractmethod
    async def count(self, collection: str) -> int: ...

    @abstractmethod
    async def query(self, collection: str, request: QueryRequest) -> list[Point]: ...

    @abstractmethod
    async def retrieve(self, collection: str, ids: Sequence[PointId], *, with_vector: str | None = None) -> list[Point]:
        """The points with these ids that exist (in no particular order)."""

    @abstractmethod
    async def scroll(self, collection: str, *, offset: PointId | None = None, limit: int = 256,
                     with_vector: str | None = None, filter: Filter | None = None) -> tuple[list[Point], PointId | None]:
        """One page of points (matching ``filter``) and the offset of the next page (None at the end)."""

    @abstractmethod
    async def create_payload_index(self, collection: str, key: str,
                                   schema: Literal["keyword", "integer", "float", "bool"]) -> None: ...

    @abstractmethod
    async def optimize(self, collection: str) -> bool:
        """Build the HNSW index now, where the engine leaves that to the caller (False: nothing to do)."""

    @abstractmethod
    async def get_metadata(self, collection: str) -> dict[str, Any]: ...

    @abstractmethod
    async def set_metadata(self, collection: str, entries: dict[str, Any]) -> None:
        """Merge top-level keys into the collection's metadata; a key set to None is removed."""

    @abstractmethod
    async def close(self) -> None: ...


# -- models -------------------------------------------------------------------------------------------------
class Retriever(ABC):
    """The dense embedding model of the collection. ``load`` must be awaited before ``identity``/``dim``."""

    @abstractmethod
    async def load(self) -> None:
        """Load the model (once); later calls return at once."""

    @property
    @abstractmethod
    def identity(self) -> str:
        """Stable identity (name and a file hash for local folders): part of the calibration fingerprint."""

    @property
    @abstractmethod
    def dim(self) -> int: ...

    @abstractmethod
    async def embed_query(self, text: str) -> np.ndarray: ...

    @abstractmethod
    async def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""


class SparseEncoder(ABC):
    """Turns text into BM25 sparse vectors: term weights for documents, unit weights for queries.

    The engine multiplies by the IDF (the sparse vector's IDF modifier), so the collection's statistics stay
    current as documents are added.
    """

    identity: str

    @abstractmethod
    def document_lengths(self, texts: Sequence[str]) -> list[int]:
        """Number of (analyzed) terms per document, for the average document length."""

    @abstractmethod
    def encode_documents(self, texts: Sequence[str], avgdl: float) -> list[SparseVector]: ...

    @abstractmethod
    def encode_query(self, text: str) -> SparseVector: ...


class Scorer(ABC):
    """A feedback model: scores (query, document) pairs, higher = more relevant.

    ``identity`` is stable and goes into the calibration fingerprint: any change to the model, its settings or
    its analyzer must change it, so weights fitted to another scorer are refused.
    """

    identity: str
    out_of_band: bool = False
    """True when grades arrive out of band (the MCP client's LLM): it cannot score on demand, so calibration and
    evaluation refuse it."""
    needs_term_stats: bool = False
    """True when ``bind`` reads the collection's stored term statistics: calibration counts them first if missing."""

    @abstractmethod
    async def score(self, query: str, documents: Sequence[str]) -> list[float]:
        """Relevance of each document to the query, in order."""

    async def bind(self, collection: str, term_stats: TermStats, version: int = 0) -> None:  # noqa: B027
        """Optional hook, called before scoring documents of ``collection`` (corpus statistics and the like).
        ``term_stats()`` reads the collection's stored term statistics (their ``revision`` says when they changed);
        ``version`` is the collection's point count."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release resources (HTTP clients, model sessions)."""


class GradeReplyError(ValueError):
    """A grader's reply cannot be used (not one JSON object, a missing or repeated id, a grade out of range...)."""


class SampledScorer(Scorer):
    """A feedback model graded out of band by the MCP client's own LLM (sampling).

    A search's plan stops for grades; the protocol layer asks the client with :meth:`prompt`, checks the reply with
    :meth:`parse` (asking again once with :meth:`retry_prompt`) and resumes the plan with them. :meth:`score` cannot
    grade (there is no client to ask) and says so.
    """

    out_of_band = True
    model: str
    system_prompt: str
    timeout: float
    """Seconds one grading round may take (the client's LLM answers in its own time)."""

    @abstractmethod
    def prompt(self, query: str, documents: Sequence[str]) -> str:
        """The user message asking for grades (identical across retry rounds)."""

    @abstractmethod
    def retry_prompt(self, error: str) -> str: ...

    @abstractmethod
    def parse(self, reply: str, n: int) -> list[float]:
        """Grades in document order, or :class:`GradeReplyError`."""

    @abstractmethod
    def max_tokens(self, n: int) -> int: ...


# -- training -------------------------------------------------------------------------------------------------
TrainLimit = Annotated[int, Field(ge=6, le=1000, description="Candidates retrieved and scored per training query: "
                                                          "the cost is queries x limit feedback-model scores.")]
ContextLimit = Annotated[int, Field(ge=2, le=50, description="Top candidates from which the context pair is mined.")]
ConfidenceMargin = Annotated[float, Field(ge=0.0, description="Minimum feedback-score gap for a context pair.")]
Epochs = Annotated[int, Field(ge=1, le=100_000, description="Training epochs (early stopping applies).")]
LearningRate = Annotated[float, Field(gt=0, le=1.0, description="Learning rate.")]
Patience = Annotated[int, Field(ge=1, description="Epochs without validation improvement before stopping.")]
MinDelta = Annotated[float, Field(ge=0, description="Minimum validation improvement.")]


class TrainSettings(BaseModel):
    """How the formula weights are fitted (the training library's ``train`` arguments)."""

    model_config = ConfigDict(frozen=True)

    limit: TrainLimit = 50
    context_limit: ContextLimit = 5
    confidence_margin: ConfidenceMargin = 0.0
    epochs: Epochs = 1000
    lr: LearningRate = 0.005
    patience: Patience = 200
    min_delta: MinDelta = 1e-6


@dataclass(frozen=True)
class TrainingJob:
    """Everything a trainer needs, as callables over the ports (the domain validates and counts the scores)."""

    collection: str
    vector_name: str
    distance: str
    embed: Callable[[str], Awaitable[np.ndarray]]
    candidates: Callable[[str, np.ndarray, int], Awaitable[list[Point]]]
    """``candidates(query, query_vector, limit)``: the search mode's seed source, best first, each point with its
    dense vector and, as its score, the retriever's similarity to the query."""
    nearest: Callable[[np.ndarray, int, Sequence[PointId]], Awaitable[list[Point]]]
    """``nearest(query_vector, limit, exclude)``: plain dense search, with vectors."""
    relevance_feedback: Callable[[np.ndarray, Sequence[FeedbackItem], Weights3, int], Awaitable[list[Point]]]
    score: Callable[[str, Sequence[str]], Awaitable[list[float]]]
    text: Callable[[dict[str, Any]], str]
    texts: Callable[[Sequence[Point]], Awaitable[list[str]]]
    """The candidates' texts (refuses with the payload keys seen when the configured text fields are all empty)."""
    progress: Progress | None = None


@dataclass(frozen=True)
class TrainingOutcome:
    weights: Weights3
    queries_with_pairs: int
    queries_disagreeing: int
    retriever_correlation: float | None
    library_reported: float | None = None
    """The disagreement the training library printed (a cross-check), when it is the trainer."""


@dataclass(frozen=True)
class LibraryEvaluation:
    """The training library's ``Evaluator`` view (agreement with the feedback model, not relevance)."""

    queries_kept: int
    rf_above_threshold: int
    vanilla_above_threshold: int
    relative_gain_pct: float
    dcg_rf_wins_pct: float
    dcg_vanilla_wins_pct: float
    dcg_ties_pct: float


class Trainer(ABC):
    identity: str

    @abstractmethod
    async def train(self, job: TrainingJob, queries: Sequence[str], settings: TrainSettings) -> TrainingOutcome: ...

    @abstractmethod
    async def evaluate(self, job: TrainingJob, queries: Sequence[str], weights: Weights3, at_n: int,
                       context_limit: int) -> LibraryEvaluation: ...
