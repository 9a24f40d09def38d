"""Configuration: the file, the environment, paths relative to the file, presets, and clear errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from rf_mcp.config import Config, default_data_path, load_config
from rf_mcp.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent.parent


def test_example_config_is_valid_and_complete():
    cfg = load_config(ROOT / "config.example.toml", env={})
    assert cfg.qdrant.path == str(ROOT / "rf_data") and cfg.qdrant.url is None  # relative to the file's folder
    assert cfg.feedback.type == "fastembed" and cfg.source == str(ROOT / "config.example.toml")
    text = (ROOT / "config.example.toml").read_text()
    for section in ("qdrant", "retriever", "feedback", "collection", "search", "calibration", "server"):
        model = type(getattr(cfg, section))
        for key in model.model_fields:
            documented = re.search(rf"^#? ?{key} *=", text, re.M) or f"[{section}.{key}]" in text
            assert documented, f"config.example.toml does not document [{section}].{key}"


def test_readme_toml_blocks_are_whole_files(tmp_path):
    """Each ```toml block of the README loads on its own (no key declared twice, no unknown key)."""
    blocks = [b for b in re.findall(r"```toml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
              if "pyproject.toml" not in b.splitlines()[0]]  # a plug-in's own packaging file is not a config
    assert blocks
    for i, block in enumerate(blocks):
        p = tmp_path / f"readme-{i}.toml"
        p.write_text(block)
        load_config(p, env={})


def test_without_a_file_data_goes_to_the_per_user_folder():
    cfg = load_config(None, env={})
    assert cfg.qdrant.data_path == default_data_path() and cfg.source is None
    assert cfg.qdrant.location == f"embedded:{default_data_path()}"
    assert cfg.search.seeds == 5


def test_relative_paths_resolve_against_the_config_files_folder(tmp_path, monkeypatch):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "c.toml").write_text('[qdrant]\npath = "data"\n[retriever]\nmodel_path = "../models/m"\n'
                                 '[server]\ndata_roots = ["corpora", "/abs"]\n')
    monkeypatch.chdir(tmp_path)  # launched from elsewhere, as an MCP client does
    cfg = load_config(Path("conf/c.toml"), env={})
    assert cfg.qdrant.path == str(conf / "data")
    assert cfg.retriever.model_path == str(conf / "../models/m")
    assert cfg.server.data_roots == [str(conf / "corpora"), "/abs"]


def test_environment_names_of_qdrants_own_mcp_server_and_rf_mcp_variables(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[qdrant]\npath = "/somewhere"\n[search]\nlimit = 3\n')
    env = {"QDRANT_URL": "http://127.0.0.1:6333", "QDRANT_API_KEY": "k-secret-42", "COLLECTION_NAME": "docs",
           "EMBEDDING_MODEL": "BAAI/bge-small-en-v1.5", "RF_MCP_SEARCH__LIMIT": "7"}
    cfg = load_config(p, env=env)
    assert cfg.qdrant.url == "http://127.0.0.1:6333" and cfg.qdrant.path is None  # the environment wins
    assert cfg.qdrant.api_key.get_secret_value() == "k-secret-42" and "secret" not in repr(cfg)
    assert cfg.collection.default_collection == "docs" and cfg.retriever.model == "BAAI/bge-small-en-v1.5"
    assert cfg.search.limit == 7
    cfg = load_config(None, env={"QDRANT_LOCAL_PATH": str(tmp_path / "x")})
    assert cfg.qdrant.path == str(tmp_path / "x")
    cfg = load_config(None, env={"RF_MCP_CONFIG": str(p)})
    assert cfg.qdrant.path == "/somewhere" and cfg.search.limit == 3


def test_the_mcp_server_qdrant_layout_preset(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[collection]\nlayout = "mcp-server-qdrant"\nid_field = "metadata.ref"\n')
    c = load_config(p, env={}).collection
    assert (c.vector_name, c.text_fields, c.sparse_vector) == ("fast-all-minilm-l6-v2", ["document"], "")
    assert c.id_field == "metadata.ref"  # a key set in the file wins over the preset
    other = load_config(p, env={"EMBEDDING_MODEL": "BAAI/bge-small-en-v1.5"}).collection
    assert other.vector_name == "fast-bge-small-en-v1.5"  # named after the model, as mcp-server-qdrant names it
    p.write_text('[collection]\nlayout = "mcp-server-qdrant"\nvector_name = "mine"\n')
    assert load_config(p, env={}).collection.vector_name == "mine"


@pytest.mark.parametrize("text, key", [
    ('[retriever]\nmodle = "x"\n', "[retriever].modle"),
    ('[search]\nseeds = 1\n', "[search].seeds"),
    ('[feedback]\ntransport = "pigeon"\n', "[feedback].transport"),
    ('[qdrant]\npath = "a"\nurl = "http://b"\n', "[qdrant]"),
    ('[collection]\ntext_fields = []\n', "[collection].text_fields"),
    ('[server]\nmax_sessions = 0\n', "[server].max_sessions"),
    ('[collection]\nlayout = "unknown"\n', "[collection].layout"),
])
def test_invalid_config_names_the_key(tmp_path, text, key):
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(p, env={})
    assert key in str(err.value) and "Fix:" in str(err.value)


def test_invalid_environment_value_names_the_key():
    with pytest.raises(ConfigError, match=r"\[search\].limit"):
        load_config(None, env={"RF_MCP_SEARCH__LIMIT": "many"})


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[qdrant\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad, env={})


def test_config_is_frozen():
    cfg = Config()
    with pytest.raises(ValueError):
        cfg.search = cfg.search  # type: ignore[misc]


def test_cli_exits_2_with_one_clear_line(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[search]\nseeds = "many"\n')
    r = subprocess.run([sys.executable, "-m", "rf_mcp", "--config", str(p), "profiles"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stdout == ""
    assert "[search].seeds" in r.stderr and "Traceback" not in r.stderr


def test_http_serving_runs_one_onnx_thread_per_call_unless_configured():
    from rf_mcp.server.app import one_thread_per_request

    cfg = one_thread_per_request(Config())
    assert cfg.retriever.threads == 1 and cfg.feedback.threads == 1
    mine = one_thread_per_request(Config.model_validate({"retriever": {"threads": 4}}))
    assert mine.retriever.threads == 4 and mine.feedback.threads == 1
