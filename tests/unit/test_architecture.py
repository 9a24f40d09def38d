"""The layers and the public API, checked: dependencies point inward, no import cycle, ``__all__`` pinned."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import rf_mcp

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "rf_mcp"

PUBLIC_API = [
    "CalibrateRequest", "CalibrationProfile", "CalibrationReport", "CollectionsOverview", "Config", "ConfigError",
    "Engine", "EngineError", "EvaluateRequest", "EvaluationReport", "Filter", "GuardrailError", "IndexReport",
    "IndexRequest", "InputError", "ModelError", "PrecisionRequest", "Query", "RFError", "RFService", "RecallRequest",
    "Retriever", "Scorer", "SearchResult", "SparseEncoder", "TrainSettings", "Trainer", "Weights", "__version__",
    "document_text", "load_config", "open_service", "ranking_metrics", "read_qrels", "read_queries",
]


def test_public_api_is_pinned():
    assert sorted(rf_mcp.__all__) == sorted(PUBLIC_API)
    for name in rf_mcp.__all__:
        assert getattr(rf_mcp, name) is not None


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(path: Path, *, top_level_only: bool) -> set[str]:
    """The rf_mcp modules a file imports (at module level only, or anywhere, including inside functions)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m.startswith("rf_mcp")}


def resolve(name: str, known: dict[str, Path]) -> str | None:
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def graph(*, top_level_only: bool) -> dict[str, set[str]]:
    known = modules()
    g = {}
    for mod, path in known.items():
        deps = {resolve(i, known) for i in imports(path, top_level_only=top_level_only)}
        g[mod] = {d for d in deps if d and d != mod and not mod.startswith(d + ".")}  # a package's own __init__
    return g


def test_no_import_cycles():
    g = graph(top_level_only=True)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(g.get(m, ())):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(d):], d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m)


def test_dependencies_point_inward():
    g = graph(top_level_only=False)
    for mod, deps in g.items():
        if mod.startswith("rf_mcp.ports"):  # the seams: types only, one module per concern
            assert all(d == "rf_mcp.errors" or d.startswith("rf_mcp.ports") for d in deps), (mod, deps)
        if mod.startswith("rf_mcp.domain"):  # the domain builds nothing: the composition root passes its adapters
            allowed = ("rf_mcp.domain", "rf_mcp.ports", "rf_mcp.errors", "rf_mcp.config")
            assert all(d.startswith(allowed) for d in deps), (mod, deps)
        if mod.startswith("rf_mcp.adapters"):
            assert not any(d.startswith(("rf_mcp.domain", "rf_mcp.server", "rf_mcp.cli", "rf_mcp.factory",
                                         "rf_mcp.bootstrap")) for d in deps), (mod, deps)
        if not mod.startswith(("rf_mcp.adapters", "rf_mcp.factory")):
            assert not any(d.startswith("rf_mcp.adapters") for d in deps), (mod, deps)
        if "rf_mcp.factory" in deps:  # only the composition root chooses adapters
            assert mod == "rf_mcp.bootstrap", mod


def test_the_server_uses_the_sdk_public_api_only():
    """No private SDK attribute (``_tool_manager``, ``_lowlevel_server``...) and no private SDK module."""
    for path in (PACKAGE / "server").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(("mcp.", "mcp_types")):
                assert not any(part.startswith("_") for part in node.module.split(".")), (path.name, node.module)
                assert not any(a.name.startswith("_") for a in node.names), (path.name, node.module)
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                assert not (isinstance(node.value, ast.Name) and node.value.id in ("server", "ctx", "session")), \
                    (path.name, node.attr)


def test_lazy_exports_match_all():
    """Every public name resolves lazily, and importing the package loads no model runtime or engine."""
    assert set(rf_mcp.__all__) == set(rf_mcp._EXPORTS) | set(rf_mcp._RENAMED) | {"__version__"}
    code = ("import sys, rf_mcp, rf_mcp.cli\n"
            "heavy = [m for m in ('torch', 'fastembed', 'onnxruntime', 'qdrant_client', 'qdrant_edge', "
            "'qdrant_relevance_feedback', 'mcp') if m in sys.modules]\n"
            "print(','.join(heavy) or 'none')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == "none", (r.stdout, r.stderr[-2000:])
