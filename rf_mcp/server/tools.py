"""The MCP tools: thin handlers from a typed input model to one RFService call.

Each tool's parameters are generated from its pydantic input model (one schema, shared with docs and tests); its
return type is a domain result model, so clients get ``structured_content``. The published output schemas are
compact (top-level fields with their descriptions) to keep ``tools/list`` small. Refusals and bad input become tool
errors (``is_error``) whose text names the problem and the fix; an unexpected failure is logged with its traceback
and reported by type and reference only (its message could quote data). The server keeps serving.
"""

from __future__ import annotations

import inspect
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ValidationError

from rf_mcp.domain.datasets import Query
from rf_mcp.domain.models import (
    CalibrationProfile,
    CalibrationReport,
    CollectionsOverview,
    EvaluationReport,
    IndexReport,
    SearchResult,
)
from rf_mcp.domain.service import RFService
from rf_mcp.errors import RFError
from rf_mcp.ports import Progress, SampledScorer, grading_client
from rf_mcp.server import descriptions as d
from rf_mcp.server.sampling import SamplingRounds, client_key
from rf_mcp.server.schemas import (
    CalibrateArgs,
    CalibrateInput,
    CollectionsInput,
    EvaluateInput,
    IndexInput,
    PrecisionInput,
    RecallInput,
    RollbackInput,
)
from rf_mcp.server.validation import describe

log = logging.getLogger("rf_mcp.server")
Handler = Callable[..., Awaitable[Any]]
Resolvers = dict[str, Callable[..., Any]]


def annotated(tp: Any, *metadata: Any) -> Any:
    """``Annotated[tp, *metadata]`` built at run time (the tool signatures are generated from the input models)."""
    return Annotated.__class_getitem__((tp, *metadata))  # type: ignore[attr-defined]


def internal_error(name: str, exc: BaseException) -> ToolError:
    ref = secrets.token_hex(4)
    log.error("tool %s failed unexpectedly (ref %s)", name, ref, exc_info=exc)
    return ToolError(f"internal_error: an unexpected {type(exc).__name__} (ref {ref}). The server logged the details; "
                     "the request can be retried or reported with the reference.")


def model_tool(name: str, model: type[BaseModel], result: type[BaseModel], handler: Handler,
               resolvers: Resolvers | None = None) -> Callable[..., Awaitable[Any]]:
    """A tool function whose keyword parameters are ``model``'s fields, calling ``handler(model(...), ctx)``.

    With ``resolvers``, each becomes a hidden ``Annotated[Any, Resolve(fn)]`` parameter (filled by the SDK
    before the body, e.g. with the client's LLM replies) and the handler gets them as a third argument.
    """
    resolvers = resolvers or {}
    params = []
    annotations: dict[str, Any] = {}
    for field_name, field in model.model_fields.items():
        ann = annotated(field.annotation, field)
        default = inspect.Parameter.empty if field.is_required() else field.get_default(call_default_factory=True)
        params.append(inspect.Parameter(field_name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=ann))
        annotations[field_name] = ann
    for rname, fn in resolvers.items():
        ann = annotated(Any, Resolve(fn))
        params.append(inspect.Parameter(rname, inspect.Parameter.KEYWORD_ONLY, annotation=ann))
        annotations[rname] = ann
    params.append(inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context))
    annotations["ctx"] = Context
    annotations["return"] = result

    async def tool(**kwargs: Any) -> Any:
        ctx = kwargs.pop("ctx")
        resolved = {r: kwargs.pop(r) for r in resolvers}
        try:
            args = model(**kwargs)
        except ValidationError as exc:
            raise ToolError(describe(exc)) from None
        token = grading_client.set(client_key(ctx))
        try:
            out = await (handler(args, ctx, resolved) if resolvers else handler(args, ctx))
            return as_result(out) if isinstance(out, BaseModel) else out
        except RFError as exc:
            raise ToolError(f"{exc.code}: {exc}") from None
        except ToolError:
            raise
        except Exception as exc:
            raise internal_error(name, exc) from None
        finally:
            grading_client.reset(token)

    tool.__name__ = name
    tool.__signature__ = inspect.Signature(params, return_annotation=result)  # type: ignore[attr-defined]
    tool.__annotations__ = annotations
    return tool


def as_result(out: BaseModel) -> CallToolResult:
    """A tool's result: the structured content, and the same JSON as text (compact: clients that read only the text
    get every field; the SDK's default would indent it, doubling the bytes on the wire)."""
    structured = out.model_dump(mode="json", by_alias=True)
    return CallToolResult(content=[TextContent(type="text", text=out.model_dump_json(by_alias=True))],
                          structured_content=structured)


def compact_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The output schema clients see: the top-level fields and their JSON types (no nested $defs, no descriptions:
    the tool's description and each result's text say what they mean)."""
    full = model.model_json_schema(mode="serialization")
    props: dict[str, Any] = {}
    for name, spec in full.get("properties", {}).items():
        kinds = [s.get("type") for s in spec.get("anyOf", [spec])] if "$ref" not in spec else ["object"]
        kinds = [k or "object" for k in kinds]
        props[name] = {"type": kinds[0] if len(kinds) == 1 else kinds}
    return {"type": "object", "properties": props}


def compact_input(schema: dict[str, Any]) -> dict[str, Any]:
    """An input schema without what clients do not need to choose and call a tool: generated titles, string length
    caps, ``null`` alternatives of optional arguments (omitting them means the default) and ``default: null``. The
    server still validates every call against the full model (tools/list stays under 15 KB)."""

    def walk(node: Any, *, mapping: bool = False) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        if mapping:  # "properties" / "$defs": keys are names, values are schemas
            return {k: walk(v) for k, v in node.items()}
        out: dict[str, Any] = {}
        for k, v in node.items():
            if k in ("title", "minLength", "maxLength") or (k == "default" and v is None):
                continue  # string length caps are enforced on the call; they do not help choosing a tool
            out[k] = walk(v, mapping=k in ("properties", "$defs"))
        alternatives = out.get("anyOf")
        if isinstance(alternatives, list) and {"type": "null"} in alternatives:
            rest = [a for a in alternatives if a != {"type": "null"}]
            del out["anyOf"]
            if len(rest) == 1:
                out = {**rest[0], **out}
            else:
                out["anyOf"] = rest
        return out

    out: dict[str, Any] = walk(schema)
    flt = out.get("properties", {}).get("filter")
    if flt is not None:  # Qdrant's recursive filter grammar: its shape is in the argument's description
        clause = {"type": "array", "items": {"type": "object"}}
        out["properties"]["filter"] = {"type": "object", "description": flt.get("description", ""),
                                       "properties": dict.fromkeys(("must", "should", "must_not"), clause),
                                       "additionalProperties": False}
        out.pop("$defs", None)
    return out


def _progress(ctx: Context) -> Progress:
    async def report(done: float, total: float, message: str) -> None:
        await ctx.report_progress(done, total, message)

    return report


def _hints(*, read_only: bool, destructive: bool = False, idempotent: bool = True) -> ToolAnnotations:
    return ToolAnnotations(read_only_hint=read_only, destructive_hint=destructive, idempotent_hint=idempotent,
                           open_world_hint=False)


def register_tools(server: MCPServer, service: RFService, *, read_only: bool) -> dict[str, type[BaseModel]]:
    """Register the tools (read-only servers get the ones that change nothing); returns each tool's input model."""

    async def list_collections(args: CollectionsInput, ctx: Context) -> CollectionsOverview:
        return await service.overview(args.collection)

    async def calibrate(args: CalibrateArgs, ctx: Context) -> CalibrationReport:
        return await service.calibrate(args.collection, args.queries, args.train_settings(),
                                       queries_path=args.queries_path, from_query_log=args.from_query_log,
                                       max_queries=args.max_queries, fusion=args.fusion, vector_name=args.vector_name,
                                       progress=_progress(ctx), max_feedback_scores=args.max_feedback_scores)

    async def evaluate(args: EvaluateInput, ctx: Context) -> EvaluationReport:
        queries = None if args.queries is None else [Query(id=q.id, text=q.text) for q in args.queries]
        return await service.evaluate(args.collection, queries, queries_path=args.queries_path,
                                      from_query_log=args.from_query_log, qrels_path=args.qrels_path,
                                      max_queries=args.max_queries, at_n=args.at_n, fusion=args.fusion,
                                      vector_name=args.vector_name, progress=_progress(ctx))

    async def precision(args: PrecisionInput, ctx: Context) -> SearchResult:
        return await service.search_precision(args.collection, args.query, limit=args.limit, seeds=args.seeds,
                                              vanilla=args.vanilla, fusion=args.fusion, filter=args.filter,
                                              vector_name=args.vector_name, exact=args.exact, hnsw_ef=args.hnsw_ef)

    async def recall(args: RecallInput, ctx: Context) -> SearchResult:
        return await service.search_recall(args.collection, args.query, budget=args.budget, limit=args.limit,
                                           seeds=args.seeds, seed_ids=args.seed_ids, fusion=args.fusion,
                                           filter=args.filter, vector_name=args.vector_name, exact=args.exact,
                                           hnsw_ef=args.hnsw_ef)

    async def rollback(args: RollbackInput, ctx: Context) -> CalibrationProfile:
        return await service.rollback(args.collection, args.vector_name, fusion=args.fusion)

    async def index(args: IndexInput, ctx: Context) -> IndexReport:
        return await service.index(args.collection, args.input_path, vector_name=args.vector_name,
                                   vectors_path=args.vectors_path, sparse_only=args.sparse_only,
                                   progress=_progress(ctx))

    resolvers: dict[str, Resolvers] = {}
    precision_handler: Handler
    recall_handler: Handler
    if service.grades_through_client:  # the client's LLM grades: ask it in resolver rounds, then search as usual
        scorer = service.scorer
        assert isinstance(scorer, SampledScorer)
        rounds = SamplingRounds(service, scorer)
        resolvers = {"rf_search_precision": rounds.precision_resolvers(), "rf_search_recall": rounds.recall_resolvers()}

        async def precision_sampled(args: PrecisionInput, ctx: Context, resolved: dict[str, Any]) -> SearchResult:
            await rounds.before_precision(args, resolved)
            result = await precision(args, ctx)
            result.warnings += rounds.model_warnings()
            return result

        async def recall_sampled(args: RecallInput, ctx: Context, resolved: dict[str, Any]) -> SearchResult:
            await rounds.before_recall(args, resolved)
            result = await recall(args, ctx)
            result.warnings += rounds.model_warnings()
            return result

        precision_handler, recall_handler = precision_sampled, recall_sampled
    else:
        precision_handler, recall_handler = precision, recall

    read = _hints(read_only=True)
    specs: list[tuple[str, type[BaseModel], type[BaseModel], Handler, str, ToolAnnotations]] = [
        ("list_collections", CollectionsInput, CollectionsOverview, list_collections, d.LIST_COLLECTIONS, read),
        ("rf_search_precision", PrecisionInput, SearchResult, precision_handler, d.PRECISION, read),
        ("rf_search_recall", RecallInput, SearchResult, recall_handler, d.RECALL, read),
    ]
    if read_only:  # nothing a client calls may change stored state: evaluate reports without storing
        specs.append(("evaluate", EvaluateInput, EvaluationReport, evaluate, d.EVALUATE_READ_ONLY, read))
    else:
        specs += [
            ("calibrate", CalibrateInput, CalibrationReport, calibrate, d.CALIBRATE,
             _hints(read_only=False, destructive=True, idempotent=False)),
            ("evaluate", EvaluateInput, EvaluationReport, evaluate, d.EVALUATE, _hints(read_only=False)),
            ("rollback_calibration", RollbackInput, CalibrationProfile, rollback, d.ROLLBACK,
             _hints(read_only=False, destructive=True, idempotent=False)),
            # index overwrites the points of documents indexed before (same ids): destructive, and idempotent
            ("index", IndexInput, IndexReport, index, d.INDEX, _hints(read_only=False, destructive=True)),
        ]
    for name, model, result, handler, description, hints in specs:
        server.add_tool(model_tool(name, model, result, handler, resolvers.get(name)), name=name,
                        description=description, annotations=hints, structured_output=True)
        registered = server._tool_manager.get_tool(name)
        if registered is not None:
            registered.fn_metadata.output_schema = compact_schema(result)
            registered.parameters = compact_input(registered.parameters)
            registered.parameters["additionalProperties"] = False  # unknown arguments are refused (ArgumentCheck)
    return {name: model for name, model, *_ in specs}
