"""The HTTP transports (streamable HTTP, SSE): loopback by default, optional bearer token, Host/Origin checks."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import sys
from collections.abc import Sequence
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from rf_mcp.errors import ConfigError

log = logging.getLogger("rf_mcp.server")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def is_loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, allow_remote: bool) -> None:
    if is_loopback(host):
        return
    if not allow_remote:
        raise ConfigError(
            f"Refusing to bind the HTTP transport to {host}: only loopback addresses are allowed by default.",
            fix="Pass --allow-remote (and set a bearer token with --auth-token-env) to serve other hosts.",
        )
    print(f"warning: rf-mcp serves on {host}, reachable from other machines; protect it with a bearer token "
          "and a firewall.", file=sys.stderr)


def security_settings(host: str, port: int, allowed_hosts: Sequence[str] = ()) -> TransportSecuritySettings:
    """DNS-rebinding protection: only the expected Host and Origin headers are accepted."""
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", *allowed_hosts]
    if not is_loopback(host) and host not in ("0.0.0.0", "::"):
        hosts.append(f"{host}:{port}")
    origins = [f"http://{h}" for h in hosts] + [f"https://{h}" for h in allowed_hosts]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                     allowed_origins=origins)


class BearerAuth:
    """ASGI middleware: every HTTP request needs ``Authorization: Bearer <token>`` (compared in constant time)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                body = b'{"error": "unauthorized: send Authorization: Bearer <token>"}'
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def build_app(server: MCPServer, transport: str, host: str, port: int, *, token: str | None,
              allowed_hosts: Sequence[str] = ()) -> Any:
    security = security_settings(host, port, allowed_hosts)
    if transport == "sse":
        app = server.sse_app(transport_security=security, host=host)
    else:
        app = server.streamable_http_app(transport_security=security, host=host)
    return BearerAuth(app, token) if token else app


async def run_http(server: MCPServer, transport: str, host: str, port: int, *, token: str | None,
                   allowed_hosts: Sequence[str] = ()) -> None:
    app = build_app(server, transport, host, port, token=token, allowed_hosts=allowed_hosts)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    await uvicorn.Server(config).serve()
