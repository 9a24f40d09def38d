"""How fast `rf-mcp serve` answers its first tools/list over stdio, and how much memory it holds while idle.

    python -m benchmarks.startup --shared ../shared         # 5 starts on a calibrated SciFact store

Each start: a new `rf-mcp serve` process; time from launch to the tools/list answer; RSS (psutil) one second later,
and after a first precision search (models loaded). Also the import time of `rf_mcp.cli` alone. Writes startup.json
and the "startup" section of LATENCY.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from benchmarks import store
from benchmarks._report import publish


def rpc(proc: subprocess.Popen[bytes], message: dict[str, Any]) -> dict[str, Any] | None:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write((json.dumps(message) + "\n").encode())
    proc.stdin.flush()
    if "id" not in message:
        return None
    return json.loads(proc.stdout.readline())  # type: ignore[no-any-return]


def one_start(config: Path) -> dict[str, float]:
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "rf_mcp", "--config", str(config), "serve"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        rpc(proc, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}})
        rpc(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        listed = rpc(proc, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        first = time.perf_counter() - t0
        assert listed is not None and listed["result"]["tools"]
        time.sleep(1.0)
        idle = psutil.Process(proc.pid).memory_info().rss / 1024**2
        t1 = time.perf_counter()
        answer = rpc(proc, {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "rf_search_precision", "arguments": {"query": "statins and muscle pain", "fusion": "none"}}})
        search = time.perf_counter() - t1
        assert answer is not None and "result" in answer, answer
        loaded = psutil.Process(proc.pid).memory_info().rss / 1024**2
        return {"first_tools_list_s": first, "idle_rss_mb": idle, "first_search_s": search, "loaded_rss_mb": loaded}
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


def import_seconds() -> float:
    code = "import time; t = time.perf_counter(); import rf_mcp.cli; print(time.perf_counter() - t)"
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


async def run(a: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="rf-startup-"))
    try:
        config = await store.prepare(Path(a.shared), tmp)
        starts = [one_start(config) for _ in range(a.starts)]
        imports = [import_seconds() for _ in range(a.starts)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = {k: round(statistics.median(s[k] for s in starts), 2) for k in starts[0]}
    return {"starts": a.starts, **med, "import_cli_ms": round(1000 * statistics.median(imports), 1)}


def markdown(r: dict[str, Any]) -> str:
    return "\n".join([
        "## Start-up", "",
        f"`rf-mcp serve` over stdio on a calibrated SciFact store; medians of {r['starts']} starts.", "",
        "| first tools/list | idle RSS | first search (loads the models) | RSS after it | `import rf_mcp.cli` |",
        "|---|---|---|---|---|",
        f"| {r['first_tools_list_s']} s | {r['idle_rss_mb']:.0f} MB | {r['first_search_s']} s | "
        f"{r['loaded_rss_mb']:.0f} MB | {r['import_cli_ms']} ms |"])


async def main(a: argparse.Namespace) -> None:
    r = await run(a)
    publish("startup", r, markdown(r))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--shared", default="../shared")
    p.add_argument("--starts", type=int, default=5)
    anyio.run(main, p.parse_args())
