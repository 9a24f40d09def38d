"""What engines exchange: Qdrant's query shapes (one :class:`QueryRequest` holds a :data:`Query`: nearest, sparse,
relevance feedback, or an RRF fusion of prefetches), its filter language, points and collection descriptions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator

PointId = int | str
"""A Qdrant point id: an unsigned integer or a UUID string."""

Distance = Literal["Cosine", "Dot", "Euclid", "Manhattan"]
Weights3 = tuple[float, float, float]
"""The naive strategy's a, b, c."""

Progress = Callable[[float, float, str], Awaitable[None]]
"""``progress(done, total, message)``: reports long operations (MCP progress notifications, CLI lines)."""


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


HNSW_M = 32
"""Links per point of the HNSW graph of a collection rf-mcp creates (Qdrant's default: 16). An RF query with a large
feedback pull ranks outlying points first, and a sparse graph leaves outlying points unreachable: a search for a
point's own vector fails to find it, at any breadth. Measured side by side on 1M clustered vectors by
``python -m benchmarks.hnsw_links`` (benchmarks/LATENCY.md): with 32, a quarter to a third as many unreachable points
and RF queries missing exact top-10 points (worst overlap@10 0.9 instead of 0.4), for 10% more build time and 13-27%
more time per large-pull RF query."""


@dataclass(frozen=True, slots=True)
class CollectionSpec:
    """What ``create_collection`` makes: one dense vector and optional BM25 sparse vectors (IDF modifier), with an
    HNSW graph of ``hnsw_m`` links per point."""

    vector_name: str
    dim: int
    distance: Distance = "Cosine"
    sparse: tuple[str, ...] = ()
    hnsw_m: int = HNSW_M


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
class SearchParams:
    hnsw_ef: int | None = None
    exact: bool = False


@dataclass(frozen=True, slots=True)
class Prefetch:
    """A candidate search under a query; ``params`` None: the request's search parameters."""

    query: Nearest | SparseNearest | RelevanceFeedback | Rescore
    limit: int
    filter: Filter | None = None
    params: SearchParams | None = None


@dataclass(frozen=True, slots=True)
class Fusion:
    """Reciprocal rank fusion (k = :data:`RRF_K`) of the prefetches' results."""

    prefetch: tuple[Prefetch, ...]


@dataclass(frozen=True, slots=True)
class Rescore:
    """``query`` scored exactly on the union of the prefetches' results (Qdrant's query over prefetches)."""

    query: RelevanceFeedback
    prefetch: tuple[Prefetch, ...]


Query = Nearest | SparseNearest | RelevanceFeedback | Fusion | Rescore


@dataclass(frozen=True, slots=True)
class QueryRequest:
    query: Query
    limit: int
    filter: Filter | None = None
    with_vector: str | None = None  # return this dense vector with each point
    params: SearchParams | None = None


