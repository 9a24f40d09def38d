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

from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo

from rf_mcp.errors import InputError
from rf_mcp.ports import Filter, TrainSettings
from rf_mcp.ports.training import ConfidenceMargin, ContextLimit, Epochs, LearningRate, MinDelta, Patience, TrainLimit

__all__ = [
    "CalibrateRequest", "CollectionsRequest", "ConfigDefault", "EvalQuery", "EvaluateRequest", "IndexRequest",
    "PrecisionRequest", "RecallRequest", "Request", "RollbackRequest", "SearchRequest", "Surfaces", "config_default",
    "description", "parse", "surfaces", "with_defaults",
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

_COLLECTION = "Collection (default: the server's, COLLECTION_NAME)."
_VECTOR = 'Dense vector (default: the configured one; "" = unnamed).'
_FUSION = '"sparse": RF fused with BM25; "none": dense only (default: the server\'s). Use the calibrated one.'
_FILTER = ('Payload filter (Qdrant\'s): {"must"|"should"|"must_not": [{"key": "year", "range": {"gte": 2010}}, '
           '{"key": "metadata.lang", "match": {"value": "en"}}]}; match takes "value", "any" or "except". Applies to '
           "seeds, RF and fusion.")


class Request(BaseModel):
    """An operation's arguments: unknown ones are refused, and a request never changes once built."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TargetArgs(Request):
    collection: Annotated[CollectionName | None, ConfigDefault("collection.default_collection")] = Field(
        None, description=_COLLECTION)
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
        None, description="Exact search without the HNSW index (slow on large collections).")
    hnsw_ef: Annotated[HnswEf | None, ConfigDefault("search.hnsw_ef")] = Field(
        None, description="HNSW search breadth (default: chosen from the collection and the feedback).")


class PrecisionRequest(SearchRequest):
    limit: Annotated[Limit | None, ConfigDefault("search.limit")] = Field(
        None, description="Results to return (default: the server's).")
    vanilla: bool = Field(False, description="No feedback, no calibration needed: plain vector search (fusion none) or "
                                             "plain hybrid search (fusion sparse).")


class RecallRequest(SearchRequest):
    budget: Annotated[Budget | None, ConfigDefault("search.recall_budget")] = Field(
        None, description="New RF results to score: cost = seeds + budget (default: the server's, 20).")
    limit: int | None = Field(None, ge=1, le=220, description="Results to return (default: all scored).")
    seed_ids: list[SeedId] | None = Field(None, min_length=2, max_length=20, description=(
        "Seeds you choose: the id or doc_id of hits (e.g. ones the user liked); default: the top results."))


class QueriesArgs(FusionArgs):
    """Operations that read queries: inline, from a server-side file, or from the query log (exactly one)."""

    queries_path: Path | None = Field(
        None, description="Server-side file of queries (JSONL _id, text; or one per line), inside the server's data "
                          "roots.")
    from_query_log: bool = Field(False, description="Use this server's logged queries ([server] query_log): the "
                                                    "calibration or (evaluate) the held-out part.")
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
                                            "cap for slow or paid feedback models such as an LLM judge).")
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
    id: str | None = Field(None, max_length=255, description="Query id, as in the qrels (needed for ground truth).")
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
        None, description="Server-side JSONL corpus (_id, title, text), inside the server's data roots. Omit with "
                          "sparse_only.")
    vectors_path: Path | None = Field(
        None, description="Server-side .npy of precomputed vectors from the same retriever, one row per corpus line: "
                          "skips embedding.")
    sparse_only: bool = Field(False, description="Only (re)write the BM25 sparse vectors and term statistics from the "
                                                 "points' payload text (for a collection built by another tool).")
    build_index: Annotated[bool, Surfaces(mcp=False, cli=False)] = Field(
        False, description="Build the HNSW index once the collection reaches [qdrant] hnsw_threshold points.")


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
