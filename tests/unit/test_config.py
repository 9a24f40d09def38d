"""Configuration: the file, the environment, paths relative to the file, presets, and clear errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from rf_mcp.config import (
    FEEDBACK_TYPES,
    Bm25Feedback,
    Config,
    FastembedFeedback,
    FeedbackSettings,
    LlmFeedback,
    PluginFeedback,
    auth_token,
    default_data_path,
    env_secret,
    load_config,
)
from rf_mcp.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent.parent


def test_example_config_is_valid_and_complete():
    cfg = load_config(ROOT / "config.example.toml", env={})
    assert cfg.qdrant.path == str(ROOT / "rf_data") and cfg.qdrant.url is None  # relative to the file's folder
    assert cfg.feedback.type == "fastembed" and cfg.source == str(ROOT / "config.example.toml")
    text = (ROOT / "config.example.toml").read_text()
    sections = {name: [type(getattr(cfg, name))] for name in Config.model_fields}
    sections["feedback"] = list(FEEDBACK_TYPES.values())  # every type's keys
    assert set(sections) == {"qdrant", "retriever", "feedback", "collection", "search", "calibration", "server"}
    for section, models in sections.items():
        for key in {k for model in models for k in model.model_fields}:
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
    assert (c.vector_name, c.text_fields) == ("fast-all-minilm-l6-v2", ["document"])
    assert c.sparse_vector == "bm25"  # added by `index --sparse-only` (hybrid search), not there before
    assert c.id_field == "metadata.ref"  # a key set in the file wins over the preset
    other = load_config(p, env={"EMBEDDING_MODEL": "BAAI/bge-small-en-v1.5"}).collection
    assert other.vector_name == "fast-bge-small-en-v1.5"  # named after the model, as mcp-server-qdrant names it
    p.write_text('[collection]\nlayout = "mcp-server-qdrant"\nvector_name = "mine"\n')
    assert load_config(p, env={}).collection.vector_name == "mine"


@pytest.mark.parametrize("text, key", [
    ('[retriever]\nmodle = "x"\n', "[retriever].modle"),
    ('[search]\nseeds = 1\n', "[search].seeds"),
    ('[feedback]\ntype = "llm"\nmodel = "m"\ntransport = "pigeon"\n', "[feedback].transport"),
    ('[feedback]\ntype = "llm"\n', "[feedback].model"),  # an LLM judge names its model
    ('[feedback]\ntype = "bm25"\nk1 = 0\n', "[feedback].k1"),
    ('[feedback]\ntype = ""\n', "[feedback].type"),
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
    from rf_mcp.config import one_thread_per_request

    cfg = one_thread_per_request(Config())
    assert cfg.retriever.threads == 1 and cfg.feedback.threads == 1
    mine = one_thread_per_request(Config.model_validate({"retriever": {"threads": 4}}))
    assert mine.retriever.threads == 4 and mine.feedback.threads == 1


# -- [feedback]: one model per type --------------------------------------------------------------------------------

def test_feedback_defaults_to_the_fastembed_cross_encoder():
    for fb in (Config().feedback, load_config(None, env={}).feedback):
        assert isinstance(fb, FastembedFeedback)
        assert (fb.type, fb.model, fb.kind) == ("fastembed", "Xenova/ms-marco-MiniLM-L-6-v2", "auto")


@pytest.mark.parametrize("text, cls", [
    ('type = "bm25"\nk1 = 2.0', Bm25Feedback),
    ('type = "llm"\nmodel = "gpt"\ntransport = "http"\nbase_url = "http://x/v1"', LlmFeedback),
    ('model = "BAAI/bge-reranker-base"\nkind = "cross-encoder"', FastembedFeedback),  # no type: fastembed
])
def test_each_type_has_its_own_model(tmp_path, text, cls):
    p = tmp_path / "c.toml"
    p.write_text(f"[feedback]\n{text}\n")
    assert type(load_config(p, env={}).feedback) is cls


def test_a_key_of_another_type_is_refused_and_named(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[feedback]\ntype = "bm25"\nbase_url = "http://localhost:8080/v1"\n')
    with pytest.raises(ConfigError) as err:
        load_config(p, env={})
    message = str(err.value)
    assert 'Unknown config key [feedback].base_url for type = "bm25"' in message
    assert "type, k1, b" in message and 'belongs to type = "llm"' in message  # the fix lists the type's keys
    p.write_text('[feedback]\nmodel = "x"\nk1 = 1.5\n')  # the default type (fastembed) takes no BM25 key
    with pytest.raises(ConfigError, match=r'\[feedback\]\.k1 for type = "fastembed".*belongs to type = "bm25"'):
        load_config(p, env={})
    with pytest.raises(ConfigError, match=r'\[feedback\]\.kind for type = "llm"'):  # the file's keys, the variable's type
        load_config(None, env={"RF_MCP_FEEDBACK__TYPE": "llm", "RF_MCP_FEEDBACK__MODEL": "m",
                               "RF_MCP_FEEDBACK__KIND": "dense"})


def test_any_other_type_is_a_plug_in_with_options(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[feedback]\ntype = "overlap"\n[feedback.options]\nmin_len = 4\nwords = ["a"]\n')
    fb = load_config(p, env={}).feedback
    assert isinstance(fb, PluginFeedback) and FeedbackSettings is PluginFeedback  # the name plug-ins import
    assert (fb.type, fb.options) == ("overlap", {"min_len": 4, "words": ["a"]})
    p.write_text('[feedback]\ntype = "overlap"\nmin_len = 4\n')
    with pytest.raises(ConfigError, match=r'\[feedback\]\.min_len for type = "overlap".*\[feedback\.options\]'):
        load_config(p, env={})
    with pytest.raises(ValueError, match="built-in"):
        PluginFeedback(type="bm25")


def test_only_the_sampling_llm_grades_through_the_client():
    assert LlmFeedback(model="m").grades_through_client
    assert not LlmFeedback(model="m", transport="http").grades_through_client
    assert not any(fb.grades_through_client for fb in (FastembedFeedback(), Bm25Feedback(), PluginFeedback(type="x")))


def test_the_retired_model_file_key_still_names_the_onnx_file(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[retriever]\nmodel_path = "m"\nmodel_file = "onnx/model_quantized.onnx"\n'
                 '[feedback]\nmodel_file = "model.onnx"\n')
    cfg = load_config(p, env={})
    assert cfg.retriever.model_path == str(tmp_path / "m" / "onnx" / "model_quantized.onnx")
    assert cfg.feedback.model_path is None


# -- the environment: read here only ----------------------------------------------------------------------------------

def test_only_the_config_module_reads_the_environment():
    readers = [str(f.relative_to(ROOT)) for f in (ROOT / "rf_mcp").rglob("*.py")
               if re.search(r"os\.environ|os\.getenv|getenv\(", f.read_text())]
    assert readers == ["rf_mcp/config.py"]


@pytest.mark.parametrize("value, read_only", [("on", True), ("TRUE", True), (" yes ", True), ("1", True),
                                              ("off", False), ("No", False), ("0", False), ("", False)])
def test_read_only_from_the_environment(value, read_only):
    assert load_config(None, env={"RF_MCP_READ_ONLY": value}).server.read_only is read_only


def test_read_only_variable_refuses_other_values_and_the_file_key_works(tmp_path):
    with pytest.raises(ConfigError, match="RF_MCP_READ_ONLY='maybe' is neither on nor off"):
        load_config(None, env={"RF_MCP_READ_ONLY": "maybe"})
    p = tmp_path / "c.toml"
    p.write_text("[server]\nread_only = true\n")
    assert load_config(p, env={}).server.read_only
    assert not load_config(p, env={"RF_MCP_READ_ONLY": "off"}).server.read_only  # the environment wins


def test_the_http_bearer_token():
    assert auth_token(env={}) is None
    assert auth_token(env={"RF_MCP_AUTH_TOKEN": "t" * 32}) == "t" * 32
    assert auth_token(env={"RF_MCP_AUTH_TOKEN": ""}) == ""  # empty is not "none": the HTTP layer refuses it
    assert auth_token("MY_TOKEN", env={"MY_TOKEN": "m" * 32, "RF_MCP_AUTH_TOKEN": "x"}) == "m" * 32
    with pytest.raises(ConfigError, match="--auth-token-env names MY_TOKEN"):
        auth_token("MY_TOKEN", env={"RF_MCP_AUTH_TOKEN": "t" * 32})


def test_secrets_named_by_a_variable():
    assert env_secret("K", env={"K": "s3cret"}).get_secret_value() == "s3cret"
    assert env_secret("K", env={"K": ""}) is None and env_secret("K", env={}) is None


def test_the_llm_judges_key_is_read_from_the_variable_it_names(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[feedback]\ntype = "llm"\nmodel = "gpt"\ntransport = "http"\nbase_url = "http://x/v1"\n')
    fb = load_config(p, env={"OPENAI_API_KEY": "sk-default-123"}).feedback
    assert isinstance(fb, LlmFeedback) and fb.api_key.get_secret_value() == "sk-default-123"
    assert "sk-default" not in repr(fb) and "sk-default" not in fb.model_dump_json()
    fb = load_config(p, env={"RF_MCP_FEEDBACK__API_KEY_ENV": "JUDGE_KEY", "JUDGE_KEY": "jk-1",
                             "OPENAI_API_KEY": "other"}).feedback
    assert isinstance(fb, LlmFeedback) and fb.api_key.get_secret_value() == "jk-1"
    assert load_config(p, env={}).feedback.api_key is None
    p.write_text('[feedback]\ntype = "llm"\nmodel = "gpt"\napi_key = "in-the-file"\n')
    with pytest.raises(ConfigError, match=r"\[feedback\]\.api_key for type"):  # a key is never a file key
        load_config(p, env={})


def test_precedence_rf_mcp_variables_then_named_variables_then_file_then_defaults(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[retriever]\nmodel = "from/file"\n[collection]\ndefault_collection = "file"\n'
                 '[search]\nseeds = 3\n')
    cfg = load_config(p, env={"EMBEDDING_MODEL": "from/named", "RF_MCP_RETRIEVER__MODEL": "from/prefixed",
                              "COLLECTION_NAME": "named"})
    assert cfg.retriever.model == "from/prefixed"  # RF_MCP_<SECTION>__<KEY> first
    assert cfg.collection.default_collection == "named"  # then the named variables, over the file
    assert cfg.search.seeds == 3 and cfg.search.limit == 10  # then the file, then the defaults
    assert not load_config(p, env={"RF_MCP_SERVER__READ_ONLY": "false", "RF_MCP_READ_ONLY": "on"}).server.read_only
    cfg = load_config(p, env={"RF_MCP_QDRANT__PATH": str(tmp_path / "d"), "QDRANT_URL": "http://h:6333"})
    assert cfg.qdrant.path == str(tmp_path / "d") and cfg.qdrant.url is None  # the higher source's location wins
    p.write_text('[qdrant]\nurl = "http://file:6333"\n')
    cfg = load_config(p, env={"QDRANT_LOCAL_PATH": str(tmp_path / "e")})
    assert cfg.qdrant.path == str(tmp_path / "e") and cfg.qdrant.url is None
    cfg = load_config(None, env={"RF_MCP_FEEDBACK__TYPE": "overlap", "RF_MCP_FEEDBACK__OPTIONS": '{"min_len": 4}'})
    assert cfg.feedback.options == {"min_len": 4}


def test_config_reads_neither_a_file_nor_the_environment_unless_loaded(monkeypatch):
    monkeypatch.setenv("RF_MCP_SEARCH__LIMIT", "7")
    monkeypatch.setenv("RF_MCP_READ_ONLY", "on")
    assert Config().search.limit == 10 and not Config().server.read_only
    assert load_config(None).search.limit == 7 and load_config(None).server.read_only  # os.environ by default


def test_the_source_is_not_a_config_key(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('source = "elsewhere"\n')
    with pytest.raises(ConfigError, match=r"Unknown config key \[source\]"):
        load_config(p, env={})
    assert load_config(None, env={"RF_MCP_SOURCE": "x"}).source is None
