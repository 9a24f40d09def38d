"""Building the MCP server and running it on stdio, SSE or streamable HTTP."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.request_state import RequestStateBoundary, RequestStateSecurity
from mcp_types import (
    CallToolRequestParams,
    CallToolResult,
    GetPromptRequestParams,
    GetPromptResult,
    InputRequiredResult,
    ListPromptsResult,
    ListResourcesResult,
    ListResourceTemplatesResult,
    ListToolsResult,
    PaginatedRequestParams,
    ReadResourceRequestParams,
    ReadResourceResult,
)

from rf_mcp import __version__
from rf_mcp.bootstrap import open_service
from rf_mcp.config import AUTH_TOKEN_ENV, Config, auth_token, one_thread_per_request
from rf_mcp.domain.files import PathPolicy
from rf_mcp.domain.service import RFService
from rf_mcp.ports import SampledScorer
from rf_mcp.server import resources
from rf_mcp.server.http import check_bind, check_token, run_http, stateless_http
from rf_mcp.server.sampling import ClientGrading
from rf_mcp.server.stdio import protect_stdio, stdio_transport
from rf_mcp.server.tools import Tools, tool_specs

Transport = Literal["stdio", "sse", "streamable-http"]
log = logging.getLogger("rf_mcp.server")
Ctx = ServerRequestContext[Any, Any]

INSTRUCTIONS = """rf-mcp gives calibrated Qdrant Relevance Feedback (RF) search. Workflow: list_collections ->
(index) -> calibrate with 50-200 real queries -> evaluate on held-out queries (with relevance judgments if
available) -> rf_search_precision for precise top results (5 feedback scores) or rf_search_recall to find what
plain search missed (seeds + budget scores). vanilla=true compares with search that spends no feedback. Refusals
explain what to do next. The prompt rf_workflow walks through these steps for one collection."""


@dataclass(frozen=True)
class ServeOptions:
    transport: Transport = "stdio"
    host: str = "127.0.0.1"
    port: int = 8000
    read_only: bool = False
    allow_remote: bool = False
    insecure_no_auth: bool = False
    auth_token_env: str | None = None
    allowed_hosts: Sequence[str] = field(default_factory=tuple)


def data_roots(config: Config, transport: Transport) -> PathPolicy:
    """Files tools may read: ``[server] data_roots``; by default the config file's folder on stdio, none over HTTP."""
    roots = config.server.data_roots
    if roots is None:
        roots = [str(Path(config.source).parent)] if transport == "stdio" and config.source else []
    return PathPolicy.confined(roots)


def build_server(service: RFService, *, read_only: bool = False) -> Server[Any]:
    """The MCP server over ``service``, on the SDK's low-level ``Server``: our own tool schemas (the request models),
    one validation per call, the prompt and the profiles resources."""
    grading = None
    if service.grades_through_client:  # the client's LLM grades: at most two rounds of two attempts each
        judge = service.scorer
        assert isinstance(judge, SampledScorer)
        grading = ClientGrading(judge, deadline=4 * judge.timeout + 2)
    tools = Tools(tool_specs(service, read_only=read_only, grading=grading))

    async def list_tools(ctx: Ctx, params: PaginatedRequestParams | None) -> ListToolsResult:
        return ListToolsResult(tools=tools.list())

    async def call_tool(ctx: Ctx, params: CallToolRequestParams) -> CallToolResult | InputRequiredResult:
        return await tools.call(ctx, params)

    async def list_prompts(ctx: Ctx, params: PaginatedRequestParams | None) -> ListPromptsResult:
        return ListPromptsResult(prompts=[resources.PROMPT])

    async def get_prompt(ctx: Ctx, params: GetPromptRequestParams) -> GetPromptResult:
        return resources.get_prompt(params)

    async def list_resources(ctx: Ctx, params: PaginatedRequestParams | None) -> ListResourcesResult:
        return ListResourcesResult(resources=await resources.list_resources(service))

    async def list_templates(ctx: Ctx, params: PaginatedRequestParams | None) -> ListResourceTemplatesResult:
        return ListResourceTemplatesResult(resource_templates=[resources.TEMPLATE])

    async def read_resource(ctx: Ctx, params: ReadResourceRequestParams) -> ReadResourceResult:
        return await resources.read_profiles(service, str(params.uri))

    server: Server[Any] = Server(
        "rf-mcp", version=__version__, instructions=INSTRUCTIONS, on_list_tools=list_tools, on_call_tool=call_tool,
        on_list_prompts=list_prompts, on_get_prompt=get_prompt, on_list_resources=list_resources,
        on_list_resource_templates=list_templates, on_read_resource=read_resource)
    # the 2026-07-28 requestState of a search waiting for the client's grades is sealed and bound to its call
    server.middleware.append(RequestStateBoundary(RequestStateSecurity.ephemeral(), default_audience=server.name))
    return server


def _banner(options: ServeOptions, service: RFService, token: str | None) -> None:
    o = options
    where = "stdio" if o.transport == "stdio" else (
        f"http://{o.host}:{o.port}/mcp" if o.transport == "streamable-http" else f"http://{o.host}:{o.port}/sse")
    config = service.config.shown_source
    lines = [f"rf-mcp {__version__} serving on {where}", f"  config: {config}", f"  data: {service.engine.location}",
             f"  read-only: {'on' if service.read_only else 'off'}; files tools may read: {service.files.describe()}"]
    if o.transport != "stdio":
        lines.append(f"  auth: {'bearer token required' if token else 'NONE'}; allowed Host headers: loopback"
                     + (f", {', '.join(o.allowed_hosts)}" if o.allowed_hosts else ""))
    print("\n".join(lines), file=sys.stderr, flush=True)


async def serve(config: Config, options: ServeOptions) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    read_only = options.read_only or config.server.read_only  # [server] read_only, or RF_MCP_READ_ONLY
    token = None
    if options.transport != "stdio":
        variable = options.auth_token_env or AUTH_TOKEN_ENV
        token = auth_token(options.auth_token_env)
        check_token(token, variable)
        check_bind(options.host, allow_remote=options.allow_remote, token=token,
                   insecure_no_auth=options.insecure_no_auth, allowed_hosts=options.allowed_hosts)
        stateless = stateless_http(config)  # a setting that cannot work fails before anything starts
    if options.transport != "stdio":
        config = one_thread_per_request(config)
        if config.qdrant.engine_process == "auto":  # concurrent clients: engine work on another core
            config = config.model_copy(update={"qdrant": config.qdrant.model_copy(update={"engine_process": "on"})})
    protocol = protect_stdio() if options.transport == "stdio" else None  # before anything can print
    async with open_service(config, files=data_roots(config, options.transport), read_only=read_only) as service:
        server = build_server(service, read_only=read_only)
        _banner(options, service, token)
        if protocol is not None:
            async with stdio_transport(*protocol) as (read_stream, write_stream):
                await server.run(read_stream, write_stream, server.create_initialization_options())
        else:
            await run_http(server, options.transport, options.host, options.port, token=token,
                           allowed_hosts=options.allowed_hosts, settings=config.server, stateless=stateless)
