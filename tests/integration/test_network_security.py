"""Network exposure and denial of service: a real server process, raw sockets and the real SDK client.

The servers here use the in-memory engine and load no model (tools/list and the protocol need none), so they
start in about a second.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.server.mcpserver import MCPServer

from rf_mcp.config import ServerSettings, load_config
from rf_mcp.errors import ConfigError
from rf_mcp.server.http import BearerAuth, SseRejections, build_app, security_settings, stateless_http
from tests.integration.serving import free_port

pytestmark = pytest.mark.anyio
TOKEN = "tok-" + "a" * 32
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def config(tmp: Path, server: str = "") -> Path:
    p = tmp / "c.toml"
    p.write_text(f'[qdrant]\nbackend = "memory"\n[feedback]\ntype = "bm25"\n[server]\n{server}\n')
    return p


def serve(tmp: Path, *extra: str, env: dict[str, str] | None = None, server: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rf_mcp", "--config", str(config(tmp, server)), "serve", *extra],
                          capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})


class Live:
    """A streamable-HTTP server process on a free port."""

    def __init__(self, tmp: Path, *extra: str, host: str = "127.0.0.1", env: dict[str, str] | None = None,
                 server: str = "", transport: str = "streamable-http") -> None:
        self.host, self.port = host, free_port()
        self.err = (tmp / f"live-{self.port}.err").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rf_mcp", "--config", str(config(tmp, server)), "serve", "--transport",
             transport, "--host", host, "--port", str(self.port), *extra],
            stdout=subprocess.DEVNULL, stderr=self.err, env={**os.environ, **(env or {})})
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection((host, self.port), timeout=0.2).close()
                return
            except OSError:
                assert self.proc.poll() is None, (tmp / f"live-{self.port}.err").read_text()
                time.sleep(0.1)
        raise TimeoutError("server did not start")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/mcp"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.err.close()


# -- 2. network exposure ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, env, needle", [
    (["--host", "0.0.0.0"], {}, "--allow-remote"),
    (["--host", "0.0.0.0", "--allow-remote"], {}, "without authentication"),
    (["--host", "0.0.0.0", "--allow-remote"], {"RF_MCP_AUTH_TOKEN": ""}, "is empty"),
    (["--host", "0.0.0.0", "--allow-remote"], {"RF_MCP_AUTH_TOKEN": "short"}, "too short"),
    (["--host", "127.0.0.1"], {"RF_MCP_AUTH_TOKEN": ""}, "is empty"),  # an empty token never silently means "none"
    (["--host", "0.0.0.0", "--allow-remote"], {"RF_MCP_AUTH_TOKEN": TOKEN}, "--allowed-host"),
    (["--auth-token-env", "RF_MCP_TEST_UNSET_TOKEN"], {}, "RF_MCP_TEST_UNSET_TOKEN"),
])
def test_unsafe_network_setups_refuse_to_start(tmp_path, args, env, needle):
    r = serve(tmp_path, "--transport", "streamable-http", "--port", str(free_port()), *args, env=env)
    assert r.returncode == 2 and needle in r.stderr, r.stderr


async def test_bearer_token_exactly_one_header_any_scheme_case():
    async def ok_app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = BearerAuth(ok_app, TOKEN)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        assert (await http.get("/", headers={"authorization": f"Bearer {TOKEN}"})).status_code == 200
        assert (await http.get("/", headers={"authorization": f"bearer {TOKEN}"})).status_code == 200
        assert (await http.get("/", headers={"authorization": "Bearer wrong"})).status_code == 401
        assert (await http.get("/")).status_code == 401
        both = [("authorization", "Bearer wrong"), ("authorization", f"Bearer {TOKEN}")]
        assert (await http.get("/", headers=httpx.Headers(both))).status_code == 401  # duplicates are refused


async def test_a_server_on_127_0_0_2_answers_requests_to_its_own_address(tmp_path):
    assert "127.0.0.2:8123" in security_settings("127.0.0.2", 8123).allowed_hosts
    live = Live(tmp_path, host="127.0.0.2")
    try:
        async with Client(live.url) as client:
            assert {t.name for t in (await client.list_tools()).tools} >= {"rf_search_precision"}
    finally:
        live.stop()


def test_start_banner_on_stderr(tmp_path):
    live = Live(tmp_path, env={"RF_MCP_AUTH_TOKEN": TOKEN})
    live.stop()
    banner = Path(live.err.name).read_text()
    assert f"serving on http://127.0.0.1:{live.port}/mcp" in banner and "auth: bearer token required" in banner
    assert "read-only: off" in banner and "files tools may read: none" in banner
    assert f"config: {tmp_path / 'c.toml'}" in banner and "data: memory" in banner


def test_stdio_start_banner_says_where_on_stderr_only(tmp_path):
    """Over stdio the same lines go to stderr (stdout is the protocol channel); stdin closed: the server ends."""
    r = subprocess.run([sys.executable, "-m", "rf_mcp", "--config", str(config(tmp_path)), "serve"], input="",
                       capture_output=True, text=True, timeout=60)
    assert r.stdout == "" and "serving on stdio" in r.stderr, r.stderr
    assert f"config: {tmp_path / 'c.toml'}" in r.stderr and "data: memory" in r.stderr


def test_version():
    from rf_mcp import __version__

    r = subprocess.run([sys.executable, "-m", "rf_mcp", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == f"rf-mcp {__version__}", (r.stdout, r.stderr)


# -- 3. one client must not deny service to all -------------------------------------------------------------------
def _mcp(server: str = "127.0.0.1", settings: ServerSettings | None = None, stateless: bool = False):
    """The real SDK's streamable-HTTP app behind this module's guards, in process (a bind address is only a name)."""
    mcp = MCPServer("t")
    app = build_app(mcp, "streamable-http", server, 8000, token=None, allowed_hosts=["t:8000"],
                    settings=settings or ServerSettings(max_sessions_per_client=2), stateless=stateless)
    return mcp, app


def _http(app, client: str = "10.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(client, 1234)),
                             base_url="http://127.0.0.1:8000", headers=HEADERS)


async def _opened(http: httpx.AsyncClient) -> str | int:
    """Open a session: its id, or the refusal's status."""
    r = await http.post("/mcp", json=INIT)
    return r.headers["mcp-session-id"] if r.status_code == 200 else r.status_code


async def test_sessions_per_client_are_capped_as_long_as_the_sdk_holds_them():
    """A non-loopback bind: each client address may hold 2 sessions; they count while the SDK holds them (until a
    DELETE it accepted, or idle expiry), refused openings never count, and other addresses have their own 2."""
    import anyio

    mcp, app = _mcp("0.0.0.0", ServerSettings(max_sessions_per_client=2, session_idle_seconds=0.5))
    async with mcp.session_manager.run(), _http(app) as http, _http(app, "10.0.0.2") as other:
        first, second = await _opened(http), await _opened(http)
        assert isinstance(first, str) and isinstance(second, str)
        third = await http.post("/mcp", json=INIT)
        assert third.status_code == 429 and "at most 2" in third.text
        assert isinstance(await _opened(other), str)  # another client address
        assert (await http.delete("/elsewhere", headers={"mcp-session-id": first})).status_code == 404
        assert await _opened(http) == 429  # a request naming a session does not end it
        two = httpx.Headers([("mcp-session-id", first), ("mcp-session-id", second)])
        assert (await http.delete("/mcp", headers=two)).status_code == 400  # which one? neither: refused
        assert (await http.delete("/mcp", headers={"mcp-session-id": first})).status_code == 200
        assert isinstance(await _opened(http), str)  # a closed session frees its place
        assert await _opened(http) == 429
        await anyio.sleep(1.0)  # the SDK closed the idle ones
        for _ in range(3):  # refused openings never count: the SDK discards those sessions
            assert (await http.post("/mcp", content=b"broken")).status_code == 400
        assert isinstance(await _opened(http), str) and isinstance(await _opened(http), str)


async def test_on_loopback_only_the_total_bounds_sessions():
    """Local tools (MCP Inspector opens a session per call and never closes it) are not refused after a few calls;
    the SDK's total still applies."""
    mcp, app = _mcp("127.0.0.1", ServerSettings(max_sessions_per_client=2, max_sessions=5))
    async with mcp.session_manager.run(), _http(app, "127.0.0.1") as http:
        assert all([isinstance(await _opened(http), str) for _ in range(5)])
        assert await _opened(http) == 503  # the SDK's total


async def test_stateless_has_no_sessions_to_cap():
    mcp, app = _mcp("0.0.0.0", ServerSettings(max_sessions_per_client=1, max_sessions=1), stateless=True)
    async with mcp.session_manager.run(), _http(app) as http:
        for _ in range(5):
            r = await http.post("/mcp", json=INIT)
            assert r.status_code == 200 and "mcp-session-id" not in r.headers


def test_stateless_unless_the_feedback_model_needs_the_client():
    def config(stateless, type_="bm25", transport="sampling"):
        env = {"RF_MCP_FEEDBACK__TYPE": type_}
        if type_ == "llm":
            env |= {"RF_MCP_FEEDBACK__MODEL": "judge", "RF_MCP_FEEDBACK__TRANSPORT": transport}
        if stateless is not None:
            env["RF_MCP_SERVER__STATELESS"] = str(stateless).lower()
        return load_config(env=env)

    assert stateless_http(config(None)) and stateless_http(config(None, "llm", "http"))
    assert not stateless_http(config(None, "llm")) and not stateless_http(config(False))
    assert stateless_http(config(True, "fastembed"))
    with pytest.raises(ConfigError, match="sampling"):  # set, but it cannot work: a start-up error
        stateless_http(config(True, "llm"))


def _rpc(http: httpx.Client, method: str, sid: str | None = None, rid: int = 2) -> tuple[httpx.Response, dict]:
    body = INIT if method == "initialize" else {"jsonrpc": "2.0", "id": rid, "method": method}
    r = http.post("/mcp", json=body, headers={"mcp-session-id": sid} if sid else {})
    data = [line[5:] for line in r.text.splitlines() if line.startswith("data:")]
    return r, json.loads(data[-1] if data else r.text)


@pytest.mark.parametrize("stateless", ["", "stateless = false"])
def test_30_loopback_clients_that_never_close_their_sessions_are_served(tmp_path, stateless):
    """Default (stateless: there are no sessions) and with sessions: on loopback no per-client cap refuses them."""
    live = Live(tmp_path, server=stateless)
    try:
        for _ in range(30):  # each a new client (a new connection) that opens a session and leaves it open
            with httpx.Client(base_url=f"http://127.0.0.1:{live.port}", headers=HEADERS, timeout=10) as http:
                r, _ = _rpc(http, "initialize")
                assert r.status_code == 200, r.text
                sid = r.headers.get("mcp-session-id")
                assert (sid is None) == (stateless == "")
                http.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                          headers={"mcp-session-id": sid} if sid else {})
                r, reply = _rpc(http, "tools/list", sid)
                assert r.status_code == 200 and reply["result"]["tools"], r.text
    finally:
        live.stop()


def test_stateless_serves_requests_with_no_session_or_another_processes(tmp_path):
    """Behind a load balancer any process serves any request: no session id, or one another process issued."""
    live = Live(tmp_path)  # [server] stateless unset, bm25 feedback: stateless
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{live.port}", headers=HEADERS, timeout=10) as http:
            for sid in (None, "0123456789abcdef0123456789abcdef"):  # no initialize first, either
                r, reply = _rpc(http, "tools/list", sid)
                assert r.status_code == 200 and {t["name"] for t in reply["result"]["tools"]} >= {
                    "rf_search_precision"}, r.text
            stream = http.get("/mcp", headers={"accept": "text/event-stream"})  # nothing is ever sent on one
            assert stream.status_code == 405 and stream.headers["allow"] == "POST, DELETE"
    finally:
        live.stop()


def _half_request(host: str, port: int) -> socket.socket:
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never finished
    return s


def _closed(s: socket.socket, within: float) -> bool:
    """The server ends the connection within ``within`` seconds (after whatever it answered first)."""
    deadline = time.monotonic() + within
    try:
        while True:
            s.settimeout(max(deadline - time.monotonic(), 0.01))
            if not s.recv(1024):
                return True
    except TimeoutError:
        return False
    except OSError:  # reset: closed too
        return True


async def test_slow_senders_are_cut_off_and_connections_capped(tmp_path):
    live = Live(tmp_path, server="request_timeout = 1\nmax_connections_per_client = 6")
    try:
        slow = [_half_request("127.0.0.1", live.port) for _ in range(4)]
        t0 = time.perf_counter()
        async with Client(live.url) as client:  # established clients keep being served meanwhile
            assert (await client.list_tools()).tools
        assert all(_closed(s, within=5) for s in slow)  # headers that never finish: closed after ~1 s
        assert time.perf_counter() - t0 < 8
        for s in slow:
            s.close()
        with socket.create_connection(("127.0.0.1", live.port), timeout=10) as s:  # headers byte by byte
            t0 = time.perf_counter()
            with pytest.raises(OSError):  # each byte would restart uvicorn's keep-alive timer: not this deadline
                for byte in b"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"x" * 100:
                    s.send(bytes([byte]))
                    time.sleep(0.1)
            assert time.perf_counter() - t0 < 5
        body = json.dumps(INIT).encode()
        s = socket.create_connection(("127.0.0.1", live.port), timeout=10)
        s.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:%d\r\ncontent-type: application/json\r\n"
                  b"accept: application/json, text/event-stream\r\ncontent-length: %d\r\n\r\n" % (live.port, len(body))
                  + body[:10])  # a body that never finishes
        s.settimeout(8)
        assert b"408" in s.recv(4096).split(b"\r\n")[0]
        s.close()
        for method in (b"GET", b"DELETE", b"OPTIONS"):  # a body announced by any method must arrive too
            s = socket.create_connection(("127.0.0.1", live.port), timeout=10)
            s.sendall(method + b" /mcp HTTP/1.1\r\nHost: 127.0.0.1:%d\r\ncontent-length: 1000\r\n\r\n" % live.port)
            s.settimeout(8)
            assert b"408" in s.recv(4096).split(b"\r\n")[0], method
            s.settimeout(1)  # and the connection ends with the answer: its slot is free at once
            while s.recv(4096):  # the rest of the answer, then the end (a timeout here: still open)
                pass
            s.close()
        many = [socket.create_connection(("127.0.0.1", live.port), timeout=10) for _ in range(7)]
        many[-1].settimeout(5)
        assert many[-1].recv(1024).startswith(b"HTTP/1.1 503")  # the 7th connection of one client is refused
        for c in many:
            c.close()
    finally:
        live.stop()


def test_connections_are_capped_in_total(tmp_path):
    """uvicorn's limit: past max_connections open connections (any clients), a request is answered 503."""
    live = Live(tmp_path, server="max_connections = 4\nmax_connections_per_client = 2")
    try:
        with ExitStack() as held:  # 4 connections from 127.0.0.2 and .3 (not .1: the start-up probe's may linger)
            for source in ("127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3"):
                held.enter_context(socket.create_connection(("127.0.0.1", live.port), timeout=10,
                                                            source_address=(source, 0)))
            with socket.create_connection(("127.0.0.1", live.port), timeout=10, source_address=("127.0.0.4", 0)) as s:
                s.sendall(b"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % live.port)
                assert s.recv(1024).startswith(b"HTTP/1.1 503")
                assert _closed(s, within=5)
        time.sleep(0.3)
        with httpx.Client(base_url=f"http://127.0.0.1:{live.port}", headers=HEADERS, timeout=10) as http:
            assert _rpc(http, "tools/list")[0].status_code == 200  # room again
    finally:
        live.stop()


def test_server_settings_defaults_bound_everything():
    s = ServerSettings()
    assert s.max_sessions_per_client < s.max_sessions and s.session_idle_seconds <= 600
    assert s.request_timeout <= 30 and s.max_connections_per_client < s.max_connections


# -- 7. stdio: every request with a usable id gets an answer -----------------------------------------------------
def test_stdio_answers_malformed_requests(tmp_path):
    lines = [
        json.dumps(INIT),
        json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json.dumps({"jsonrpc": "1.0", "id": 2, "method": "tools/list"}),
        json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": []}),
        '{"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "x", "arguments": {"q": "\\ud800"}}}',
        '{"jsonrpc": "2.0", "id": "\\ud800", "method": "tools/list"}',
        "not json at all",
        json.dumps({"jsonrpc": "2.0", "id": 6, "method": "tools/call",  # over the 16 MiB line limit
                    "params": {"name": "rf_search_precision", "arguments": {"query": "x" * (17 * 1024 * 1024)}}}),
        '{"jsonrpc": "2.0", "id": 7.5, "method": "tools/list"}',  # MCP ids are strings or integers
        '{"jsonrpc": "2.0", "id": 8.0, "method": "tools/list"}',
        json.dumps([{"jsonrpc": "2.0", "id": 10, "method": "ping"}, {"jsonrpc": "2.0", "id": 11, "method": "ping"}]),
        '{"jsonrpc": "2.0", "id": 12, "method": "tools/list", "params": ' + "[" * 100_000 + "]" * 100_000 + "}",
        # the id after deep params, a nested "id" first: answered to the top-level id (13), never to 999
        '{"jsonrpc": "2.0", "method": "tools/list", "params": {"id": 999, "x": ' + "[" * 5000 + "]" * 5000 + '}, "id": 13}',
        "[" * 1000 + '"id":"\\q"' + "]" * 1000,  # invalid JSON everywhere: no id to answer, and no crash
        '{"id": "\\q", "x": "' + "y" * (17 * 1024 * 1024) + '"}',  # over the limit, an id that is not JSON
        '{"jsonrpc": "1.0", "id": 14, "method": "tools/list", "params": {"n": ' + "9" * 5000 + "}}",  # past int limit
        json.dumps({"jsonrpc": "2.0", "id": 5, "method": "tools/list"}),
    ]
    r = subprocess.run([sys.executable, "-m", "rf_mcp", "--config", str(config(tmp_path)), "serve"],
                       input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=60)
    replies = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]  # stdout: JSON-RPC only
    by_id = {str(m.get("id")): m for m in replies}
    for rid in ("2", "3", "4", "6", "8", "10", "11", "12", "13", "14"):
        assert "error" in by_id[rid] and by_id[rid]["error"]["code"] == -32600, (rid, r.stdout[:2000])
    assert "16 MiB" in by_id["6"]["error"]["message"] and "batches" in by_id["10"]["error"]["message"]
    nulls = [m["error"]["message"] for m in replies if m.get("id") is None]  # ids no client can be matched by
    assert any("string or an integer" in m for m in nulls) and any("16 MiB" in m for m in nulls)  # 7.5, "\q"
    assert "nested too deeply" in by_id["12"]["error"]["message"] and "999" not in by_id
    assert r.returncode == 0, r.stderr[-2000:]  # every line answered or passed over; the server ends with stdin
    assert any("error" in m and m["id"] not in (2, 3, 4) for m in replies)  # the lone-surrogate id, as replaced text
    assert "result" in by_id["5"] and by_id["5"]["result"]["tools"]  # and it keeps serving


async def test_stdio_client_sees_a_clean_protocol(tmp_path):
    params = StdioServerParameters(command=sys.executable, args=["-m", "rf_mcp", "--config", str(config(tmp_path)),
                                                                 "serve"], env=dict(os.environ))
    async with Client(params) as client:
        assert len((await client.list_tools()).tools) == 9
        prompts = await client.list_prompts()
        assert [p.name for p in prompts.prompts] == ["rf_workflow"]
        got = await client.get_prompt("rf_workflow", {"collection": "docs"})
        assert "calibrate" in got.messages[0].content.text
        templates = await client.list_resource_templates()
        assert templates.resource_templates[0].uri_template == "rf-mcp://collections/{collection}/profiles"


async def test_sse_logs_one_line_per_refused_host(tmp_path):
    """The SSE transport logged a whole traceback for each request with a foreign Host or Origin: one line each."""
    live = Live(tmp_path, transport="sse")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{live.port}", timeout=10) as http:
            for headers, status in (({"host": "evil.example"}, 421), ({"origin": "http://evil.example"}, 403)) * 2:
                async with http.stream("GET", "/sse", headers=headers) as r:
                    assert r.status_code == status
                r = await http.post("/messages/?session_id=" + "0" * 32, headers={**headers, **HEADERS}, content="{}")
                assert r.status_code == status
            for _ in range(5):  # HEAD on the stream: refused, not served around the stream cap with a traceback each
                assert (await http.head("/sse")).status_code == 405
            async with http.stream("GET", "/sse") as stream, httpx.AsyncClient(base_url=http.base_url) as other:
                async for line in stream.aiter_lines():
                    if line.startswith("data:"):
                        endpoint = line[5:].strip()
                        break
                bad = await other.post(endpoint, content="not json", headers={"content-type": "application/json"})
                assert bad.status_code == 400  # a malformed message: one log line, not the SDK's traceback
    finally:
        live.stop()
    log = (tmp_path / f"live-{live.port}.err").read_text()
    assert "Traceback" not in log and sum(" header: " in line for line in log.splitlines()) == 8, log
    assert sum("Failed to parse message (ValidationError" in line for line in log.splitlines()) == 1, log


async def test_sse_message_answered_after_its_session_ended_is_one_line():
    """The SDK answers a message, then passes it to its session: if the client closed the stream in between, that
    raises (a traceback per message); refused before any answer, it still propagates."""
    import anyio

    async def answered_then_gone(scope, receive, send):
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        raise anyio.ClosedResourceError

    async def gone(scope, receive, send):
        raise anyio.ClosedResourceError

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=SseRejections(answered_then_gone)),
                                 base_url="http://t") as http:
        assert (await http.post("/messages/", content=b"{}")).status_code == 202
    with pytest.raises(anyio.ClosedResourceError):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=SseRejections(gone)), base_url="http://t") as h:
            await h.post("/messages/", content=b"{}")


@pytest.mark.parametrize(("value", "shown"), [("on", "read-only: on"), ("TRUE", "read-only: on"), ("off", "read-only: off"),
                                              ("maybe", "is neither on nor off")])
def test_read_only_from_the_environment(tmp_path, value, shown):
    for json_flag in ([], ["--json"]):  # a start-up error never reaches stdout (the stdio protocol channel)
        r = subprocess.run([sys.executable, "-m", "rf_mcp", "--config", str(config(tmp_path)), *json_flag, "serve"],
                           input="", capture_output=True, text=True, timeout=60,
                           env={**os.environ, "RF_MCP_READ_ONLY": value})
        assert shown in r.stderr and (r.returncode != 0) == (value == "maybe") and r.stdout == "", (r.stdout, r.stderr)
