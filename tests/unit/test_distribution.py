"""The distribution: its name and console scripts, the optional training library (the ``calibrate`` extra)."""

from __future__ import annotations

import copy
import importlib
import tomllib
from pathlib import Path

import pytest

from rf_mcp import cli, factory
from rf_mcp.adapters.engines.memory import MemoryEngine
from rf_mcp.adapters.scorers.bm25 import BM25Scorer
from rf_mcp.bootstrap import open_service
from rf_mcp.config import Config
from rf_mcp.errors import ConfigError
from tests.doubles import HashRetriever

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8"))


def test_distribution_name_and_scripts() -> None:
    project = PYPROJECT["project"]
    assert project["name"] == cli.DISTRIBUTION
    scripts = project["scripts"]
    assert set(scripts) == {cli.DISTRIBUTION, "rf-mcp"}
    for target in scripts.values():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), target
    assert scripts[cli.DISTRIBUTION] == "rf_mcp.cli:server_main"


def test_torch_is_an_extra_not_a_base_dependency() -> None:
    base = " ".join(PYPROJECT["project"]["dependencies"]).lower()
    assert "torch" not in base and "relevance-feedback" not in base
    assert any(d.startswith("qdrant-relevance-feedback") for d in PYPROJECT["project"]["optional-dependencies"]["calibrate"])


@pytest.mark.parametrize(("argv", "expected"), [
    ([], ["serve"]),
    (["--config", "c.toml"], ["--config", "c.toml", "serve"]),
    (["--config=c.toml", "--debug"], ["--config=c.toml", "--debug", "serve"]),
    (["index", "-c", "docs"], ["index", "-c", "docs"]),
    (["--config", "c.toml", "serve", "--transport", "sse"], ["--config", "c.toml", "serve", "--transport", "sse"]),
    (["--help"], ["--help"]),
    (["--version"], ["--version"]),
])
def test_server_script_without_a_command_serves_stdio(argv: list[str], expected: list[str]) -> None:
    assert cli.server_argv(argv) == expected


def test_server_script_help_names_itself(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.server_main(["--help"])
    assert capsys.readouterr().out.startswith(f"usage: {cli.DISTRIBUTION}")


@pytest.mark.anyio
async def test_calibrating_without_the_extra_names_the_install_line(templates: dict[str, MemoryEngine],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The default trainer needs no torch; the training library's own trainer names the extra's install line."""
    real = factory.find_spec
    monkeypatch.setattr(factory, "find_spec", lambda name: None if name == "torch" else real(name))
    assert factory.build_trainer().identity.startswith("numpy-fit")
    cfg = Config.model_validate({"qdrant": {"backend": "memory"}, "collection": {"vector_name": "dense"},
                                 "calibration": {"trainer": "library"}})
    rf = open_service(cfg, engine=copy.deepcopy(templates["indexed"]), retriever=HashRetriever(), scorer=BM25Scorer())
    try:
        plain = await rf.search_precision("docs", "solar panels", vanilla=True)  # serving needs no training library
        assert plain.hits
        with pytest.raises(ConfigError) as err:
            await rf.calibrate("docs", [f"query {i}" for i in range(10)])
    finally:
        await rf.close()
    assert "missing: torch" in err.value.problem
    assert err.value.fix is not None and "pip install 'mcp-server-qdrant-rf[calibrate]'" in err.value.fix
    assert "--index-url https://download.pytorch.org/whl/cpu" in err.value.fix
    assert err.value.exit_code == 2
