"""One request model per operation: every argument is declared here once, with its type, bounds, description and
where its default comes from.

The surfaces derive from these models: the MCP tools' input schemas (:mod:`rf_mcp.server.tools`), the CLI's flags
(:mod:`rf_mcp.cli`), the Python API (:class:`rf_mcp.RFService` builds the request from its keyword arguments) and the
``[search]`` defaults of the configuration (which reuse the argument types below, so a bound is stated once).
``tests/unit/test_requests.py`` walks every field of every operation on every surface.

An argument left out (``None``) means "the configured default": :func:`with_defaults` fills it from the config key its
:class:`ConfigDefault` names. :class:`Surfaces` marks the few arguments that exist on some surfaces only (a qrels
mapping cannot travel as a CLI flag; a progress callback is not an argument at all).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo

from rf_mcp.errors import InputError
from rf_mcp.ports import Filter, TrainSettings
from rf_mcp.ports.training import ConfidenceMargin, ContextLimit, Epochs, LearningRate, MinDelta, Patience, TrainLimit

__all__ = [
    "AddDocumentsRequest", "CalibrateRequest", "CollectionsRequest", "ConfigDefault", "DeleteDocumentsRequest",
    "Document", "EvalQuery", "EvaluateRequest", "IndexRequest", "PrecisionRequest", "RecallRequest", "Request",
    "RollbackRequest", "SearchRequest", "Surfaces", "config_default", "description", "filter_bounds", "parse",
    "surfaces", "with_defaults",
]


@dataclass(frozen=True)
class ConfigDefault:
    """Field metadata: an omitted value is the config's ``section.key``."""

    path: str


@dataclass(frozen=True)
class Surfaces:
    """Field metadata: the surfaces an argument appears on (all three unless marked)."""

    mcp: bool = True
    cli: bool = True


# -- argument types, shared with the config's defaults ---------------------------------------------------------
FusionMode = Literal["none", "sparse"]
QueryText = Annotated[str, Field(min_length=1, max_length=4000, description="The user's information need, as text.")]
CollectionName = Annotated[str, Field(min_length=1, max_length=255)]
Path = Annotated[str, Field(min_length=1, max_length=4096)]
Seeds = Annotated[int, Field(ge=2, le=20, description="Seed documents scored per search (guide: 5).")]
Limit = Annotated[int, Field(ge=1, le=100, description="Results to return.")]
Budget = Annotated[int, Field(ge=1, le=200, description="New RF results to score in a recall search: cost = seeds + "
                                                        "budget.")]
HnswEf = Annotated[int, Field(ge=16, le=100_000, description="HNSW search breadth (default: chosen from the collection "
                                                             "and the feedback).")]
SeedId = int | Annotated[str, Field(min_length=1, max_length=255)]  # smart union: "12074066" stays a string (a doc_id)

_COLLECTION = "Default: the server's collection."
_VECTOR = 'Dense vector (default: configured; "" = unnamed).'
_FUSION = '"sparse": with BM25; "none": dense only (default: the server\'s).'
_FILTER = ('Qdrant payload filter: {"must"|"should"|"must_not": [{"key": "year", "range": {"gte": 2010}}, '
           '{"key": "lang", "match": {"value": "en"}}]}; match: value, any or except.')


# -- what one filter may ask of the engine (checked before it is parsed, so a hostile one costs nothing) -------------
MAX_FILTER_DEPTH = 4
"""Filter levels at most: the top filter is level 1, a filter given as a condition one level more."""
MAX_FILTER_CONDITIONS = 256
"""Conditions at most, all levels together (the lists themselves hold at most 64 each)."""
MAX_FILTER_VALUES = 10_000
"""Values of "any" / "except" matches and "has_id" lists at most, all conditions together."""
MAX_FILTER_BYTES = 256 * 1024
"""The filter's JSON at most."""
_CLAUSES = ("must", "should", "must_not")


def filter_bounds(raw: Any) -> None:
    """Refuse (ValueError naming the bound) a filter over :data:`MAX_FILTER_DEPTH`, :data:`MAX_FILTER_CONDITIONS`,
    :data:`MAX_FILTER_VALUES` or :data:`MAX_FILTER_BYTES`; walks the raw JSON (or a built filter) iteratively, never
    past the bounds."""
    if isinstance(raw, BaseModel):
        raw = raw.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
    if not isinstance(raw, dict):
        return  # not a filter at all: the model says so
    conditions = values = 0
    stack: list[tuple[dict[str, Any], int]] = [(raw, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_FILTER_DEPTH:
            raise ValueError(f"the filter nests deeper than {MAX_FILTER_DEPTH} levels (a filter given as a condition "
                             "is one level more): flatten it")
        for clause in _CLAUSES:
            items = node.get(clause)
            for cond in items if isinstance(items, list) else ():
                conditions += 1
                if conditions > MAX_FILTER_CONDITIONS:
                    raise ValueError(f"the filter has more than {MAX_FILTER_CONDITIONS} conditions (all levels "
                                     "together): use fewer, or one \"any\" match for many values")
                if not isinstance(cond, dict):
                    continue
                if any(c in cond for c in _CLAUSES):
                    stack.append((cond, depth + 1))
                match, ids = cond.get("match"), cond.get("has_id")
                for listed in ([match.get("any"), match.get("except")] if isinstance(match, dict) else []) + [ids]:
                    values += len(listed) if isinstance(listed, list) else 0
                if values > MAX_FILTER_VALUES:
                    raise ValueError(f"the filter lists more than {MAX_FILTER_VALUES} values (\"any\", \"except\" and "
                                     "\"has_id\" together): narrow it")
    size = len(json.dumps(raw, default=str, ensure_ascii=False).encode())
    if size > MAX_FILTER_BYTES:
        raise ValueError(f"the filter is {size} bytes of JSON, over {MAX_FILTER_BYTES}: shorten it")


class Request(BaseModel):
    """An operation's arguments: unknown ones are refused, and a request never changes once built."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CollectionArgs(Request):
    collection: Annotated[CollectionName | None, ConfigDefault("collection.default_collection")] = Field(
        None, description=_COLLECTION)


AllowForeign = Annotated[bool, Field(description="Write into another tool's collection.")]
"""Operations that write into an existing collection refuse one rf-mcp did not create unless this is true."""


class TargetArgs(CollectionArgs):
    vector_name: Annotated[str | None, ConfigDefault("collection.vector_name")] = Field(
        None, max_length=255, description=_VECTOR)


class FusionArgs(TargetArgs):
    fusion: Annotated[FusionMode | None, ConfigDefault("search.fusion")] = Field(None, description=_FUSION)


class SearchRequest(FusionArgs):
    """What both search patterns take."""

    query: QueryText
    seeds: Annotated[Seeds | None, ConfigDefault("search.seeds")] = Field(
        None, description="Seeds scored (default: the server's, 5).")
    filter: Filter | None = Field(None, description=_FILTER)
    exact: Annotated[bool | None, ConfigDefault("search.exact")] = Field(
        None, description="Exact search, no HNSW index (slow on large collections).")
    hnsw_ef: Annotated[HnswEf | None, ConfigDefault("search.hnsw_ef")] = Field(
        None, description="HNSW search breadth (default: chosen per query).")

    @field_validator("filter", mode="before")
    @classmethod
    def _bounded_filter(cls, value: Any) -> Any:
        filter_bounds(value)
        return value


class PrecisionRequest(SearchRequest):
    limit: Annotated[Limit | None, ConfigDefault("search.limit")] = Field(
        None, description="Results to return (default: the server's).")
    vanilla: bool = Field(False, description="No feedback: plain (fusion none) or hybrid (sparse) search.")


class RecallRequest(SearchRequest):
    budget: Annotated[Budget | None, ConfigDefault("search.recall_budget")] = Field(
        None, description="New RF results to score (cost: seeds + budget; default 20).")
    limit: int | None = Field(None, ge=1, le=220, description="Results to return (default: all scored).")
    seed_ids: list[SeedId] | None = Field(None, min_length=2, max_length=20, description=(
        "Seeds you choose: ids or doc_ids of hits (default: the top results)."))


class QueriesArgs(FusionArgs):
    """Operations that read queries: inline, from a server-side file, or from the query log (exactly one)."""

    queries_path: Path | None = Field(
        None, description="Server-side queries file in a data root (JSONL or one per line).")
    from_query_log: bool = Field(False, description="Use this server's logged queries (train or held-out part).")
    query_ids: Annotated[list[Annotated[str, Field(max_length=255)]] | None, Surfaces(mcp=False)] = Field(
        None, max_length=100_000, description="Keep only the queries of the file with these ids.")

    @model_validator(mode="after")
    def _one_source(self) -> QueriesArgs:
        given = [getattr(self, "queries", None) is not None, self.queries_path is not None, self.from_query_log]
        if sum(given) != 1:
            raise ValueError("give exactly one of queries (a list), queries_path (a file) or from_query_log")
        return self


_CLI_ONLY = Surfaces(mcp=False)
_INLINE = Surfaces(cli=False)  # the CLI reads queries from files


class CalibrateRequest(QueriesArgs):
    queries: Annotated[list[Annotated[str, Field(min_length=1, max_length=4000)]] | None, _INLINE] = Field(
        None, max_length=1000, description="50-200 real, representative user queries (not synthetic).")
    max_queries: int | None = Field(None, ge=1, le=1000, description="Use at most this many queries.")
    max_feedback_scores: int | None = Field(None, ge=1, description="Refuse if queries x limit exceeds this (a cost "
                                            "cap).")
    # the training settings (TrainSettings declares them; omitted: its default)
    limit: TrainLimit | None = None
    context_limit: ContextLimit | None = None
    confidence_margin: ConfidenceMargin | None = None
    epochs: Epochs | None = None
    lr: Annotated[LearningRate | None, _CLI_ONLY] = None
    patience: Annotated[Patience | None, _CLI_ONLY] = None
    min_delta: Annotated[MinDelta | None, _CLI_ONLY] = None


def train_settings(request: CalibrateRequest) -> TrainSettings:
    """The training settings a calibrate request asks for (TrainSettings' defaults for the rest)."""
    given = {k: getattr(request, k) for k in TrainSettings.model_fields if getattr(request, k) is not None}
    return TrainSettings(**given)


class EvalQuery(Request):
    id: str | None = Field(None, max_length=255, description="Its id in the qrels file (for ground truth).")
    text: QueryText


class EvaluateRequest(QueriesArgs):
    queries: Annotated[list[EvalQuery] | None, _INLINE] = Field(
        None, max_length=2000, description="Held-out queries (not the calibration ones).")
    qrels_path: Path | None = Field(
        None, description="Server-side BEIR qrels TSV: adds nDCG/recall and the gate.")
    qrels: Annotated[dict[str, dict[str, int]] | None, Surfaces(mcp=False, cli=False)] = Field(
        None, description="Relevance judgments: query id -> document id -> grade.")
    max_queries: int | None = Field(None, ge=1, le=2000, description="Use at most this many queries.")
    at_n: int = Field(10, ge=1, le=100, description="Cut-off of the library's metrics.")
    eval_context_limit: Annotated[int, Surfaces(mcp=False)] = Field(
        3, ge=2, le=20, description="Top candidates the library's evaluator mines context pairs from.")
    store: Annotated[bool | None, Surfaces(mcp=False)] = Field(
        None, description="Store the verdict in the profile (default: unless the server is read-only).")
    replace: bool = Field(False, description="Store it even over a verdict on more judged queries.")


class IndexRequest(TargetArgs):
    input_path: Path | None = Field(
        None, description="Server-side JSONL corpus (_id, title, text) in a data root. Omit with sparse_only.")
    vectors_path: Path | None = Field(
        None, description="Server-side .npy of this retriever's vectors, a row per corpus line.")
    sparse_only: bool = Field(False, description="Only (re)write BM25 sparse vectors and statistics from the stored "
                                                 "text.")
    allow_foreign: AllowForeign = False
    build_index: Annotated[bool, Surfaces(mcp=False, cli=False)] = Field(
        False, description="Build the HNSW index once the collection reaches [qdrant] hnsw_threshold points.")


MAX_DOCUMENTS = 100
"""Documents one add_documents or delete_documents call takes."""
MAX_TEXT_CHARS = 20_000
"""Characters of one document's text."""
MAX_METADATA_CHARS = 10_000
"""Characters of one document's metadata, as compact JSON."""
MAX_TOTAL_CHARS = 1_000_000
"""Characters of one add_documents call: every document's text, title and metadata (JSON) together."""


class Document(Request):
    # One document to add, as mcp-server-qdrant's qdrant-store takes it (text and a metadata object), plus its id.
    id: str = Field(min_length=1, max_length=255, description="Its doc_id (an id added again is replaced).")
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS, description="At most 20,000 characters.")
    title: str | None = Field(None, max_length=1000)
    metadata: dict[str, Any] | None = Field(None, description='JSON object, stored as "metadata" (filter: '
                                                              "metadata.<key>).")

    @model_validator(mode="after")
    def _checked(self) -> Document:
        if not self.id.strip() or not self.text.strip():
            raise ValueError("id and text must not be blank")
        if self.metadata is not None:
            try:
                encoded = json.dumps(self.metadata, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
                encoded.encode("utf-8")  # a lone surrogate is not text
                size = len(encoded)
            except (TypeError, ValueError, RecursionError):
                raise ValueError("metadata must be a JSON object of text, finite numbers, booleans, null, lists and "
                                 "objects") from None
            if size > MAX_METADATA_CHARS:
                raise ValueError(f"metadata takes {size} characters as JSON, more than {MAX_METADATA_CHARS:,}")
        return self

    @property
    def size(self) -> int:
        """Characters this document adds to a call's total."""
        meta = 0 if self.metadata is None else len(json.dumps(self.metadata, separators=(",", ":")))
        return len(self.text) + len(self.title or "") + meta


class AddDocumentsRequest(CollectionArgs):
    # no vector_name: documents are embedded by this server's retriever, into the vector configured for it
    documents: list[Document] = Field(
        min_length=1, max_length=MAX_DOCUMENTS,
        description="1-100 documents, 1,000,000 characters in all.")
    allow_foreign: AllowForeign = False

    @model_validator(mode="after")
    def _bounded(self) -> AddDocumentsRequest:
        total = sum(d.size for d in self.documents)
        if total > MAX_TOTAL_CHARS:
            raise ValueError(f"the documents take {total:,} characters, more than {MAX_TOTAL_CHARS:,} per call: "
                             "send them in smaller calls")
        counts = Counter(d.id for d in self.documents)
        repeated = sorted(i for i, n in counts.items() if n > 1)
        if repeated:
            raise ValueError(f"document ids given more than once: {[r[:40] for r in repeated[:5]]}")
        return self


class DeleteDocumentsRequest(CollectionArgs):
    ids: list[SeedId] = Field(min_length=1, max_length=MAX_DOCUMENTS, description="1-100 doc_ids or point ids.")
    allow_foreign: AllowForeign = False


class RollbackRequest(FusionArgs):
    pass


class CollectionsRequest(Request):
    collection: CollectionName | None = Field(None, description="One collection; omit for all.")


# -- helpers ----------------------------------------------------------------------------------------------------
R = TypeVar("R", bound=Request)


def describe(exc: ValidationError, limit: int = 5) -> str:
    """A validation error as one line naming each bad argument (the same words on every surface)."""
    parts = []
    for err in exc.errors()[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "arguments"
        msg = "unknown argument" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{where}: {msg}")
    more = f" (and {len(exc.errors()) - limit} more)" if len(exc.errors()) > limit else ""
    return "Invalid arguments: " + "; ".join(parts) + more + "."


def parse(model: type[R], data: Any) -> R:
    """``data`` (a mapping of arguments) as a request, or one :class:`InputError` naming every bad argument."""
    if isinstance(data, model):
        return data
    if data is not None and not isinstance(data, dict):
        raise InputError("Invalid arguments: they must be a JSON object.", fix="Pass the arguments as an object.")
    try:
        return model.model_validate(data or {})
    except ValidationError as exc:
        raise InputError(describe(exc), fix="Correct them as the tool's input schema describes.") from None


def _marker(field: FieldInfo, cls: type[Any]) -> Any:
    return next((m for m in field.metadata if isinstance(m, cls)), None)


def config_default(field: FieldInfo) -> str | None:
    """The config key (``section.key``) an omitted argument defaults to, if any."""
    marker = _marker(field, ConfigDefault)
    return None if marker is None else str(marker.path)


def description(field: FieldInfo) -> str | None:
    """A field's description, or that of the argument type it is declared with (``Annotated[..., Field(...)]``)."""
    if field.description:
        return field.description
    import typing

    for arg in typing.get_args(field.annotation):
        for meta in typing.get_args(arg)[1:] if typing.get_origin(arg) is typing.Annotated else ():
            if isinstance(meta, FieldInfo) and meta.description:
                return meta.description
    return None


def surfaces(field: FieldInfo) -> Surfaces:
    return _marker(field, Surfaces) or Surfaces()


def with_defaults(request: R, config: Any) -> R:
    """``request`` with every omitted argument that has a :class:`ConfigDefault` set from ``config``."""
    update: dict[str, Any] = {}
    for name, field in type(request).model_fields.items():
        path = config_default(field)
        if path is not None and getattr(request, name) is None:
            section, key = path.split(".")
            update[name] = getattr(getattr(config, section), key)
    return request.model_copy(update=update) if update else request
