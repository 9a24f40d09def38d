"""Configuration: a TOML file (``--config`` or ``RF_MCP_CONFIG``) plus environment variables (pydantic-settings).

Precedence, highest first: ``RF_MCP_<SECTION>__<KEY>`` variables (e.g. ``RF_MCP_SEARCH__LIMIT=5``); the names Qdrant's
own MCP server uses where the meaning is the same (``QDRANT_URL``, ``QDRANT_API_KEY``, ``QDRANT_LOCAL_PATH``,
``COLLECTION_NAME``, ``EMBEDDING_MODEL``); the TOML file; the defaults. Relative paths in the file resolve against the
file's folder, not the working directory. Without any location, data lives in the per-user data folder (the
platform's convention). Every invalid value becomes one :class:`ConfigError` naming the key and the fix.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from rf_mcp.errors import ConfigError

CONFIG_ENV = "RF_MCP_CONFIG"
APP = "rf-mcp"


def default_data_path() -> str:
    """Where the embedded engine keeps its data when nothing says otherwise: the per-user data folder."""
    return str(Path(platformdirs.user_data_dir(APP)) / "data")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QdrantSettings(_Section):
    """Where the vectors live: an embedded folder (default) or a Qdrant server."""

    path: str | None = Field(None, description="Folder of the embedded engine (default: the per-user data folder).")
    url: str | None = Field(None, description="URL of a Qdrant server, e.g. http://localhost:6333.")
    api_key: SecretStr | None = Field(None, description="API key for the server (prefer QDRANT_API_KEY); never shown.")
    timeout: float = Field(30.0, gt=0, description="Seconds before a server call fails.")
    backend: Literal["auto", "local", "edge", "memory"] = Field(
        "auto", description="Embedded engine: edge (qdrant-edge-py, Qdrant's Rust engine) or local (qdrant-client); "
                            "auto = the engine that wrote the folder (edge for a new one), or the server when url is "
                            "set; memory = nothing persisted.")
    hnsw_threshold: int = Field(20_000, ge=1, description="edge: `rf-mcp index` builds the HNSW index once a "
                                                           "collection has this many points (exact search below).")
    engine_process: Literal["auto", "on", "off"] = Field(
        "auto", description="Run an embedded engine in its own process, beside the server's Python work (another "
                            "core); auto = on for the HTTP transports, off for stdio and the CLI.")

    @model_validator(mode="after")
    def _one_location(self) -> QdrantSettings:
        if self.path and self.url:
            raise ValueError("set either path (embedded) or url (server), not both")
        if self.url and self.backend in ("edge", "memory"):
            raise ValueError(f'backend = "{self.backend}" is embedded: remove url, or use backend = "auto" for the server')
        return self

    @property
    def data_path(self) -> str:
        """The embedded engine's folder."""
        return self.path or default_data_path()

    @property
    def location(self) -> str:
        """Where the data lives, safe to show (no credentials)."""
        if self.url:
            parts = urlsplit(self.url)
            host = parts.hostname or ""
            netloc = f"{host}:{parts.port}" if parts.port else host
            return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        if self.backend == "memory":
            return "memory"
        return f"embedded:{self.data_path}"


class ModelSettings(_Section):
    """A fastembed model, by name or from a local ONNX folder."""

    model: str = Field(description="fastembed model name (or your own name for a local folder).")
    model_path: str | None = Field(None, description="Local folder with model.onnx + tokenizer.")
    model_file: str = Field("model.onnx", description="ONNX file inside model_path.")
    dim: int | None = Field(None, gt=0, description="Vector size; needed for unknown names.")
    pooling: Literal["mean", "cls"] | None = Field(None, description="Pooling for unknown names.")
    normalize: bool = Field(True, description="L2-normalise embeddings (local folders).")
    threads: int | None = Field(None, gt=0, description="ONNX runtime threads per model call (unset: every core for the "
                                                        "CLI and stdio; 1 for the HTTP transports, where concurrent "
                                                        "requests each take a core).")


class RetrieverSettings(ModelSettings):
    model: str = "sentence-transformers/all-MiniLM-L6-v2"


FeedbackKind = Literal["auto", "cross-encoder", "dense", "late-interaction"]


class FeedbackSettings(ModelSettings):
    type: str = Field(
        "fastembed", min_length=1,
        description="fastembed (a model), bm25 (lexical), llm (an LLM judge), or a plug-in's type name.",
    )
    model: str = "Xenova/ms-marco-MiniLM-L-6-v2"
    kind: FeedbackKind = Field("auto", description="Kind of fastembed model; auto detects it.")
    k1: float = Field(1.2, gt=0, description="BM25 term saturation (type = bm25).")
    b: float = Field(0.75, ge=0, le=1, description="BM25 length normalisation (type = bm25).")
    transport: Literal["sampling", "http"] = Field(
        "sampling", description="llm: grade with the MCP client's own LLM (sampling) or an OpenAI-compatible API."
    )
    base_url: str | None = Field(None, description="llm + http: the API base URL, e.g. https://api.openai.com/v1.")
    api_key_env: str = Field("OPENAI_API_KEY", description="llm + http: environment variable holding the API key.")
    timeout: float = Field(60.0, gt=0, description="llm + http: seconds per request.")
    max_retries: int = Field(2, ge=0, le=10, description="llm + http: retries after a failed request (backoff).")
    concurrency: int = Field(4, ge=1, le=64, description="llm + http: requests in flight at once.")
    batch_size: int = Field(20, ge=1, le=100, description="llm: documents graded per request (listwise).")
    max_doc_chars: int = Field(2000, ge=100, description="llm: each document is cut to this many characters.")
    options: dict[str, Any] = Field(default_factory=dict, description="Options for a plug-in scorer.")


LAYOUTS: dict[str, dict[str, Any]] = {
    # Qdrant's official MCP server (mcp-server-qdrant 0.8): named vector fast-<model> (set from [retriever] model by
    # Config), payload {document, metadata}
    "mcp-server-qdrant": {"text_fields": ["document"], "id_field": "metadata.doc_id", "sparse_vector": ""},
}


class CollectionSettings(_Section):
    layout: Literal["rf-mcp", "mcp-server-qdrant"] = Field(
        "rf-mcp", description='A preset for collections built by another tool: "mcp-server-qdrant" sets vector_name, '
                              "text_fields, id_field and sparse_vector to that server's layout (keys set here win).")
    default_collection: str | None = Field(None, min_length=1, max_length=255,
                                           description="The collection tools use when they name none (COLLECTION_NAME).")
    vector_name: str = Field("dense", description='Named dense vector to search; "" means the unnamed default vector.')
    text_fields: list[str] = Field(default_factory=lambda: ["title", "text"], min_length=1,
                                   description="Payload fields (dotted paths) joined into the text the feedback model reads.")
    id_field: str = Field("doc_id", min_length=1, description="Payload key (a dotted path such as metadata.doc_id) of "
                          "each document's own id: what hits show as doc_id and relevance judgments name.")
    input_id_field: str = Field("_id", min_length=1, description="Field of the corpus JSONL given to `index` that "
                                "holds each document's id (stored under id_field).")
    sparse_vector: str = Field("bm25", max_length=255, description='BM25 sparse vector written by `rf-mcp index` '
                               'and used by fusion = "sparse"; "" = none.')
    filterable_fields: dict[str, Literal["keyword", "integer", "float", "bool"]] = Field(
        default_factory=dict, description="Payload keys searches may filter on, with their type: `index` creates a "
                                          "payload index for each; empty = any key may be filtered.")

    @model_validator(mode="before")
    @classmethod
    def _layout(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("layout") in LAYOUTS:
            return {**LAYOUTS[data["layout"]], **data}
        return data


class SearchSettings(_Section):
    fusion: Literal["auto", "none", "sparse"] = Field(
        "auto", description='Fuse RF with BM25 sparse search: "sparse", "none", or "auto" (sparse when the collection '
                            "has [collection].sparse_vector). Calibrate and search with the same fusion.")
    fusion_seeds: Literal["dense", "hybrid"] = Field(
        "dense", description='With fusion: seeds from the dense ANN top ("dense": one calibration serves both fusions) '
                             'or from the dense + BM25 top ("hybrid": its own calibration).')
    seeds: int = Field(5, ge=2, le=20, description="Seed documents scored per search (guide: 5).")
    limit: int = Field(10, ge=1, le=1000, description="Results returned by default.")
    recall_budget: int = Field(20, ge=1, le=1000, description="RF results scored in recall mode.")
    max_text_chars: int = Field(1000, ge=50, le=100_000, description="Each hit's text is cut to this many characters "
                                                                     "in responses (flagged truncated).")
    drift_warning: float = Field(
        0.2, gt=0, description="Warn when the point count changed by this share since calibration."
    )
    hnsw_ef: int | None = Field(None, ge=16, le=100_000, description="HNSW search breadth of every search (unset: "
                                "the engine's default, and for RF queries a breadth chosen from the feedback's pull).")
    exact: bool = Field(False, description="Search exactly, without the HNSW index (slow on large collections).")


class CalibrationSettings(_Section):
    trainer: Literal["library", "all-pairs"] = Field(
        "library", description="What fits a, b, c: the training library (one context pair per query) or the same "
                               "data, loss and loop fitted to the formula a search runs (every seed pair).")
    pairing: Literal["all", "extremes"] = Field(
        "all", description="Feedback a search sends: every seed, or only the best and the worst seed.")


class ServerSettings(_Section):
    data_roots: list[str] | None = Field(
        None, description="Folders whose files tools may read by path (corpus, queries, qrels, vectors). Default: "
                          "the config file's folder on stdio, none over HTTP (inline data only).")
    query_log: bool = Field(False, description="Keep the distinct queries searched per collection (stored in the "
                                               "collection, query text included) for calibrate/evaluate from_query_log.")
    query_log_size: int = Field(2000, ge=10, le=100_000, description="Distinct queries kept per collection.")
    stateless: bool | None = Field(None, description="Streamable HTTP without sessions (any process serves any "
                                   "request); unset: stateless unless [feedback] grades through the client (sampling).")
    max_sessions: int = Field(100, ge=1, description="HTTP: open MCP sessions at most, all clients together.")
    max_sessions_per_client: int = Field(8, ge=1, description="HTTP: open MCP sessions per client address.")
    session_idle_seconds: float = Field(300.0, gt=0, description="HTTP: a session idle this long is closed.")
    max_connections: int = Field(256, ge=1, description="HTTP: open connections at most (more are refused).")
    max_connections_per_client: int = Field(32, ge=1, description="HTTP: open connections per client address.")
    request_timeout: float = Field(15.0, gt=0, description="HTTP: seconds to receive a request's headers and body.")
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="HTTP: the largest request body accepted.")


class _GivenEnv(EnvSettingsSource):
    """``RF_MCP_<SECTION>__<KEY>`` variables from a given environment mapping (tests pass their own)."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._given = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._given, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


class _McpServerQdrantEnv(PydanticBaseSettingsSource):
    """The environment variables of Qdrant's own MCP server, where they mean the same here."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.env = env

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        e = self.env
        out: dict[str, Any] = {}
        qdrant: dict[str, Any] = {}
        if e.get("QDRANT_URL"):
            qdrant["url"] = e["QDRANT_URL"]
        elif e.get("QDRANT_LOCAL_PATH"):
            qdrant["path"] = e["QDRANT_LOCAL_PATH"]
        if e.get("QDRANT_API_KEY"):
            qdrant["api_key"] = e["QDRANT_API_KEY"]
        if qdrant:
            out["qdrant"] = qdrant
        if e.get("COLLECTION_NAME"):
            out["collection"] = {"default_collection": e["COLLECTION_NAME"]}
        if e.get("EMBEDDING_MODEL"):
            out["retriever"] = {"model": e["EMBEDDING_MODEL"]}
        return out


class Config(BaseSettings):
    model_config = SettingsConfigDict(extra="forbid", frozen=True, env_prefix="RF_MCP_", env_nested_delimiter="__")

    qdrant: QdrantSettings = QdrantSettings()
    retriever: RetrieverSettings = RetrieverSettings()
    feedback: FeedbackSettings = FeedbackSettings()
    collection: CollectionSettings = CollectionSettings()
    search: SearchSettings = SearchSettings()
    calibration: CalibrationSettings = CalibrationSettings()
    server: ServerSettings = ServerSettings()
    source: str | None = Field(None, description="The config file this was read from (set by load_config).")

    @property
    def shown_source(self) -> str:
        """Where this configuration came from, as start-up lines and reports say it."""
        return self.source or "none (built-in defaults and environment variables)"

    @model_validator(mode="before")
    @classmethod
    def _layout_vector(cls, data: Any) -> Any:
        """mcp-server-qdrant names its vector after the embedding model: fast-<last part of the name, lower case>."""
        if not isinstance(data, dict):
            return data
        collection = data.get("collection")
        if isinstance(collection, dict) and collection.get("layout") == "mcp-server-qdrant" \
                and "vector_name" not in collection:
            retriever = data.get("retriever")
            model = retriever.get("model") if isinstance(retriever, dict) else getattr(retriever, "model", None)
            model = model or RetrieverSettings.model_fields["model"].default
            data = {**data, "collection": {**collection, "vector_name": f"fast-{str(model).split('/')[-1].lower()}"}}
        return data

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)  # load_config composes the sources itself, with the environment it is given


def _describe(err: ValidationError) -> ConfigError:
    first = err.errors()[0]
    loc = [str(p) for p in first["loc"]]
    key = f"[{loc[0]}].{'.'.join(loc[1:])}" if len(loc) > 1 else f"[{loc[0]}]" if loc else "(root)"
    if first["type"] == "extra_forbidden":
        return ConfigError(f"Unknown config key {key}.",
                           fix="Remove it or correct its spelling; config.example.toml lists every key.")
    return ConfigError(f"Invalid config value for {key}: {first['msg']}.", fix="Correct it as config.example.toml shows.")


def _resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """Relative paths of the file are relative to the file's folder."""

    def fix(value: Any) -> Any:
        if isinstance(value, str) and value and value != ":memory:" and not Path(value).expanduser().is_absolute():
            return str(base / value)
        return value

    out = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for section, key in (("qdrant", "path"), ("retriever", "model_path"), ("feedback", "model_path")):
        if isinstance(out.get(section), dict) and key in out[section]:
            out[section][key] = fix(out[section][key])
    server = out.get("server")
    if isinstance(server, dict) and isinstance(server.get("data_roots"), list):
        server["data_roots"] = [fix(r) for r in server["data_roots"]]
    return out


def _deep_merge(low: dict[str, Any], high: dict[str, Any]) -> dict[str, Any]:
    out = dict(low)
    for k, v in high.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the config file (if any) and apply the environment (``os.environ`` unless ``env`` is given)."""
    env = dict(os.environ) if env is None else dict(env)
    path = path or env.get(CONFIG_ENV) or None
    data: dict[str, Any] = {}
    source = None
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise ConfigError(f"Config file {p} does not exist.",
                              fix=f"Pass an existing file with --config or {CONFIG_ENV}, or copy config.example.toml.")
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Config file {p} is not valid TOML: {exc}.", fix="Correct its syntax.") from None
        source = str(p.resolve())
        data = _resolve_paths(data, p.resolve().parent)
    try:
        mcp_env = _McpServerQdrantEnv(Config, env)()
        rf_env = _GivenEnv(Config, env)()
        merged = _deep_merge(_deep_merge(data, mcp_env), rf_env)
        if "url" in mcp_env.get("qdrant", {}) or "url" in rf_env.get("qdrant", {}):
            merged["qdrant"].pop("path", None)  # a server named in the environment wins over a folder in the file
        elif "path" in mcp_env.get("qdrant", {}) or "path" in rf_env.get("qdrant", {}):
            merged["qdrant"].pop("url", None)
        return Config(**merged, source=source)
    except ValidationError as exc:
        raise _describe(exc) from None
