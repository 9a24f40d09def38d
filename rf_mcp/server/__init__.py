"""Protocol layer: the MCP server (tools, schemas, transports) over the domain's RFService."""

from rf_mcp.server.app import build_server, serve

__all__ = ["build_server", "serve"]
