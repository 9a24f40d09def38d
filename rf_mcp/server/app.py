"""Building the MCP server and running it on stdio, SSE or streamable HTTP."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from io import TextIOWrapper
from typing import Literal

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server
from pydantic import BaseModel

from rf_mcp import __version__
from rf_mcp.config import Config
from rf_mcp.domain.service import RFService
from rf_mcp.errors import ConfigError
from rf_mcp.server.http import check_bind, run_http
from rf_mcp.server.tools import register_tools
from rf_mcp.server.validation import ArgumentCheck

Transport = Literal["stdio", "sse", "streamable-http"]
READ_ONLY_ENV = "RF_MCP_READ_ONLY"
AUTH_TOKEN_ENV = "RF_MCP_AUTH_TOKEN"

INSTRUCTIONS = """rf-mcp gives calibrated Qdrant Relevance Feedback (RF) search. Workflow: list_collections ->
(index) -> calibrate with 50-200 real queries -> evaluate on held-out queries (with relevance judgments if
available) -> rf_search_precision for precise top results (5 feedback scores) or rf_search_recall to find what
plain vector search missed (seeds + budget scores). Refusals explain what to do next."""


def build_server(service: RFService, *, read_only: bool = False) -> MCPServer:
    models: dict[str, type[BaseModel]] = {}
    server = MCPServer("rf-mcp", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING",
                       middleware=[ArgumentCheck(models)])
    models.update(register_tools(server, service, read_only=read_only))
    return server


def _protect_stdout() -> TextIOWrapper:
    """Keep the real stdout for the protocol only; everything else written to fd 1 goes to stderr, for good."""
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return TextIOWrapper(os.fdopen(protocol_fd, "wb", buffering=0), encoding="utf-8", write_through=True)


async def _run_stdio(server: MCPServer) -> None:
    protocol_out = _protect_stdout()
    lowlevel = server._lowlevel_server
    async with stdio_server(stdout=anyio.wrap_file(protocol_out)) as (read_stream, write_stream):
        await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())


async def serve(config: Config, *, transport: Transport = "stdio", host: str = "127.0.0.1", port: int = 8000,
                read_only: bool = False, allow_remote: bool = False, auth_token_env: str | None = None,
                allowed_hosts: Sequence[str] = ()) -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    read_only = read_only or os.environ.get(READ_ONLY_ENV, "").lower() in ("1", "true", "yes")
    token = None
    if transport != "stdio":
        check_bind(host, allow_remote)
        token_env = auth_token_env or AUTH_TOKEN_ENV
        token = os.environ.get(token_env) or None
        if auth_token_env and not token:
            raise ConfigError(f"--auth-token-env names {auth_token_env}, but that environment variable is empty.",
                              fix=f"Export {auth_token_env}=<a long random token>, or drop --auth-token-env.")
    async with RFService(config) as service:
        server = build_server(service, read_only=read_only)
        if transport == "stdio":
            await _run_stdio(server)
        else:
            await run_http(server, transport, host, port, token=token, allowed_hosts=allowed_hosts)
