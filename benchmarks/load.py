"""Concurrent MCP clients over streamable HTTP: throughput, latency, and how much of the machine the server uses.

    python -m benchmarks.load --shared ../shared                  # engine_process off and on: 1, 2, 4, 50 clients
    python -m benchmarks.load --shared ../shared --only-calibration   # only the 1-client rest phase + "during calibration"
    python -m benchmarks.load --url http://127.0.0.1:8000/mcp     # against a server you started (loopback only)

Without --url it prepares a calibrated SciFact store (BM25 feedback, int8 MiniLM) and, for each [qdrant]
engine_process value, starts ``rf-mcp serve --transport streamable-http`` on it and measures each phase: precision
searches from N clients (a lean httpx MCP client speaking the real protocol: the SDK client costs more CPU than the
server and shares the 2 cores), every query distinct (SciFact's 1,109 queries, suffixed with a number when they run
out, so every search embeds), CPU time of the server process and its children (psutil). *CPU-ms/req* at one client
is the work a request costs; *efficiency* = saturated req/s / (cores / CPU-seconds per request): 1.0 means every core
busy with useful work. Writes load.json and the "load" section of LATENCY.md.

*During calibration* (servers the benchmark starts): one client calls ``calibrate`` with 1,000 SciFact queries inline
(limit 50: 50,000 BM25 scores, under the default ``[server] max_feedback_scores`` of 100,000) while another runs
precision searches, one after the other, until the calibration returns; the searches' p99 is compared with the p50
at rest (the 1-client phase). Each server gets its own copy of the store (the calibration replaces its profile).
``--only-calibration`` runs only the 1-client phase and this one, and writes load_calibration.json and its own
LATENCY.md section (the full table stays as the full run wrote it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import anyio
import httpx

from benchmarks import store
from benchmarks._report import publish
from benchmarks.overhead import free_port, wait_for


def _loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"refusing to load-test {host}: loopback addresses only")


class Queries:
    """Distinct queries, handed out once each."""

    def __init__(self, texts: list[str]) -> None:
        self.texts, self.n = texts, 0

    def next(self) -> str:
        q = self.texts[self.n % len(self.texts)]
        rounds = self.n // len(self.texts)
        self.n += 1
        return q if rounds == 0 else f"{q} ({rounds})"


class LeanClient:
    """A minimal MCP client over streamable HTTP (the real protocol: initialize, initialized, tools/call; SSE or JSON
    answers) with httpx: the Python SDK client costs more CPU per call than the server does, and on a 2-core machine
    the load generator shares the cores with the server."""

    HEADERS: ClassVar[dict[str, str]] = {"accept": "application/json, text/event-stream",
                                         "content-type": "application/json"}

    def __init__(self, url: str, timeout: float = 120) -> None:
        self.url = url
        self.http = httpx.AsyncClient(timeout=timeout)
        self.headers = dict(self.HEADERS)
        self.n = 0

    async def __aenter__(self) -> LeanClient:
        reply = await self._post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "load", "version": "0"}}})
        sid = reply.headers.get("mcp-session-id")  # none from a stateless server
        self.headers |= {"mcp-protocol-version": "2025-06-18", **({"mcp-session-id": sid} if sid else {})}
        await self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if "mcp-session-id" in self.headers:
                await self.http.delete(self.url, headers=self.headers)
        finally:
            await self.http.aclose()

    async def _post(self, message: dict[str, Any]) -> httpx.Response:
        r = await self.http.post(self.url, headers=self.headers, json=message)
        r.raise_for_status()
        return r

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> tuple[bool, str]:
        """(is_error, first text) of a tools/call."""
        self.n += 1
        r = await self._post({"jsonrpc": "2.0", "id": self.n, "method": "tools/call",
                              "params": {"name": name, "arguments": arguments}})
        body = r.text
        if r.headers.get("content-type", "").startswith("text/event-stream"):
            body = next(line[5:] for line in body.splitlines() if line.startswith("data:") and '"id"' in line)
        msg = json.loads(body)
        if "error" in msg:
            return True, str(msg["error"].get("message"))
        result = msg["result"]
        return bool(result.get("isError")), result["content"][0]["text"] if result.get("content") else ""


def cpu_seconds(proc: Any) -> float:
    """User + system CPU seconds of a psutil process and its children."""
    import psutil

    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


async def phase(url: str, clients: int, seconds: float, queries: Queries, server: Any = None,
                collection: str | None = None) -> dict[str, Any]:
    """``clients`` MCP clients searching for ``seconds``; ``server``: a psutil process whose CPU time is measured."""
    latencies: list[float] = []
    errors: list[str] = []
    ready = anyio.Event()
    connected = 0

    async def one() -> None:
        nonlocal connected
        async with LeanClient(url) as client:
            connected += 1
            if connected == clients:
                ready.set()
            await ready.wait()
            while time.monotonic() < deadline:
                t = time.perf_counter()
                args = {"query": queries.next(), "fusion": "none"} | ({"collection": collection} if collection else {})
                is_error, text = await client.call_tool("rf_search_precision", args)
                if is_error and "contrast" not in text:  # seeds without contrast: a legitimate refusal
                    errors.append(text[:200])
                latencies.append((time.perf_counter() - t) * 1000)

    deadline = float("inf")
    async with anyio.create_task_group() as tg:
        for _ in range(clients):
            tg.start_soon(one)
        await ready.wait()
        cpu0, t0 = (cpu_seconds(server) if server else 0.0), time.monotonic()
        deadline = t0 + seconds
    wall = time.monotonic() - t0
    cpu = (cpu_seconds(server) - cpu0) if server else None
    lat = sorted(latencies)
    out: dict[str, Any] = {"clients": clients, "requests": len(lat), "errors": len(errors), "seconds": round(wall, 1),
                           "req_per_s": round(len(lat) / wall, 1), "p50_ms": round(statistics.median(lat), 1),
                           "p99_ms": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 1)}
    if cpu is not None:
        out |= {"cores_used": round(cpu / wall, 2), "cpu_ms_per_req": round(1000 * cpu / max(1, len(lat)), 2)}
    if errors:
        out["first_error"] = errors[0]
    print(json.dumps(out), flush=True)
    return out


def percentiles(latencies: list[float]) -> dict[str, float]:
    lat = sorted(latencies)
    return {"p50_ms": round(statistics.median(lat), 1), "p99_ms": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 1)}


def calibration_queries(shared: Path, n: int) -> list[str]:
    """``n`` distinct SciFact query texts for a calibration: those without dev judgments first, then dev ones."""
    from rf_mcp import read_qrels, read_queries

    sf = shared / "data" / "scifact"
    dev = set(read_qrels(sf / "qrels" / "dev.tsv"))
    qs = read_queries(sf / "queries.jsonl")
    ordered = [q.text.strip() for q in qs if q.id not in dev] + [q.text.strip() for q in qs if q.id in dev]
    texts = list(dict.fromkeys(t for t in ordered if t))[:n]
    if len(texts) < n:
        raise SystemExit(f"only {len(texts)} distinct queries, {n} asked for")
    return texts


async def during_calibration(url: str, queries: Queries, training: list[str], limit: int, server: Any = None,
                             collection: str | None = None) -> dict[str, Any]:
    """One client calls ``calibrate`` with ``training`` while another searches, one search after the other, until
    the calibration returns: the searches' latencies during the calibration and the calibration's wall time."""
    latencies: list[float] = []
    errors: list[str] = []
    searching, finished = anyio.Event(), anyio.Event()
    outcome: dict[str, Any] = {}
    # search texts the calibration never embeds (the retriever caches query embeddings): the next full round
    queries.n = -(-queries.n // len(queries.texts)) * len(queries.texts) or len(queries.texts)

    async def search() -> None:
        async with LeanClient(url) as client:
            searching.set()
            while not finished.is_set():
                t = time.perf_counter()
                args = {"query": queries.next(), "fusion": "none"} | ({"collection": collection} if collection else {})
                is_error, text = await client.call_tool("rf_search_precision", args)
                if is_error and "contrast" not in text:
                    errors.append(text[:200])
                if not finished.is_set():  # a search that ended after the calibration is not "during" it
                    latencies.append((time.perf_counter() - t) * 1000)

    async def calibrate() -> None:
        try:
            async with LeanClient(url, timeout=3600) as client:
                await searching.wait()
                outcome["cpu0"], t = (cpu_seconds(server) if server else 0.0), time.perf_counter()
                args = {"queries": training, "limit": limit} | ({"collection": collection} if collection else {})
                is_error, text = await client.call_tool("calibrate", args)
                outcome.update(seconds=time.perf_counter() - t, is_error=is_error, text=text)
        finally:
            finished.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(search)
        tg.start_soon(calibrate)
    wall = outcome["seconds"]
    try:  # the tool's structured result as text: its message and whether the profile is usable
        report = json.loads(outcome["text"])
        message, usable = report.get("message", ""), report.get("profile", {}).get("usable")
    except (ValueError, AttributeError):
        message, usable = outcome["text"], None
    out: dict[str, Any] = {"calibration_queries": len(training), "calibration_limit": limit,
                           "calibration_seconds": round(wall, 1), "calibration_error": outcome["is_error"],
                           "calibration_usable": usable,
                           "calibration_message": message[:300], "requests": len(latencies),
                           "errors": len(errors), "req_per_s": round(len(latencies) / wall, 1),
                           **percentiles(latencies), "max_ms": round(max(latencies), 1)}
    if server is not None:
        out["cores_used"] = round((cpu_seconds(server) - outcome["cpu0"]) / wall, 2)
    if errors:
        out["first_error"] = errors[0]
    print(json.dumps(out), flush=True)
    return out


def summary(phases: list[dict[str, Any]], cores: int) -> dict[str, Any]:
    one = phases[0]
    best = max(phases, key=lambda p: p["req_per_s"])
    out: dict[str, Any] = {"phases": phases}
    if one["clients"] == 1 and "cpu_ms_per_req" in one:
        capacity = cores / (one["cpu_ms_per_req"] / 1000)
        out |= {"capacity_req_per_s": round(capacity, 1), "saturated_req_per_s": best["req_per_s"],
                "efficiency": round(best["req_per_s"] / capacity, 2),
                "p99_at_max_over_p50_at_1": round(phases[-1]["p99_ms"] / one["p50_ms"], 1)}
    return out


async def measure(url: str, a: argparse.Namespace, texts: list[str], server: Any, cores: int,
                  training: list[str]) -> dict[str, Any]:
    _loopback(url)
    queries = Queries(texts)
    await phase(url, 1, 3, queries, server)  # warm-up: models loaded, code paths warm (not reported)
    out = summary([await phase(url, n, a.seconds, queries, server) for n in a.clients], cores)
    if a.calibration_queries:
        during = await during_calibration(url, queries, training, a.calibration_limit, server)
        rest = next((p for p in out["phases"] if p["clients"] == 1), None)
        if rest is not None:
            during |= {"p50_at_rest_ms": rest["p50_ms"],
                       "p99_over_p50_at_rest": round(during["p99_ms"] / rest["p50_ms"], 1)}
        out["during_calibration"] = during
    return out


async def run(a: argparse.Namespace) -> dict[str, Any]:
    import psutil

    shared = Path(a.shared)
    texts = store.distinct_queries(shared, 1100)
    cores = psutil.cpu_count(logical=True) or 1
    result: dict[str, Any] = {"cores": cores, "load_average_before": [round(x, 2) for x in os.getloadavg()],
                              "serve_args": a.serve_args, "only_calibration": a.only_calibration, "variants": {}}
    if a.url is not None:  # someone else's server: no calibration (it would replace theirs)
        a.calibration_queries = 0
        result["variants"]["given server"] = await measure(a.url, a, texts, None, cores, [])
        return result
    training = calibration_queries(shared, a.calibration_queries) if a.calibration_queries else []
    tmp = Path(tempfile.mkdtemp(prefix="rf-load-"))
    try:
        (tmp / "prepared").mkdir()
        await store.prepare(shared, tmp / "prepared")
        for variant in a.engine_process:  # one server after the other, each on its own copy (calibrate replaces)
            config = store.copy(shared, tmp / "prepared", tmp / variant)
            port = free_port()
            env = {**os.environ, "RF_MCP_QDRANT__ENGINE_PROCESS": variant,
                   "RF_MCP_SERVER__MAX_SESSIONS_PER_CLIENT": str(max(a.clients) + 8),
                   "RF_MCP_SERVER__MAX_CONNECTIONS_PER_CLIENT": str(2 * max(a.clients) + 8)}  # all from 127.0.0.1
            proc = subprocess.Popen([sys.executable, "-m", "rf_mcp", "--config", str(config), "serve",
                                     "--transport", "streamable-http", "--port", str(port), *a.serve_args],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            try:
                wait_for(port, proc)
                print(f"engine_process = {variant}", flush=True)
                result["variants"][f"engine_process = {variant}"] = await measure(
                    f"http://127.0.0.1:{port}/mcp", a, texts, psutil.Process(proc.pid), cores, training)
            finally:
                proc.terminate()
                proc.wait(timeout=60)
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def markdown(r: dict[str, Any]) -> str:
    title = "## Load over streamable HTTP" + (": at rest and during a calibration" if r.get("only_calibration") else "")
    lines = [title, "",
             f"Precision searches (fusion none) on SciFact from concurrent clients, distinct queries, {r['cores']} "
             f"cores shared with the load generator; server options: `{' '.join(r['serve_args']) or '(defaults)'}`. "
             "*cores used* and *CPU-ms/req*: the server's process and its children. Load average before the run "
             f"(1, 5, 15 min): {', '.join(map(str, r.get('load_average_before', [])))}.", "",
             "| server | clients | requests | errors | req/s | p50 ms | p99 ms | cores used | CPU-ms/req |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, v in r["variants"].items():
        for p in v["phases"]:
            lines.append(f"| {name} | {p['clients']} | {p['requests']} | {p['errors']} | {p['req_per_s']} | "
                         f"{p['p50_ms']} | {p['p99_ms']} | {p.get('cores_used', '-')} | {p.get('cpu_ms_per_req', '-')} |")
        d = v.get("during_calibration")
        if d:
            lines.append(f"| {name} | 1 during calibration | {d['requests']} | {d['errors']} | {d['req_per_s']} | "
                         f"{d['p50_ms']} | {d['p99_ms']} | {d.get('cores_used', '-')} | - |")
    lines.append("")
    for name, v in r["variants"].items():
        d = v.get("during_calibration")
        if d and "p50_at_rest_ms" in d:
            lines.append(f"- {name}, during calibration ({d['calibration_queries']} queries, limit "
                         f"{d['calibration_limit']}: {d['calibration_seconds']} s"
                         f"{', FAILED' if d['calibration_error'] else ''}): searches' p99 {d['p99_ms']} ms / p50 at "
                         f"rest {d['p50_at_rest_ms']} ms = **{d['p99_over_p50_at_rest']}x** (target: at most 10x); "
                         f"p50 during {d['p50_ms']} ms, slowest {d['max_ms']} ms.")
        if "efficiency" in v and len(v["phases"]) > 1:
            lines.append(f"- {name}: capacity at one client's CPU cost {v['capacity_req_per_s']} req/s; saturated "
                         f"{v['saturated_req_per_s']} req/s; **efficiency {v['efficiency']}**; p99 at "
                         f"{v['phases'][-1]['clients']} clients / p50 at 1 client: {v['p99_at_max_over_p50_at_1']}x.")
    return "\n".join(lines)


async def main(a: argparse.Namespace) -> None:
    r = await run(a)
    name = "load_calibration" if a.only_calibration else "load"  # a partial run keeps the full table
    publish(name, r, markdown(r), section=a.url is None)  # another server's figures stay out of LATENCY.md


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--shared", default="../shared")
    p.add_argument("--url", help="an already running server (loopback only); default: start one")
    p.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4, 50])
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--engine-process", type=lambda s: s.split(","), default=["off", "on"],
                   help="[qdrant] engine_process values to compare, one server each")
    p.add_argument("--calibration-queries", type=int, default=1000,
                   help="queries of the calibrate call in the 'during calibration' phase (0: no such phase)")
    p.add_argument("--calibration-limit", type=int, default=50, help="its limit (candidates scored per query)")
    p.add_argument("--only-calibration", action="store_true",
                   help="only the 1-client phase (the p50 at rest) and the 'during calibration' phase")
    p.add_argument("--serve-args", nargs=argparse.REMAINDER, default=[], help="extra `rf-mcp serve` arguments")
    args = p.parse_args()
    if args.only_calibration:
        args.clients = [1]
    anyio.run(main, args)
