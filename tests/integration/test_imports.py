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
