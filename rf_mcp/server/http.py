"""The HTTP transports (streamable HTTP, SSE) and what protects them.

* Binding: loopback by default; another address needs ``--allow-remote`` and a bearer token (or the loudly named
  ``--insecure-no-auth``); a wildcard address needs ``--allowed-host`` (else every remote Host header is refused).
* Auth: ``Authorization: Bearer <token>`` (scheme case-insensitive, compared in constant time, exactly one header);
  an empty or short token is a start-up error.
* Host / Origin: DNS-rebinding protection accepts loopback names, the bound address and ``--allowed-host``.
* Sessions: streamable HTTP is stateless unless the feedback model grades through the client (``[feedback] type =
  "llm"``, ``transport = "sampling"``: its round trips need a session), see :func:`stateless_http`. Stateless, any
  process serves any request (no session affinity behind a load balancer) and there are no sessions to cap.
* One client cannot deny service to all: connections are capped in total and per client address; a request's headers
  and body must arrive within ``request_timeout``; bodies are capped in size; with sessions, the SDK caps them in total
  and closes idle ones, and on a non-loopback bind each client address may hold ``max_sessions_per_client``.

What libraries do: uvicorn caps connections in total (``limit_concurrency``: 503), closes idle keep-alive connections
(``timeout_keep_alive``) and bounds the header size (``h11_max_incomplete_event_size``); the SDK bounds body sizes
(``RequestBodyLimitMiddleware``: 413), caps sessions in total (``max_sessions``: 503) and expires idle ones, and checks
Host/Origin. What is written here, because no maintained library offers it:

* ``BearerAuth``: a static bearer token (the SDK's auth is OAuth: a token verifier and metadata endpoints).
* ``BodyDeadline``: a request body must arrive whole in time (uvicorn has no request-read timeout; Starlette's and the
  SDK's body limits count bytes, not seconds); an answer sent before the body was read ends the connection.
* ``ConnectionGuard``: connections per client address, and a deadline for a request's headers. uvicorn's keep-alive
  timer starts only after a response and is reset by every byte, so a client sending headers byte by byte (or nothing
  at all on a new connection) is never cut off; that needs the connection's parser state, which only the protocol
  has. It wraps uvicorn's h11 protocol (delegation, not a subclass) and reads one thing of it: ``conn``, the public
  ``h11.Connection``.
* ``SessionLimits``: sessions per client address (the SDK's cap counts all clients together). The SDK keeps the
  sessions; this remembers which client opened which and asks the SDK's session table (a private attribute, checked
  at start-up) which are still open, so it never keeps a second copy of their lifetimes.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import h11
import uvicorn
from mcp.server.lowlevel import Server
from mcp.server.sse import SseServerTransport
from mcp.server.transport_security import RequestBodyLimitMiddleware, TransportSecuritySettings
from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from rf_mcp.config import Config, ServerSettings
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


def _client(scope: Scope) -> str:
    return str((scope.get("client") or ("?", 0))[0])


class SessionLimits:
    """At most ``per_client`` open sessions per client address (stateful transports on a non-loopback bind).

    Streamable HTTP: a session is counted from the SDK's answer that opened it for as long as ``is_open(session id)``
    (the SDK's own table: it ends sessions on DELETE and when idle). SSE: a session is its event stream, counted while
    the stream is open.
    """

    def __init__(self, app: ASGIApp, per_client: int, is_open: Callable[[str], bool]) -> None:
        self.app, self.per_client, self.is_open = app, per_client, is_open
        self.opened_by: dict[str, str] = {}  # streamable HTTP: session id -> the client address that opened it
        self.streams: Counter[str] = Counter()  # SSE: open streams per client address

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        named = [v for k, v in scope.get("headers") or [] if k.lower() == b"mcp-session-id"]
        if len(named) > 1:  # the SDK reads the first, a proxy may read the last: one session per request
            await _reply(send, 400, "send exactly one mcp-session-id header")
            return
        client = _client(scope)
        if scope["method"] == "GET" and scope["path"].endswith("/sse"):
            if self.streams[client] >= self.per_client:
                await _reply(send, 429, f"too many open sessions from {client} (at most {self.per_client})")
                return
            self.streams[client] += 1
            try:
                await self.app(scope, receive, send)
            finally:
                self.streams[client] -= 1
            return
        if scope["method"] != "POST" or named:  # only a POST without a session id opens one
            await self.app(scope, receive, send)
            return
        self.opened_by = {sid: c for sid, c in self.opened_by.items() if self.is_open(sid)}
        if sum(c == client for c in self.opened_by.values()) >= self.per_client:
            await _reply(send, 429, f"too many open MCP sessions from {client} (at most {self.per_client}): close "
                                    "sessions you no longer use (DELETE), or wait for idle ones to expire")
            return

        def record(start: Message) -> None:  # the SDK names a session on its refusals too: only accepted ones count
            sid = next((v for k, v in start.get("headers", []) if k.lower() == b"mcp-session-id"), None)
            if sid is not None and start["status"] < 300:
                self.opened_by[sid.decode("latin-1")] = client

        await self.app(scope, receive, _Watched(send, record))


class _TooSlow(Exception):
    """The request body did not arrive in time."""


class BodyDeadline:
    """A request's body must arrive whole within ``timeout`` seconds of its headers (else 408). An answer that starts
    before the body was read whole (a refusal) ends the connection, so the rest of the body is never waited for."""

    def __init__(self, app: ASGIApp, timeout: float) -> None:
        self.app, self.timeout = app, timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        arrived = headers.get(b"content-length", b"0").strip() in (b"", b"0") and b"transfer-encoding" not in headers
        deadline = asyncio.get_running_loop().time() + self.timeout
        started = False

        async def timed() -> Message:
            nonlocal arrived
            if arrived:
                return await receive()  # afterwards: the client's disconnect, whenever it comes
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise _TooSlow from None
            arrived = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def closing(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if not arrived:
                    message = {**message, "headers": [*message.get("headers", []), *CLOSE]}
            await send(message)

        try:
            await self.app(scope, timed, closing)
        except _TooSlow:
            if started:
                raise
            await _reply(send, 408, f"request body not received within {self.timeout:g} s", CLOSE)


def guarded_connections(settings: ServerSettings) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol, wrapped: connections per client address, and a deadline for each request's headers."""
    open_per_client: Counter[str] = Counter()

    class ConnectionGuard(asyncio.Protocol):
        def __init__(self, **uvicorn_arguments: Any) -> None:
            self.inner = H11Protocol(**uvicorn_arguments)
            self.transport: asyncio.Transport | None = None  # set once the connection is admitted
            self.client = "?"
            self.deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            peer = transport.get_extra_info("peername")
            self.client = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
            if open_per_client[self.client] >= settings.max_connections_per_client:
                transport.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                transport.close()
                return
            open_per_client[self.client] += 1
            self.transport = transport
            self.inner.connection_made(transport)
            self._watch()

        def _watch(self) -> None:
            """While a request's headers are awaited (h11: the client is IDLE), they have ``request_timeout``: counted
            from the connection's opening or the request's first byte (idle keep-alive connections: uvicorn's timer)."""
            closing = self.transport is None or self.transport.is_closing()
            waiting = self.inner.conn.their_state is h11.IDLE and not closing
            if waiting and self.deadline is None:
                self.deadline = asyncio.get_running_loop().call_later(settings.request_timeout, self._too_slow)
            elif not waiting and self.deadline is not None:
                self.deadline.cancel()
                self.deadline = None

        def _too_slow(self) -> None:
            self.deadline = None
            if self.transport is not None and self.inner.conn.their_state is h11.IDLE:
                log.info("closing a connection from %s: its request headers did not arrive in time", self.client)
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            self.inner.data_received(data)
            self._watch()

        def eof_received(self) -> None:
            if self.transport is not None:
                self.inner.eof_received()

        def pause_writing(self) -> None:
            if self.transport is not None:
                self.inner.pause_writing()

        def resume_writing(self) -> None:
            if self.transport is not None:
                self.inner.resume_writing()

        def connection_lost(self, exc: Exception | None) -> None:
            if self.transport is None:  # refused: uvicorn never saw it
                return
            if self.deadline is not None:
                self.deadline.cancel()
            open_per_client[self.client] -= 1
            if not open_per_client[self.client]:
                del open_per_client[self.client]
            self.inner.connection_lost(exc)

    return ConnectionGuard


def needs_sessions(config: Config) -> bool:
    """The feedback model grades through the MCP client's own LLM (sampling): its round trips need a session."""
    return config.feedback.grades_through_client


def stateless_http(config: Config) -> bool:
    """``[server] stateless``: unset (auto) means stateless unless the feedback model needs sessions."""
    chosen = config.server.stateless
    if chosen and needs_sessions(config):
        raise ConfigError(
            "[server] stateless = true, but the llm feedback model grades through the client (sampling), whose round "
            "trips need a session.",
            fix='Remove [server] stateless (auto), or grade through an API: [feedback] transport = "http".')
    return not needs_sessions(config) if chosen is None else chosen


class SseRejections:
    """The SDK's SSE endpoint answers a refused Host/Origin (421/403) and then raises, so uvicorn logs a whole
    traceback per refused request; the SDK's own warning line already says what was refused. Swallow exactly that
    exception, once the refusal has been sent. Likewise a message answered (202, or 400 if malformed) and then passed
    to a session whose stream the client closed meanwhile: one line. Anything else propagates."""

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
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            if watched.status is None:
                raise
            log.info("an SSE session ended before the message it was sent could be passed on")


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


def _sdk_sessions(server: Server[Any]) -> Callable[[str], bool]:
    """Whether the SDK still holds a streamable-HTTP session: its session table (private; checked here, at start)."""
    table = getattr(server.session_manager, "_server_instances", None)
    if not isinstance(table, dict):
        raise RuntimeError("the MCP SDK's session manager has no session table: per-client session caps cannot work")
    return table.__contains__


class NoEventStream:
    """Stateless streamable HTTP has no server-to-client stream (nothing is ever sent on it): a GET that opens one
    would only hold a connection open. It is answered 405, as the transport's specification allows."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            await _reply(send, 405, "this stateless server has no event stream: send requests with POST",
                         [(b"allow", b"POST, DELETE")])
            return
        await self.app(scope, receive, send)


def build_app(server: Server[Any], transport: str, host: str, port: int, *, token: str | None,
              allowed_hosts: Sequence[str], settings: ServerSettings, stateless: bool = False) -> Any:
    security = security_settings(host, port, allowed_hosts)
    app: Any
    if transport == "sse":
        app = SseRejections(sse_app(server, security))
        is_open: Callable[[str], bool] | None = frozenset[str]().__contains__  # SSE: a session is its stream
    else:
        app = server.streamable_http_app(transport_security=security, host=host, stateless_http=stateless,
                                         session_idle_timeout=settings.session_idle_seconds,
                                         max_sessions=settings.max_sessions,
                                         max_request_body_size=settings.max_body_bytes)
        is_open = None if stateless else _sdk_sessions(server)
        if stateless:
            app = NoEventStream(app)
    if is_open is not None and not is_loopback(host):  # on loopback, local tools may open a session per call
        app = SessionLimits(app, settings.max_sessions_per_client, is_open)
    app = RequestBodyLimitMiddleware(app, settings.max_body_bytes)  # for SSE too (reads the body before the app)
    app = BearerAuth(app, token) if token else app
    return BodyDeadline(app, settings.request_timeout)


async def run_http(server: Server[Any], transport: str, host: str, port: int, *, token: str | None,
                   allowed_hosts: Sequence[str], settings: ServerSettings, stateless: bool = False) -> None:
    for name in ("mcp.server.sse", "mcp.server.transport_security", "mcp.server.streamable_http"):
        logging.getLogger(name).addFilter(_OneLineRejections())
    app = build_app(server, transport, host, port, token=token, allowed_hosts=allowed_hosts, settings=settings,
                    stateless=stateless)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=5,
                            http=guarded_connections(settings), ws="none", timeout_keep_alive=5,
                            limit_concurrency=settings.max_connections + 1,  # uvicorn counts the new one too
                            h11_max_incomplete_event_size=64 * 1024)
    await uvicorn.Server(config).serve()
