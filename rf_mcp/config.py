"""Configuration: a TOML file (``--config`` or ``RF_MCP_CONFIG``) plus environment variables (pydantic-settings).

Precedence, highest first: ``RF_MCP_<SECTION>__<KEY>`` variables (e.g. ``RF_MCP_SEARCH__LIMIT=5``); variables with
names of their own: those Qdrant's own MCP server uses where the meaning is the same (``QDRANT_URL``,
``QDRANT_API_KEY``, ``QDRANT_LOCAL_PATH``, ``COLLECTION_NAME``, ``EMBEDDING_MODEL``) and ``RF_MCP_READ_ONLY``; the
TOML file; the defaults (pydantic-settings sources, composed in :meth:`Config.settings_customise_sources`). A server
or a folder named by a higher source replaces the other kind named by a lower one. Relative paths in the file
resolve against the file's folder, not the working directory. Without any location, data lives in the per-user data
folder (the platform's convention). Every invalid value becomes one :class:`ConfigError` naming the key and the fix.

``[feedback]`` is one model per ``type`` (a discriminated union): fastembed (the default), bm25, llm, or any other
name for a plug-in (its options in ``[feedback.options]``); each type takes only its own keys.

This module is the only one that reads the environment: the file's overrides, the LLM judge's API key (the variable
``[feedback] api_key_env`` names, held by :class:`LlmFeedback`), the HTTP bearer token (:func:`auth_token`) and
other secrets named by a variable (:func:`env_secret`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    SecretStr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from rf_mcp.domain.requests import Budget, HnswEf, Limit, Seeds
from rf_mcp.errors import ConfigError

CONFIG_ENV = "RF_MCP_CONFIG"
READ_ONLY_ENV = "RF_MCP_READ_ONLY"
AUTH_TOKEN_ENV = "RF_MCP_AUTH_TOKEN"
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
    timeout: float = Field(30.0, gt=0, description="Seconds before a call to the server, or to the engine process "
                                                   "(engine_process), fails; an engine process that answers "
                                                   "nothing in that time is restarted.")
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
    """A fastembed model, by name or from a local ONNX model (``[retriever]``, and ``[feedback]`` type fastembed)."""

    model: str = Field(description="fastembed model name (or your own name for a local model).")
    model_path: str | None = Field(None, description="Local model: its folder (holding model.onnx and tokenizer.json), "
                                                     "or the ONNX file itself, e.g. /models/m/onnx/model_quantized.onnx "
                                                     "(tokenizer.json beside it or one folder up).")
    dim: int | None = Field(None, gt=0, description="Vector size; needed for unknown names.")
    pooling: Literal["mean", "cls"] | None = Field(None, description="Pooling for unknown names.")
    threads: int | None = Field(None, gt=0, description="ONNX runtime threads per model call (unset: every core for the "
                                                        "CLI and stdio; 1 for the HTTP transports, where concurrent "
                                                        "requests each take a core).")

    @model_validator(mode="before")
    @classmethod
    def _model_file(cls, data: Any) -> Any:
        """Deprecated ``model_file`` (the ONNX file inside model_path): folded into model_path, which names it now."""
        if isinstance(data, dict) and "model_file" in data:
            data = dict(data)
            name = data.pop("model_file")
            if isinstance(name, str) and name != "model.onnx" and isinstance(data.get("model_path"), str):
                data["model_path"] = str(Path(data["model_path"]) / name)
        return data


class RetrieverSettings(ModelSettings):
    model: str = "sentence-transformers/all-MiniLM-L6-v2"
    normalize: bool = Field(True, description="L2-normalise the embeddings of a local model.")


FeedbackKind = Literal["auto", "cross-encoder", "dense", "late-interaction"]
BUILT_IN_FEEDBACK = ("bm25", "fastembed", "llm")
PLUGIN_TAG = "plug-in"  # the union's tag for every other type name


class _FeedbackType(_Section):
    """What every ``[feedback]`` type has: its name, and only its own keys (another type's key is an error naming it)."""

    type: str

    @property
    def grades_through_client(self) -> bool:
        """Whether the MCP client's own LLM grades (sampling): the protocol layer asks it for a search's grades."""
        return False

    @model_validator(mode="before")
    @classmethod
    def _own_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = set(cls.model_fields) | ({"model_file"} if "model_path" in cls.model_fields else set())
            unknown = [str(k) for k in data if k not in known]
            if unknown:
                raise PydanticCustomError("feedback_key", "unknown key {key} for type {type}",
                                          {"key": unknown[0], "type": str(data.get("type", "fastembed")),
                                           "keys": ", ".join(cls.model_fields)})
        return data


class FastembedFeedback(ModelSettings, _FeedbackType):
    """A fastembed cross-encoder, dense or late-interaction model (the default)."""

    type: Literal["fastembed"] = Field("fastembed", description='fastembed (a model), bm25 (lexical), llm (an LLM '
                                                                "judge), or a plug-in's type name.")
    model: str = "Xenova/ms-marco-MiniLM-L-6-v2"
    kind: FeedbackKind = Field("auto", description="Kind of fastembed model; auto detects it.")


class Bm25Feedback(_FeedbackType):
    """Lexical BM25 with the collection's own term statistics."""

    type: Literal["bm25"] = "bm25"
    k1: float = Field(1.2, gt=0, description="BM25 term saturation.")
    b: float = Field(0.75, ge=0, le=1, description="BM25 length normalisation.")


class LlmFeedback(_FeedbackType):
    """An LLM judge: the MCP client's own LLM (sampling) or an OpenAI-compatible API (http)."""

    type: Literal["llm"] = "llm"
    model: str = Field(min_length=1, description="The LLM's name (with sampling: a name for the client's LLM, part "
                                                 "of the calibration's identity).")
    transport: Literal["sampling", "http"] = Field(
        "sampling", description="Grade with the MCP client's own LLM (sampling) or an OpenAI-compatible API (http)."
    )
    base_url: str | None = Field(None, description="http: the API base URL, e.g. https://api.openai.com/v1.")
    api_key_env: str = Field("OPENAI_API_KEY", min_length=1, description="http: environment variable holding the API key.")
    timeout: float = Field(60.0, gt=0, description="http: seconds per request.")
    max_retries: int = Field(2, ge=0, le=10, description="http: retries after a failed request (backoff).")
    concurrency: int = Field(4, ge=1, le=64, description="http: requests in flight at once.")
    batch_size: int = Field(20, ge=1, le=100, description="Documents graded per request (listwise).")
    max_doc_chars: int = Field(2000, ge=100, description="Each document is cut to this many characters.")
    max_tokens: int | None = Field(None, ge=16, le=100_000, description="http: a cap on each reply's tokens, sent as "
                                   "max_tokens (None: not sent). For a local model that may ramble past the JSON: "
                                   "about 64 + 24 x batch_size.")
    structured_output: Literal["auto", "on", "off"] = Field(
        "auto", description="http: send the reply's JSON schema (response_format json_schema; where refused, json_object "
                            "with the schema); auto: fall back to plain requests once if the endpoint refuses both, on: "
                            "never fall back, off: never send it."
    )
    _api_key: SecretStr | None = PrivateAttr(None)

    @property
    def grades_through_client(self) -> bool:
        return self.transport == "sampling"

    @property
    def api_key(self) -> SecretStr | None:
        """The key held by the variable ``api_key_env`` names, as :func:`load_config` read it (never from the file)."""
        return self._api_key

    def with_api_key_from(self, env: Mapping[str, str] | None = None) -> LlmFeedback:
        """These settings holding the key of the variable ``api_key_env`` names (``os.environ`` unless ``env``)."""
        copy = self.model_copy()
        copy._api_key = env_secret(self.api_key_env, env)
        return copy


class PluginFeedback(_FeedbackType):
    """A plug-in scorer: any other type name, published under the ``rf_mcp.scorers`` entry-point group."""

    type: str = Field(min_length=1, description="The plug-in's entry-point name.")
    options: dict[str, Any] = Field(default_factory=dict, description="Options for a plug-in scorer.")

    @field_validator("type")
    @classmethod
    def _not_built_in(cls, value: str) -> str:
        if value in BUILT_IN_FEEDBACK:
            raise ValueError(f'"{value}" is a built-in type, not a plug-in')
        return value


FeedbackSettings = PluginFeedback
"""What a plug-in's factory receives (``[feedback] type = "<its name>"``, ``[feedback.options]`` as ``.options``)."""

FEEDBACK_TYPES: dict[str, type[_FeedbackType]] = {"fastembed": FastembedFeedback, "bm25": Bm25Feedback,
                                                   "llm": LlmFeedback, PLUGIN_TAG: PluginFeedback}


def _feedback_tag(data: Any) -> str:
    """The union member for a ``[feedback]`` table: a built-in type, else the plug-in model (no type: fastembed)."""
    name = data.get("type", "fastembed") if isinstance(data, dict) else getattr(data, "type", "fastembed")
    return name if name in BUILT_IN_FEEDBACK else PLUGIN_TAG


Feedback = Annotated[
    Annotated[FastembedFeedback, Tag("fastembed")] | Annotated[Bm25Feedback, Tag("bm25")]
    | Annotated[LlmFeedback, Tag("llm")] | Annotated[PluginFeedback, Tag(PLUGIN_TAG)],
    Discriminator(_feedback_tag),
]
"""The ``[feedback]`` section: one model per ``type``, each with only its own keys."""


LAYOUTS: dict[str, dict[str, Any]] = {
    # Qdrant's official MCP server (mcp-server-qdrant 0.8): named vector fast-<model> (set from [retriever] model by
    # Config), payload {document, metadata}; no sparse vector until `index --sparse-only` adds [collection].sparse_vector
    "mcp-server-qdrant": {"text_fields": ["document"], "id_field": "metadata.doc_id"},
}


class CollectionSettings(_Section):
    layout: Literal["rf-mcp", "mcp-server-qdrant"] = Field(
        "rf-mcp", description='A preset for collections built by another tool: "mcp-server-qdrant" sets vector_name, '
                              "text_fields and id_field to that server's layout (keys set here win).")
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
    seeds: Seeds = 5
    limit: Limit = 10
    recall_budget: Budget = 20
    max_text_chars: int = Field(1000, ge=50, le=100_000, description="Each hit's text is cut to this many characters "
                                                                     "in responses (flagged truncated).")
    drift_warning: float = Field(
        0.2, gt=0, description="Warn when the point count changed by this share since calibration."
    )
    hnsw_ef: HnswEf | None = Field(None, description="HNSW search breadth of every search (unset: the engine's "
                                   "default, and for RF queries a breadth chosen from the feedback's pull).")
    exact: bool = Field(False, description="Search exactly, without the HNSW index (slow on large collections).")
    max_exact_points: int = Field(100_000, ge=0, description="Refuse exact search (a tool's exact=true, or exact "
                                  "above) on a collection of more points than this: one exact query scans them all.")
    max_hnsw_ef: int = Field(10_000, ge=16, le=100_000, description="Refuse a search asking for a wider HNSW search "
                             "breadth (hnsw_ef) than this.")

    @model_validator(mode="after")
    def _ef_within_maximum(self) -> SearchSettings:
        if self.hnsw_ef is not None and self.hnsw_ef > self.max_hnsw_ef:
            raise ValueError(f"hnsw_ef = {self.hnsw_ef} is over max_hnsw_ef = {self.max_hnsw_ef}")
        return self


class CalibrationSettings(_Section):
    trainer: Literal["numpy", "library", "all-pairs"] = Field(
        "numpy", description="What fits a, b, c: the training library's rows, loss and loop in numpy (no torch), the "
                             "training library itself (torch), or its data, loss and loop fitted to the formula a "
                             "search runs (every seed pair; torch).")
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
    max_feedback_scores: int = Field(100_000, ge=1, description="Feedback-model scores one call may cost at most "
                                     "(calibrate, evaluate, searches), refused up front with the estimate; a "
                                     "call's own max_feedback_scores can lower it, never raise it.")
    read_only: bool = Field(False, description="Nothing a client calls changes stored data (also --read-only, or "
                                               "RF_MCP_READ_ONLY=on).")


ON = ("1", "true", "yes", "on")
OFF = ("0", "false", "no", "off")


def _on_off(variable: str, value: str) -> bool | None:
    """An on/off variable: 1/true/yes/on or 0/false/no/off (any case); empty = unset; anything else is an error."""
    flag = value.strip().lower()
    if flag in ON or flag in OFF:
        return flag in ON
    if not flag:
        return None
    raise ConfigError(f"{variable}={flag[:20]!r} is neither on nor off.",
                      fix=f"Set {variable} to 1/true/yes/on or 0/false/no/off, or pass --read-only.")


def _one_location(data: dict[str, Any]) -> dict[str, Any]:
    """A server (url) or a folder (path) named by a source replaces the other kind named by the sources below it."""
    qdrant = data.get("qdrant")
    if isinstance(qdrant, dict):
        if qdrant.get("url") and "path" not in qdrant:
            data["qdrant"] = {**qdrant, "path": None}
        elif qdrant.get("path") and "url" not in qdrant:
            data["qdrant"] = {**qdrant, "url": None}
    return data


class _ConfigFile(TomlConfigSettingsSource):
    """The TOML file, with its relative paths resolved against its folder (``init_kwargs`` is the parsed file)."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls, toml_file=path)
        self.init_kwargs = _resolve_paths(self.init_kwargs, path.parent)


class _PrefixedVariables(EnvSettingsSource):
    """``RF_MCP_<SECTION>__<KEY>`` variables of the environment :func:`load_config` was given (tests pass their own).

    EnvSettingsSource reads ``os.environ`` into its public ``env_vars`` when built: they are replaced by the given
    mapping, keyed as it keys them (lower case, as the settings are case-insensitive)."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.env_vars = {k if self.case_sensitive else k.lower(): v for k, v in env.items()
                         if not (self.env_ignore_empty and v == "")}

    def __call__(self) -> dict[str, Any]:
        return _one_location(super().__call__())


class _NamedVariables(PydanticBaseSettingsSource):
    """Variables with names of their own: Qdrant's MCP server's (where they mean the same here) and RF_MCP_READ_ONLY."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.env = env

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
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
        read_only = _on_off(READ_ONLY_ENV, e.get(READ_ONLY_ENV, ""))
        if read_only is not None:
            out["server"] = {"read_only": read_only}
        return _one_location(out)


@dataclass(frozen=True)
class _Loading:
    file: Path | None
    env: Mapping[str, str]


_LOADING: ContextVar[_Loading | None] = ContextVar("rf_mcp_config_loading", default=None)


class Config(BaseSettings):
    """The whole configuration. ``Config(...)`` takes its arguments and the defaults only; :func:`load_config` adds
    the file and the environment."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True, env_prefix="RF_MCP_", env_nested_delimiter="__")

    qdrant: QdrantSettings = QdrantSettings()
    retriever: RetrieverSettings = RetrieverSettings()
    feedback: Feedback = FastembedFeedback()
    collection: CollectionSettings = CollectionSettings()
    search: SearchSettings = SearchSettings()
    calibration: CalibrationSettings = CalibrationSettings()
    server: ServerSettings = ServerSettings()
    _source: str | None = PrivateAttr(None)

    @property
    def source(self) -> str | None:
        """The config file this was read from (set by load_config)."""
        return self._source

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
        """Highest first: arguments, RF_MCP_<SECTION>__<KEY>, the named variables, the file (then the defaults).

        Outside :func:`load_config` only the arguments: building a ``Config`` reads neither a file nor the environment."""
        loading = _LOADING.get()
        if loading is None:
            return (init_settings,)
        sources: list[PydanticBaseSettingsSource] = [init_settings, _PrefixedVariables(settings_cls, loading.env),
                                                     _NamedVariables(settings_cls, loading.env)]
        if loading.file is not None:
            sources.append(_ConfigFile(settings_cls, loading.file))
        return tuple(sources)


def _describe(err: ValidationError) -> ConfigError:
    first = err.errors()[0]
    loc = [str(p) for p in first["loc"]]
    if first["type"] == "feedback_key":
        ctx = first.get("ctx") or {}
        key, name = ctx.get("key"), ctx.get("type")
        if name in BUILT_IN_FEEDBACK:
            owners = [f'type = "{t}"' for t in BUILT_IN_FEEDBACK if t != name and key in FEEDBACK_TYPES[t].model_fields]
            fix = f'type = "{name}" takes only: {ctx.get("keys")}.'
            fix += f" {key} belongs to {' or '.join(owners)}." if owners else ""
        else:
            fix = "A plug-in type takes only type; its own settings go in the [feedback.options] table."
        return ConfigError(f'Unknown config key [feedback].{key} for type = "{name}".',
                           fix=fix + " Remove the key or correct its spelling; config.example.toml shows each type's keys.")
    if len(loc) > 1 and loc[0] == "feedback" and loc[1] in FEEDBACK_TYPES:
        del loc[1]  # the union's tag: the key is [feedback].<key>
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


def one_thread_per_request(config: Config) -> Config:
    """Models run one ONNX thread per call unless configured: where calls embed one query each (HTTP requests,
    calibrate, evaluate, search), a second thread only spins (measured: twice the CPU per query embedding for the
    same latency under load; 2 of calibrate's 4.7 CPU-seconds on 100 SciFact queries)."""
    models = [("retriever", config.retriever)] + ([("feedback", config.feedback)]
                                                   if isinstance(config.feedback, FastembedFeedback) else [])
    update = {name: section.model_copy(update={"threads": 1}) for name, section in models if section.threads is None}
    return config.model_copy(update=update) if update else config


def load_config(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the config file (if any) and apply the environment (``os.environ`` unless ``env`` is given)."""
    env = dict(os.environ) if env is None else dict(env)
    path = path or env.get(CONFIG_ENV) or None
    file = None
    if path is not None:
        file = Path(path).expanduser()
        if not file.is_file():
            raise ConfigError(f"Config file {file} does not exist.",
                              fix=f"Pass an existing file with --config or {CONFIG_ENV}, or copy config.example.toml.")
        file = file.resolve()
    token = _LOADING.set(_Loading(file, env))
    try:
        config = Config()
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Config file {file} is not valid TOML: {exc}.", fix="Correct its syntax.") from None
    except ValidationError as exc:
        raise _describe(exc) from None
    finally:
        _LOADING.reset(token)
    config._source = str(file) if file else None
    if isinstance(config.feedback, LlmFeedback):
        config = config.model_copy(update={"feedback": config.feedback.with_api_key_from(env)})
    return config


DOWNLOAD_ENV = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HF_HUB_OFFLINE", "HF_ENDPOINT")
"""Variables that decide how fastembed reaches its download hosts (read by the model loader's offline check)."""


def download_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The set, non-empty :data:`DOWNLOAD_ENV` variables (``os.environ`` unless ``env``)."""
    e = os.environ if env is None else env
    return {k: e[k] for k in DOWNLOAD_ENV if e.get(k)}


def env_secret(variable: str, env: Mapping[str, str] | None = None) -> SecretStr | None:
    """The secret an environment variable holds (``os.environ`` unless ``env``); None when it is unset or empty.

    For the LLM judge's key (``[feedback] api_key_env``) and ``rf-mcp migrate --to-api-key-env``."""
    value = (os.environ if env is None else env).get(variable)
    return SecretStr(value) if value else None


def auth_token(variable: str | None = None, env: Mapping[str, str] | None = None) -> str | None:
    """The bearer token HTTP clients must send: the variable ``--auth-token-env`` names (an error when it is unset),
    else RF_MCP_AUTH_TOKEN (None when unset). An empty value is returned as is: the HTTP layer refuses it."""
    name = variable or AUTH_TOKEN_ENV
    token = (os.environ if env is None else env).get(name)
    if variable and token is None:
        raise ConfigError(f"--auth-token-env names {name}, but that environment variable is not set.",
                          fix=f"Export {name}=<a long random token>, or drop --auth-token-env.")
    return token
