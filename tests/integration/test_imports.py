"""Each module imports on its own, first, in a fresh state: an import cycle or a missing import fails here."""

from __future__ import annotations

import subprocess
import sys

from tests.unit.test_architecture import ROOT, modules


def test_every_module_imports_on_its_own():
    """Each module imported first, in a fresh state (an import cycle or a missing import fails here)."""
    names = sorted(m for m in modules() if not m.endswith("__main__"))  # __main__ runs the CLI
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    for m in [m for m in sys.modules if m == 'rf_mcp' or m.startswith('rf_mcp.')]:\n"
        "        del sys.modules[m]\n"
        "    importlib.import_module(name)\n"
        "print('ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-3000:]


def test_serving_tools_list_loads_no_torch_and_no_model(tmp_path):
    """Serving up to tools/list (config, engine, server) imports neither torch, nor the training library, nor a model
    runtime; list_collections then needs the feedback model's identity (fastembed's model lists) but still no torch:
    torch and the training library load when a calibration first needs them."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[qdrant]\npath = "{tmp_path / "data"}"\n')
    code = (
        "import sys, anyio\n"
        "from rf_mcp.cli import main\n"
        "from rf_mcp.config import load_config\n"
        "from rf_mcp.bootstrap import open_service\n"
        "from rf_mcp.server import build_server\n"
        "from mcp.client.client import Client\n"
        "HEAVY = ('torch', 'qdrant_relevance_feedback', 'pandas', 'fastembed', 'onnxruntime')\n"
        "def loaded():\n"
        "    return ','.join(m for m in HEAVY if m in sys.modules) or 'none'\n"
        "async def run():\n"
        f"    async with open_service(load_config({str(cfg)!r}, env={{}})) as rf, Client(build_server(rf)) as c:\n"
        "        assert len((await c.list_tools()).tools) == 9\n"
        "        print(loaded())\n"
        "        assert not (await c.call_tool('list_collections', {})).is_error\n"
        "        print(loaded())\n"
        "anyio.run(run)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    after_list, after_collections = r.stdout.strip().splitlines()[-2:]
    assert after_list == "none"
    assert not {"torch", "qdrant_relevance_feedback", "pandas"} & set(after_collections.split(","))
