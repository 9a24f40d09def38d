"""Builds the configured adapters: the only module that imports concrete engines, models and trainers.

Heavy libraries (qdrant-client, qdrant-edge, fastembed/onnxruntime, torch and the training library) are imported
here only when the adapter that needs them is built, so starting the server or the CLI stays lean.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from rf_mcp.config import (
    BUILT_IN_FEEDBACK,
    Bm25Feedback,
    FastembedFeedback,
    Feedback,
    LlmFeedback,
    QdrantSettings,
    RetrieverSettings,
)
from rf_mcp.errors import ConfigError
from rf_mcp.ports import Engine, Retriever, Scorer, SparseEncoder, Trainer

ENTRY_POINT_GROUP = "rf_mcp.scorers"
CALIBRATE_INSTALL = ("Install the calibrate extra, CPU torch first: `pip install torch --index-url "
                     "https://download.pytorch.org/whl/cpu` then `pip install 'mcp-server-qdrant-rf[calibrate]'` "
                     "(from a checkout: `pip install -e '.[calibrate]'`).")
log = logging.getLogger("rf_mcp")
BUILT_IN_SCORERS = BUILT_IN_FEEDBACK


def open_engine(settings: QdrantSettings) -> Engine:
    """The engine for ``[qdrant]``: a Qdrant server (url), qdrant-edge, qdrant-client's embedded engine, or memory.

    ``backend = "auto"`` opens an existing folder with the engine that wrote it (and says so on stderr), and a new
    folder with the edge engine."""
    if settings.backend == "memory":
        from rf_mcp.adapters.engines.memory import MemoryEngine

        return MemoryEngine()
    if settings.engine_process == "on" and not settings.url and settings.path != ":memory:":
        from rf_mcp.adapters.engines.process import ProcessEngine

        return ProcessEngine(settings.model_copy(update={"engine_process": "off"}), open_engine)
    from rf_mcp.adapters.engines._shared import is_local_engine_folder

    local_folder = settings.backend == "auto" and not settings.url and is_local_engine_folder(Path(settings.data_path))
    if settings.url or settings.backend == "local" or settings.path == ":memory:" or local_folder:
        from rf_mcp.adapters.engines.client import ClientEngine

        if local_folder:
            log.warning("%s was written by qdrant-client's embedded engine (e.g. by mcp-server-qdrant): opening it "
                        'with that engine (backend = "local"); `rf-mcp migrate --to-backend edge` copies it to the '
                        "faster edge engine.", settings.data_path)
        return ClientEngine(settings)
    from rf_mcp.adapters.engines.edge import EdgeEngine

    return EdgeEngine(settings)


def build_retriever(settings: RetrieverSettings) -> Retriever:
    from rf_mcp.adapters.embedder import FastembedRetriever

    return FastembedRetriever(settings)


def build_sparse_encoder() -> SparseEncoder:
    from rf_mcp.adapters.analyzer import Bm25Encoder

    return Bm25Encoder()


def build_trainer(kind: str = "numpy") -> Trainer:
    """The library's fit in numpy (the default: no torch), the training library's trainer, or the all-pairs objective.

    The library (and torch, which it pulls) is the ``calibrate`` extra, needed only by ``trainer = "library"`` or
    ``"all-pairs"``: without it, a ConfigError naming the install line."""
    if kind == "numpy":
        from rf_mcp.adapters.fit import VectorizedTrainer

        return VectorizedTrainer()
    missing = [m for m in ("qdrant_relevance_feedback", "torch") if find_spec(m) is None]
    if missing:
        raise ConfigError(
            f'[calibration] trainer = "{kind}" runs the training library qdrant-relevance-feedback with torch, not '
            f"installed here (missing: {', '.join(missing)}); the default trainer (\"numpy\") needs neither.",
            fix=CALIBRATE_INSTALL + ' Or use [calibration] trainer = "numpy".')
    from rf_mcp.adapters.rf_library import AllPairsTrainer, LibraryTrainer

    return AllPairsTrainer() if kind == "all-pairs" else LibraryTrainer()


def _plugins() -> dict[str, Any]:
    """Scorer factories published by installed packages under the ``rf_mcp.scorers`` entry-point group."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def scorer_types() -> list[str]:
    return sorted(set(BUILT_IN_SCORERS) | set(_plugins()))


def build_scorer(settings: Feedback) -> Scorer:
    """The built-in scorer for ``[feedback].type``, or the plug-in registered under that name (its factory receives
    the :class:`rf_mcp.config.FeedbackSettings` of the plug-in type, with ``options``)."""
    if isinstance(settings, Bm25Feedback):
        from rf_mcp.adapters.scorers.bm25 import BM25Scorer

        return BM25Scorer(k1=settings.k1, b=settings.b)
    if isinstance(settings, FastembedFeedback):
        from rf_mcp.adapters.scorers.fastembed import FastembedScorer

        return FastembedScorer(settings)
    if isinstance(settings, LlmFeedback):
        from rf_mcp.adapters.scorers import llm_judge

        return llm_judge.build(settings)
    kind = settings.type
    plugins = _plugins()
    if kind not in plugins:
        raise ConfigError(
            f"[feedback].type {kind!r} is not a known feedback model type.",
            fix=f"Use one of {scorer_types()}, or install a plug-in that provides it (entry-point group "
                f"{ENTRY_POINT_GROUP!r}).")
    try:
        factory = plugins[kind].load()
    except Exception as exc:
        raise ConfigError(f"The feedback plug-in {kind!r} failed to load: {type(exc).__name__}: {exc}",
                          fix="Reinstall or fix the plug-in package.") from None
    scorer = factory(settings)
    if not isinstance(scorer, Scorer) or not getattr(scorer, "identity", None):
        raise ConfigError(f"The feedback plug-in {kind!r} did not return a Scorer with an identity.",
                          fix="Its factory must return an rf_mcp.Scorer subclass instance with `identity` set.")
    return scorer
