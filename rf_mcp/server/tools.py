"""The MCP tools: each is one request model (its input schema), one result model (its output schema) and one
service call, served through the SDK's public low-level ``Server`` handlers (``tools/list``, ``tools/call``).

Arguments are validated once, by the request model (:func:`rf_mcp.domain.requests.parse`), so a bad argument gets the
same message here as on the CLI and in the Python API. Refusals and bad input become tool errors (``is_error``) whose
text names the problem and the fix; an unexpected failure is logged with its traceback and reported by type and
reference only (its message could quote data). The server keeps serving.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.context import ServerRequestContext
from mcp_types import CallToolRequestParams, CallToolResult, InputRequiredResult, TextContent, Tool, ToolAnnotations
from pydantic import BaseModel

from rf_mcp.domain.models import (
    CalibrationProfile,
    CalibrationReport,
    CollectionsOverview,
    DocumentsReport,
    EvaluationReport,
    IndexReport,
    SearchResult,
)
from rf_mcp.domain.requests import (
    AddDocumentsRequest,
    CalibrateRequest,
    CollectionsRequest,
    DeleteDocumentsRequest,
    EvaluateRequest,
    IndexRequest,
    PrecisionRequest,
    RecallRequest,
    Request,
    RollbackRequest,
    parse,
    surfaces,
)
from rf_mcp.domain.service import RFService
from rf_mcp.errors import InputError, RFError
from rf_mcp.ports import Progress
from rf_mcp.server import descriptions as d
from rf_mcp.server.sampling import ClientGrading

log = logging.getLogger("rf_mcp.server")
Context = ServerRequestContext[Any, Any]
Handler = Callable[[Context, CallToolRequestParams, Any], Awaitable[BaseModel | InputRequiredResult]]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    request: type[Request]
    result: type[BaseModel]
    description: str
    annotations: ToolAnnotations
    handler: Handler

    def tool(self) -> Tool:
        return Tool(name=self.name, title=self.title, description=" ".join(self.description.split()),
                    input_schema=input_schema(self.request), output_schema=output_schema(self.result),
                    annotations=self.annotations)


def mcp_fields(model: type[Request]) -> set[str]:
    """The arguments a tool takes: the request's fields that are on the MCP surface."""
    return {name for name, f in model.model_fields.items() if surfaces(f).mcp}


def input_schema(model: type[Request]) -> dict[str, Any]:
    """The request model's JSON schema for clients: its MCP fields, with what clients do not need to choose and call a
    tool left out (generated titles, string length caps, ``null`` alternatives of optional arguments: omitting one
    means the default). The call is still validated against the whole model (tools/list stays under 15 KB)."""
    full = model.model_json_schema()
    keep = mcp_fields(model)

    def walk(node: Any, *, mapping: bool = False) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        if mapping:  # "properties" / "$defs": keys are names, values are schemas
            return {k: walk(v) for k, v in node.items()}
        out: dict[str, Any] = {}
        for k, v in node.items():
            if k in ("title", "minLength", "maxLength") or (k == "default" and v is None) or (
                    k == "additionalProperties" and v is True):  # true is what it means when left out
                continue
            out[k] = walk(v, mapping=k in ("properties", "$defs"))
        if "enum" in out and out.get("type") == "string":  # the enum says it
            del out["type"]
        alternatives = out.get("anyOf")
        if isinstance(alternatives, list) and {"type": "null"} in alternatives:
            rest = [a for a in alternatives if a != {"type": "null"}]
            del out["anyOf"]
            out = {**rest[0], **out} if len(rest) == 1 else {**out, "anyOf": rest}
        return out

    out: dict[str, Any] = walk(full)
    out["properties"] = {k: v for k, v in out.get("properties", {}).items() if k in keep}
    required = [k for k in out.get("required", []) if k in keep]
    if required:
        out["required"] = required
    else:
        out.pop("required", None)
    flt = out["properties"].get("filter")
    if flt is not None:  # Qdrant's recursive filter grammar: its shape is in the argument's description
        clause = {"type": "array"}  # of conditions, described in the argument's description
        out["properties"]["filter"] = {"type": "object", "description": flt.get("description", ""),
                                       "properties": dict.fromkeys(("must", "should", "must_not"), clause),
                                       "additionalProperties": False}
    if "filter" in out["properties"] or not any("$ref" in str(v) for v in out["properties"].values()):
        out.pop("$defs", None)
    out["additionalProperties"] = False
    return out


def output_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The output schema clients see: the top-level fields and their JSON types (no nested $defs, no descriptions:
    the tool's description and each result's text say what they mean). One type per field, never a type array or a
    ``null`` alternative (some clients reject both): a field whose value is null is left out of the structured
    content (:func:`as_result`)."""
    full = model.model_json_schema(mode="serialization")
    props: dict[str, Any] = {}
    for name, spec in full.get("properties", {}).items():
        kinds = [s.get("type") for s in spec.get("anyOf", [spec])] if "$ref" not in spec else ["object"]
        kinds = list(dict.fromkeys(k or "object" for k in kinds if k != "null"))
        props[name] = {"type": kinds[0]} if len(kinds) == 1 else {"anyOf": [{"type": k} for k in kinds]}
    return {"type": "object", "properties": props}


def as_result(out: BaseModel) -> CallToolResult:
    """A tool's result: the structured content (top-level nulls left out, as the output schema says), and the whole
    JSON as text (compact: clients that read only the text get every field)."""
    structured = {k: v for k, v in out.model_dump(mode="json", by_alias=True).items() if v is not None}
    return CallToolResult(content=[TextContent(type="text", text=out.model_dump_json(by_alias=True))],
                          structured_content=structured)


def tool_error(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


def refusal(exc: RFError) -> CallToolResult:
    """Every refusal in one shape: ``<code>: <problem> Fix: <fix>``."""
    return tool_error(f"{exc.code}: {exc}")


def internal_error(name: str, exc: BaseException) -> CallToolResult:
    ref = secrets.token_hex(4)
    log.error("tool %s failed unexpectedly (ref %s)", name, ref, exc_info=exc)
    return tool_error(f"internal_error: an unexpected {type(exc).__name__} (ref {ref}). The server logged the "
                      "details; the request can be retried or reported with the reference.")


def progress_of(ctx: Context) -> Progress:
    """Progress notifications for the request (the session sends them only when the client asked for them)."""

    async def report(done: float, total: float, message: str) -> None:
        await ctx.session.report_progress(done, total, message)

    return report


def _hints(*, read_only: bool, destructive: bool = False, idempotent: bool = True) -> ToolAnnotations:
    """The tool's hints, without the ones the protocol makes redundant: a read-only tool's destructive and idempotent
    hints mean nothing, and a missing readOnlyHint means false."""
    if read_only:
        return ToolAnnotations(read_only_hint=True, open_world_hint=False)
    return ToolAnnotations(destructive_hint=destructive, idempotent_hint=idempotent, open_world_hint=False)


def tool_specs(service: RFService, *, read_only: bool, grading: ClientGrading | None) -> list[ToolSpec]:
    """The tools (read-only servers get the ones that change nothing)."""

    async def list_collections(ctx: Context, params: CallToolRequestParams, r: CollectionsRequest) -> BaseModel:
        return await service.overview(r.collection)

    async def search_tool(ctx: Context, params: CallToolRequestParams,
                          r: PrecisionRequest | RecallRequest) -> BaseModel | InputRequiredResult:
        if grading is None or (isinstance(r, PrecisionRequest) and r.vanilla):
            return await service.search(r) if grading is None else await grading.run_local(service.plan(r))
        return await grading.run(ctx, params, lambda: service.plan(r))

    async def calibrate(ctx: Context, params: CallToolRequestParams, r: CalibrateRequest) -> BaseModel:
        return await service.run_calibrate(r, progress_of(ctx))

    async def evaluate(ctx: Context, params: CallToolRequestParams, r: EvaluateRequest) -> BaseModel:
        return await service.run_evaluate(r, progress_of(ctx))

    async def rollback(ctx: Context, params: CallToolRequestParams, r: RollbackRequest) -> BaseModel:
        return await service.run_rollback(r)

    async def index(ctx: Context, params: CallToolRequestParams, r: IndexRequest) -> BaseModel:
        return await service.run_index(r, progress_of(ctx))

    async def add_documents(ctx: Context, params: CallToolRequestParams, r: AddDocumentsRequest) -> BaseModel:
        return await service.run_add_documents(r)

    async def delete_documents(ctx: Context, params: CallToolRequestParams, r: DeleteDocumentsRequest) -> BaseModel:
        return await service.run_delete_documents(r)

    read = _hints(read_only=True)
    specs = [
        ToolSpec("list_collections", "List collections", CollectionsRequest, CollectionsOverview,
                 d.LIST_COLLECTIONS, read, list_collections),
        ToolSpec("rf_search_precision", "RF search: precise top results", PrecisionRequest,
                 SearchResult, d.PRECISION, read, search_tool),
        ToolSpec("rf_search_recall", "RF search: what search missed", RecallRequest,
                 SearchResult, d.RECALL, read, search_tool),
    ]
    if read_only:  # nothing a client calls may change stored state: evaluate reports without storing
        specs.append(ToolSpec("evaluate", "Evaluate calibration", EvaluateRequest, EvaluationReport,
                              d.EVALUATE_READ_ONLY, read, evaluate))
        return specs
    return [
        *specs,
        ToolSpec("calibrate", "Calibrate RF", CalibrateRequest, CalibrationReport, d.CALIBRATE,
                 _hints(read_only=False, destructive=True, idempotent=False), calibrate),
        ToolSpec("evaluate", "Evaluate calibration", EvaluateRequest, EvaluationReport, d.EVALUATE,
                 _hints(read_only=False), evaluate),
        ToolSpec("rollback_calibration", "Roll back calibration", RollbackRequest, CalibrationProfile, d.ROLLBACK,
                 _hints(read_only=False, destructive=True, idempotent=False), rollback),
        # index overwrites the points of documents indexed before (same ids): destructive, and idempotent
        ToolSpec("index", "Index a corpus file", IndexRequest, IndexReport, d.INDEX, _hints(read_only=False,
                                                                                             destructive=True), index),
        # adding an id again replaces that document; deleting twice deletes once
        ToolSpec("add_documents", "Add or replace documents", AddDocumentsRequest, DocumentsReport, d.ADD_DOCUMENTS,
                 _hints(read_only=False, destructive=True), add_documents),
        ToolSpec("delete_documents", "Delete documents", DeleteDocumentsRequest, DocumentsReport, d.DELETE_DOCUMENTS,
                 _hints(read_only=False, destructive=True), delete_documents),
    ]


class Tools:
    """The ``tools/list`` and ``tools/call`` handlers over the specs."""

    def __init__(self, specs: list[ToolSpec]) -> None:
        self.specs = {s.name: s for s in specs}
        self._listed = [s.tool() for s in specs]

    def list(self) -> list[Tool]:
        return self._listed

    async def call(self, ctx: Context, params: CallToolRequestParams) -> CallToolResult | InputRequiredResult:
        name, arguments = params.name, params.arguments
        spec = self.specs.get(name)
        if spec is None:
            return tool_error(f"invalid_input: unknown tool {name[:100]!r}. Fix: call one of {sorted(self.specs)}.")
        try:
            if isinstance(arguments, dict):
                hidden = sorted(k for k in arguments if k in spec.request.model_fields and k not in
                                mcp_fields(spec.request))
                if hidden:
                    raise InputError(f"Invalid arguments: {hidden[0]}: unknown argument.",
                                     fix="Correct them as the tool's input schema describes.")
            request = parse(spec.request, arguments)
            out = await spec.handler(ctx, params, request)
            return out if isinstance(out, InputRequiredResult) else as_result(out)
        except RFError as exc:
            return refusal(exc)
        except Exception as exc:
            return internal_error(name, exc)
