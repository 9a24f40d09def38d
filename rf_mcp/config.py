"""Configuration: a TOML file (``--config`` or ``RF_MCP_CONFIG``) plus environment overrides.

The environment names are those of Qdrant's own MCP server: ``QDRANT_URL``, ``QDRANT_API_KEY``,
``QDRANT_LOCAL_PATH``. Every invalid value becomes one :class:`ConfigError` that names the key
and the fix.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from rf_mcp.errors import ConfigError

CONFIG_ENV = "RF_MCP_CONFIG"
DEFAULT_LOCAL_PATH = "./rf_data"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QdrantSettings(_Section):
    """Where the vectors live: an embedded folder (default) or a Qdrant server."""

    path: str | None = Field(None, description="Folder of the embedded engine (default ./rf_data).")
    url: str | None = Field(None, description="URL of a Qdrant server, e.g. http://localhost:6333.")
    api_key: SecretStr | None = Field(None, description="API key for the server (prefer QDRANT_API_KEY); never shown.")
    timeout: float = Field(30.0, gt=0, description="Seconds before a server call fails.")
    backend: Literal["auto", "local", "edge", "memory"] = Field(
        "auto", description="Embedded engine: edge (qdrant-edge-py, Qdrant's Rust engine) or local "
                            "(qdrant-client); auto = edge, or the server when url is set.")

    hnsw_threshold: int = Field(20_000, ge=1, description="edge: `rf-mcp index` builds the HNSW index once a "
                                                           "collection has this many points (exact search below).")

    @model_validator(mode="after")
    def _one_location(self) -> QdrantSettings:
        if self.path and self.url:
            raise ValueError("set either path (embedded) or url (server), not both")
        if self.url and self.backend == "edge":
            raise ValueError("backend = \"edge\" is embedded: remove url, or use backend = \"auto\" for the server")
        return self

    @property
    def data_path(self) -> str:
        """The embedded engine's folder."""
        return self.path or DEFAULT_LOCAL_PATH

    @property
    def location(self) -> str:
        """Where the data lives, safe to show (no credentials)."""
        if self.url:
            parts = urlsplit(self.url)
            host = parts.hostname or ""
            netloc = f"{host}:{parts.port}" if parts.port else host
            return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        return f"embedded:{self.path or DEFAULT_LOCAL_PATH}"


class ModelSettings(_Section):
    """A fastembed model, by name or from a local ONNX folder."""

    model: str = Field(description="fastembed model name (or your own name for a local folder).")
    model_path: str | None = Field(None, description="Local folder with model.onnx + tokenizer.")
    model_file: str = Field("model.onnx", description="ONNX file inside model_path.")
    dim: int | None = Field(None, gt=0, description="Vector size; needed for unknown names.")
    pooling: Literal["mean", "cls"] | None = Field(None, description="Pooling for unknown names.")
    normalize: bool = Field(True, description="L2-normalise embeddings (local folders).")
    threads: int | None = Field(None, gt=0, description="ONNX runtime threads.")


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


class CollectionSettings(_Section):
    vector_name: str = Field(
        "dense", description='Named dense vector to search; "" means the unnamed default vector.'
    )
    text_fields: list[str] = Field(
        default_factory=lambda: ["title", "text"],
        min_length=1,
        description="Payload fields joined into the text the feedback model reads.",
    )
    id_field: str = Field("doc_id", min_length=1, description="Payload key (a dotted path such as metadata.doc_id) of "
                          "each document's own id: what hits show as doc_id and relevance judgments name.")
    input_id_field: str = Field("_id", min_length=1, description="Field of the corpus JSONL given to `index` that "
                                "holds each document's id (stored under id_field).")
    sparse_vector: str = Field("bm25", max_length=255, description='BM25 sparse vector written by `rf-mcp index` '
                               'and used by fusion = "sparse"; "" = none.')


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
    drift_warning: float = Field(
        0.2, gt=0, description="Warn when the point count changed by this share since calibration."
    )


class CalibrationSettings(_Section):
    trainer: Literal["library", "all-pairs"] = Field(
        "library", description="What fits a, b, c: the training library (one context pair per query) or the same "
                               "data, loss and loop fitted to the formula a search runs (every seed pair).")
    pairing: Literal["all", "extremes"] = Field(
        "all", description="Feedback a search sends: every seed, or only the best and the worst seed.")


class Config(_Section):
    qdrant: QdrantSettings = QdrantSettings()
    retriever: RetrieverSettings = RetrieverSettings()
    feedback: FeedbackSettings = FeedbackSettings()
    collection: CollectionSettings = CollectionSettings()
    search: SearchSettings = SearchSettings()
    calibration: CalibrationSettings = CalibrationSettings()


def _describe(err: ValidationError) -> ConfigError:
    first = err.errors()[0]
    loc = [str(p) for p in first["loc"]]
    key = f"[{loc[0]}].{'.'.join(loc[1:])}" if len(loc) > 1 else f"[{loc[0]}]" if loc else "(root)"
    kind = first["type"]
    if kind == "extra_forbidden":
        return ConfigError(
            f"Unknown config key {key}.",
            fix="Remove it or correct its spelling; config.example.toml lists every key.",
        )
    return ConfigError(
        f"Invalid config value for {key}: {first['msg']}.",
        fix="Correct it as config.example.toml shows.",
    )


def _apply_env(data: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    qdrant = dict(data.get("qdrant") or {})
    if env.get("QDRANT_URL"):
        qdrant["url"] = env["QDRANT_URL"]
        qdrant.pop("path", None)
    elif env.get("QDRANT_LOCAL_PATH"):
        qdrant["path"] = env["QDRANT_LOCAL_PATH"]
        qdrant.pop("url", None)
    if env.get("QDRANT_API_KEY"):
        qdrant["api_key"] = env["QDRANT_API_KEY"]
    return {**data, "qdrant": qdrant}


def load_config(path: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None) -> Config:
    """Read the config file (if any) and apply the environment overrides."""
    env = dict(os.environ) if env is None else env
    path = path or env.get(CONFIG_ENV) or None
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(
                f"Config file {p} does not exist.",
                fix=f"Pass an existing file with --config or {CONFIG_ENV}, or copy config.example.toml.",
            )
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Config file {p} is not valid TOML: {exc}.", fix="Correct its syntax.") from None
    try:
        return Config.model_validate(_apply_env(data, env))
    except ValidationError as exc:
        raise _describe(exc) from None
