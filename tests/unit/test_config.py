import subprocess
import sys
from pathlib import Path

import pytest

from rf_mcp.config import load_config
from rf_mcp.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent.parent


def test_example_config_is_valid_and_complete():
    cfg = load_config(ROOT / "config.example.toml", env={})
    assert cfg.qdrant.path == "./rf_data" and cfg.qdrant.url is None
    assert cfg.feedback.type == "fastembed"
    text = (ROOT / "config.example.toml").read_text()
    for section in ("qdrant", "retriever", "feedback", "collection", "search"):
        model = type(getattr(cfg, section))
        for key in model.model_fields:
            assert key in text, f"config.example.toml does not document [{section}].{key}"


def test_defaults_without_file():
    cfg = load_config(None, env={})
    assert cfg.qdrant.location == "embedded:./rf_data"
    assert cfg.search.seeds == 5


def test_env_overrides_use_qdrant_mcp_names(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[qdrant]\npath = "/somewhere"\n')
    cfg = load_config(p, env={"QDRANT_URL": "http://127.0.0.1:6333", "QDRANT_API_KEY": "k-secret-42"})
    assert cfg.qdrant.url == "http://127.0.0.1:6333" and cfg.qdrant.path is None
    assert cfg.qdrant.api_key.get_secret_value() == "k-secret-42" and "secret" not in repr(cfg)
    cfg = load_config(None, env={"QDRANT_LOCAL_PATH": str(tmp_path / "x")})
    assert cfg.qdrant.path == str(tmp_path / "x")
    cfg = load_config(None, env={"RF_MCP_CONFIG": str(p)})
    assert cfg.qdrant.path == "/somewhere"


@pytest.mark.parametrize("text, key", [
    ('[retriever]\nmodle = "x"\n', "[retriever].modle"),
    ('[search]\nseeds = 1\n', "[search].seeds"),
    ('[feedback]\ntransport = "pigeon"\n', "[feedback].transport"),
    ('[qdrant]\npath = "a"\nurl = "http://b"\n', "[qdrant]"),
    ('[collection]\ntext_fields = []\n', "[collection].text_fields"),
])
def test_invalid_config_names_the_key(tmp_path, text, key):
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(p, env={})
    assert key in str(err.value) and "Fix:" in str(err.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[qdrant\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad, env={})


def test_cli_exits_2_with_one_clear_line(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[search]\nseeds = "many"\n')
    r = subprocess.run([sys.executable, "-m", "rf_mcp", "--config", str(p), "profiles"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stdout == ""
    assert "[search].seeds" in r.stderr and "Traceback" not in r.stderr
