"""The HTTP transports (streamable HTTP, SSE) and what protects them.

* Binding: loopback by default; another address needs ``--allow-remote`` and a bearer token (or the loudly named
  ``--insecure-no-auth``); a wildcard address needs ``--allowed-host`` (else every remote Host header is refused).
* Auth: ``Authorization: Bearer <token>`` (scheme case-insensitive, compared in constant time, exactly one header);
  an empty or short token is a start-up error.
* Host / Origin: DNS-rebinding protection accepts loopback names, the bound address and ``--allowed-host``.
* One client cannot deny service to all: sessions per client address are capped and idle sessions expire; a
  request's headers and body must arrive within ``request_timeout`` (slow senders are cut off); connections are
  capped in total and per client address; bodies are capped in size.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import h11
import uvicorn
from mcp.server.lowlevel import Server
from mcp.server.sse import SseServerTransport
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from rf_mcp.config import ServerSettings
from rf_mcp.errors import ConfigError

log = logging.getLogger("rf_mcp.server")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
WILDCARD = ("0.0.0.0", "::", "")
MIN_TOKEN_CHARS = 16


def is_loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token(token: str | None, variable: str) -> None:
    if token is not None and len(token.strip()) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"The bearer token in {variable} is {'empty' if not token.strip() else 'too short'} (at least "
            f"{MIN_TOKEN_CHARS} characters): it would not protect the server.",
            fix=f"Export {variable}=$(python -c 'import secrets; print(secrets.token_urlsafe(32))'), or unset it "
                "on a loopback-only server.")


def check_bind(host: str, *, allow_remote: bool, token: str | None, insecure_no_auth: bool,
               allowed_hosts: Sequence[str]) -> None:
    """Refuse to start a server others can reach unless it is protected (or explicitly, loudly, not)."""
    if is_loopback(host):
        return
    if not allow_remote:
        raise ConfigError(
            f"Refusing to bind the HTTP transport to {host}: only loopback addresses are allowed by default.",
            fix="Pass --allow-remote with a bearer token (RF_MCP_AUTH_TOKEN) to serve other hosts.")
    if token is None and not insecure_no_auth:
        raise ConfigError(
            f"Refusing to serve {host} without authentication: any machine that reaches it could use every tool.",
            fix="Set RF_MCP_AUTH_TOKEN (or --auth-token-env) to a long random token; --insecure-no-auth serves "
                "without one, at your own risk.")
    if host in WILDCARD and not allowed_hosts:
        raise ConfigError(
            f"Binding {host or '*'} accepts connections on every address, but the Host check cannot know which names "
            "clients will use, so it would answer 421 to every remote request.",
            fix="Add --allowed-host NAME:PORT for each host name or address clients use (e.g. "
                "--allowed-host mcp.example.com:443 --allowed-host 10.0.0.5:8000).")
    if token is None:
        print(f"WARNING: rf-mcp serves {host} WITHOUT AUTHENTICATION (--insecure-no-auth): anyone who reaches this "
              "port can read and change your collections.", file=sys.stderr)


def security_settings(host: str, port: int, allowed_hosts: Sequence[str] = ()) -> TransportSecuritySettings:
    """DNS-rebinding protection: only the expected Host and Origin headers are accepted."""
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", *allowed_hosts]
    if host not in WILDCARD and host not in LOOPBACK:
        hosts.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")  # the bound address, e.g. 127.0.0.2
    origins = [f"http://{h}" for h in hosts] + [f"https://{h}" for h in allowed_hosts]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


CLOSE = ((b"connection", b"close"),)
"""With a refusal whose request was not read whole: the connection ends with the answer (its slot is freed)."""


async def _reply(send: Send, status: int, message: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


class BearerAuth:
    """Every HTTP request needs exactly one ``Authorization: Bearer <token>`` header (constant-time comparison)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = [v for k, v in scope.get("headers") or [] if k == b"authorization"]
            scheme, _, credential = given[0].partition(b" ") if len(given) == 1 else (b"", b"", b"")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(credential.strip(), self.expected):
                await _reply(send, 401, "unauthorized: send exactly one Authorization: Bearer <token> header",
                             [(b"www-authenticate", b"Bearer")])
                return
        await self.app(scope, receive, send)


class _Watched:
    """An ASGI ``send`` that remembers the response status (and calls ``on_start`` with the response's start)."""

    def __init__(self, send: Send, on_start: Callable[[Message], None] | None = None) -> None:
        self.send, self.on_start = send, on_start
        self.status: int | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            if self.on_start is not None:
                self.on_start(message)
        await self.send(message)


@dataclass
class _Session:
    client: str
    last_seen: float
    busy: int = 0  # requests of this session in progress (a GET stream keeps the SDK's session alive)


@dataclass
class SessionLimits:
    """Caps open MCP sessions per client address and forgets idle ones (the SDK closes them at the same age)."""

    app: ASGIApp
    per_client: int
    idle_seconds: float
    sessions: dict[str, _Session] = field(default_factory=dict)
    streams: Counter[str] = field(default_factory=Counter)  # open SSE streams per client (the SSE transport)

    def _expire(self, now: float) -> None:
        for sid in [s for s, v in self.sessions.items() if not v.busy and now - v.last_seen > self.idle_seconds]:
            del self.sessions[sid]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("?", 0))[0]
        named = [v for k, v in scope.get("headers") or [] if k.lower() == b"mcp-session-id"]
        if len(named) > 1:  # the SDK reads the first, a proxy may read the last: one session per request
            await _reply(send, 400, "send exactly one mcp-session-id header")
            return
        sid = named[0].decode("latin-1") if named else ""
        now = time.monotonic()
        self._expire(now)
        if scope["method"] in ("GET", "HEAD") and scope["path"].endswith("/sse"):  # SSE: a session is one stream
            if self.streams[client] >= self.per_client:
                await _reply(send, 429, f"too many open sessions from {client} (at most {self.per_client})")
                return
            self.streams[client] += 1
            try:
                await self.app(scope, receive, send)
            finally:
                self.streams[client] -= 1
            return
        if sid:
            known = self.sessions.get(sid)
            session = known or _Session(client, now)

            def adopt(start: Message) -> None:  # unknown here, but the SDK still holds it (it answers): it counts again
                if known is None and 200 <= start["status"] < 300 and scope["method"] != "DELETE":
                    self.sessions[sid] = session

            watched = _Watched(send, adopt)
            session.busy += 1
            try:
                await self.app(scope, receive, watched)
            finally:
                session.busy -= 1
                session.last_seen = time.monotonic()
                # forgotten when the SDK ended it (a DELETE it answered with success, not any request naming it) or
                # when it expires idle, as the SDK's does
                if scope["method"] == "DELETE" and watched.status is not None and 200 <= watched.status < 300:
                    self.sessions.pop(sid, None)
            return
        if scope["method"] == "POST" and sum(1 for s in self.sessions.values() if s.client == client) >= self.per_client:
            await _reply(send, 429, f"too many open MCP sessions from {client} (at most {self.per_client}): close "
                                    "sessions you no longer use (DELETE), or wait for idle ones to expire")
            return

        def record(start: Message) -> None:
            # a session exists once the SDK accepted the request that opened it (its error replies carry ids too)
            if scope["method"] == "POST" and start["status"] < 300:
                for k, v in start.get("headers", []):
                    if k.lower() == b"mcp-session-id":
                        self.sessions[v.decode("latin-1")] = _Session(client, time.monotonic())

        await self.app(scope, receive, _Watched(send, record))


class BodyLimits:
    """A request body must arrive whole within ``timeout`` seconds and be at most ``max_bytes``."""

    def __init__(self, app: ASGIApp, timeout: float, max_bytes: int) -> None:
        self.app, self.timeout, self.max_bytes = app, timeout, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or []) if scope["type"] == "http" else {}
        announced = headers.get(b"content-length", b"0").strip() not in (b"", b"0") or b"transfer-encoding" in headers
        if scope["type"] != "http" or not (announced or scope["method"] in ("POST", "PUT", "PATCH")):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_bytes:
                        await _reply(send, 413, f"request body larger than {self.max_bytes} bytes", CLOSE)
                        return
                    chunks.append(chunk)
                    if not message.get("more_body"):
                        break
        except TimeoutError:
            await _reply(send, 408, f"request body not received within {self.timeout:g} s", CLOSE)
            return
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # afterwards: the client's disconnect, as the app expects

        await self.app(scope, replay, send)


def guarded_protocol(settings: ServerSettings) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a deadline for each request's headers and connection caps (total, per client)."""
    per_client: Counter[str] = Counter()

    class Guarded(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _counted = False

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            ip = self.client[0] if self.client else "?"
            if len(self.connections) > settings.max_connections or per_client[ip] >= settings.max_connections_per_client:
                self.transport.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                self.transport.close()
                return
            per_client[ip] += 1
            self._counted = True
            self._arm()

        def _arm(self) -> None:
            if self._deadline is None:
                self._deadline = self.loop.call_later(settings.request_timeout, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            if not self.transport.is_closing() and self.conn.their_state == h11.IDLE:
                self.logger.info("closing a connection whose request headers did not arrive in time")
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state == h11.IDLE and not self.transport.is_closing():
                self._arm()  # a request is starting: its headers must arrive in time
            else:
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._counted:
                ip = self.client[0] if self.client else "?"
                per_client[ip] -= 1
                self._counted = False
            super().connection_lost(exc)

    return Guarded


class SseRejections:
    """The SDK's SSE endpoint answers a refused Host/Origin (421/403) and then raises, so uvicorn logs a whole
    traceback per refused request; the SDK's own warning line already says what was refused. Swallow exactly that
    exception, once the refusal has been sent; anything else propagates."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and scope.get("method") == "HEAD":  # the SDK's stream cannot answer HEAD
            await _reply(send, 405, "HEAD is not supported here: open the stream with GET", [(b"allow", b"GET, POST")])
            return
        watched = _Watched(send)
        try:
            await self.app(scope, receive, watched)
        except ValueError as exc:
            if watched.status not in (400, 403, 421) or str(exc) != "Request validation failed":
                raise


class _OneLineRejections(logging.Filter):
    """The SDK's transports log a traceback for malformed requests a client sends (SSE: "Failed to parse message";
    streamable HTTP: "Error handling POST request"): one line each, so a client cannot flood the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.levelno >= logging.WARNING:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()} ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def sse_app(server: Server[Any], security: TransportSecuritySettings) -> Starlette:
    """The legacy SSE transport: a stream per session (GET /sse) and its messages (POST /messages/)."""
    sse = SseServerTransport("/messages/", security_settings=security)

    async def stream(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "GET":  # HEAD included: a stream is opened by GET only
            await _reply(send, 405, "open the event stream with GET")
            return
        async with sse.connect_sse(scope, receive, send) as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    class Stream:  # an ASGI app (Starlette calls a plain function with a Request)
        __call__ = staticmethod(stream)

    return Starlette(routes=[Route("/sse", Stream(), methods=["GET", "HEAD"]),
                             Mount("/messages/", app=sse.handle_post_message)])


def build_app(server: Server[Any], transport: str, host: str, port: int, *, token: str | None,
              allowed_hosts: Sequence[str], settings: ServerSettings) -> Any:
    security = security_settings(host, port, allowed_hosts)
    app: Any
    if transport == "sse":
        app = SseRejections(sse_app(server, security))
    else:
        app = server.streamable_http_app(transport_security=security, host=host,
                                         session_idle_timeout=settings.session_idle_seconds,
                                         max_sessions=settings.max_sessions)
    app = SessionLimits(app, settings.max_sessions_per_client, settings.session_idle_seconds)
    app = BodyLimits(app, settings.request_timeout, settings.max_body_bytes)
    return BearerAuth(app, token) if token else app


async def run_http(server: Server[Any], transport: str, host: str, port: int, *, token: str | None,
                   allowed_hosts: Sequence[str], settings: ServerSettings) -> None:
    for name in ("mcp.server.sse", "mcp.server.transport_security", "mcp.server.streamable_http"):
        logging.getLogger(name).addFilter(_OneLineRejections())
    app = build_app(server, transport, host, port, token=token, allowed_hosts=allowed_hosts, settings=settings)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=5,
                            http=guarded_protocol(settings), timeout_keep_alive=5,
                            h11_max_incomplete_event_size=64 * 1024)
    await uvicorn.Server(config).serve()
