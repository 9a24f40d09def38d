"""Building the MCP server and running it on stdio, SSE or streamable HTTP."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mcp.server.mcpserver import MCPServer

from rf_mcp import __version__
from rf_mcp.config import Config
from rf_mcp.domain.files import PathPolicy
from rf_mcp.domain.service import RFService
from rf_mcp.errors import ConfigError
from rf_mcp.server.http import check_bind, check_token, run_http, stateless_http
from rf_mcp.server.resources import register_prompts_and_resources
from rf_mcp.server.stdio import protect_stdio, stdio_transport
from rf_mcp.server.tools import register_tools
from rf_mcp.server.validation import ArgumentCheck

Transport = Literal["stdio", "sse", "streamable-http"]
READ_ONLY_ENV = "RF_MCP_READ_ONLY"
AUTH_TOKEN_ENV = "RF_MCP_AUTH_TOKEN"
log = logging.getLogger("rf_mcp.server")

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


def one_thread_per_request(config: Config) -> Config:
    """Models run one ONNX thread per call unless configured: over HTTP concurrent requests each take a core, and more
    threads per call only spin (measured: twice the CPU per query embedding for the same latency under load)."""
    update = {name: section.model_copy(update={"threads": 1}) for name, section in
              (("retriever", config.retriever), ("feedback", config.feedback)) if section.threads is None}
    return config.model_copy(update=update) if update else config


def build_server(service: RFService, *, read_only: bool = False) -> MCPServer:
    check = ArgumentCheck({})
    server = MCPServer("rf-mcp", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING",
                       middleware=[check])
    check.models.update(register_tools(server, service, read_only=read_only))
    if service.grades_through_client:  # the client's LLM grades: at most two rounds of two attempts each
        for name in ("rf_search_precision", "rf_search_recall"):
            check.deadlines[name] = 4 * service.config.feedback.timeout + 2
    check.prompts.update(register_prompts_and_resources(server, service))
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
    flag = os.environ.get(READ_ONLY_ENV, "").strip().lower()
    if flag not in ("", "0", "false", "no", "off", "1", "true", "yes", "on"):
        raise ConfigError(f"{READ_ONLY_ENV}={flag[:20]!r} is neither on nor off.",
                          fix=f"Set {READ_ONLY_ENV} to 1/true/yes/on or 0/false/no/off, or pass --read-only.")
    read_only = options.read_only or flag in ("1", "true", "yes", "on")
    token = None
    if options.transport != "stdio":
        variable = options.auth_token_env or AUTH_TOKEN_ENV
        token = os.environ.get(variable)
        if options.auth_token_env and token is None:
            raise ConfigError(f"--auth-token-env names {variable}, but that environment variable is not set.",
                              fix=f"Export {variable}=<a long random token>, or drop --auth-token-env.")
        check_token(token, variable)
        check_bind(options.host, allow_remote=options.allow_remote, token=token,
                   insecure_no_auth=options.insecure_no_auth, allowed_hosts=options.allowed_hosts)
        stateless = stateless_http(config)  # a setting that cannot work fails before anything starts
    if options.transport != "stdio":
        config = one_thread_per_request(config)
        if config.qdrant.engine_process == "auto":  # concurrent clients: engine work on another core
            config = config.model_copy(update={"qdrant": config.qdrant.model_copy(update={"engine_process": "on"})})
    protocol = protect_stdio() if options.transport == "stdio" else None  # before anything can print
    async with RFService(config, files=data_roots(config, options.transport), read_only=read_only) as service:
        server = build_server(service, read_only=read_only)
        _banner(options, service, token)
        if protocol is not None:
            lowlevel = server._lowlevel_server
            async with stdio_transport(*protocol) as (read_stream, write_stream):
                await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
        else:
            await run_http(server, options.transport, options.host, options.port, token=token,
                           allowed_hosts=options.allowed_hosts, settings=config.server, stateless=stateless)
