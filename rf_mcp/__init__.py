"""rf-mcp: safe, calibrated Qdrant Relevance Feedback for AI agents (Python API, CLI, MCP server).

The public API is what ``__all__`` lists (pinned by a test): the service, its configuration, its result models, the
ports a plug-in or a test double implements, and the error types. Names load on first use, so importing the
package (or the CLI) does not import the models, the engines or the training library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

_EXPORTS = {
    "Config": "rf_mcp.config", "load_config": "rf_mcp.config",
    "Query": "rf_mcp.domain.datasets", "read_qrels": "rf_mcp.domain.datasets", "read_queries": "rf_mcp.domain.datasets",
    "CalibrationProfile": "rf_mcp.domain.models", "CalibrationReport": "rf_mcp.domain.models",
    "CollectionsOverview": "rf_mcp.domain.models", "EvaluationReport": "rf_mcp.domain.models",
    "IndexReport": "rf_mcp.domain.models", "SearchResult": "rf_mcp.domain.models",
    "TrainSettings": "rf_mcp.domain.models", "Weights": "rf_mcp.domain.models",
    "RFService": "rf_mcp.domain.service", "open_service": "rf_mcp.bootstrap",
    "PrecisionRequest": "rf_mcp.domain.requests", "RecallRequest": "rf_mcp.domain.requests",
    "CalibrateRequest": "rf_mcp.domain.requests", "EvaluateRequest": "rf_mcp.domain.requests",
    "IndexRequest": "rf_mcp.domain.requests",
    "ConfigError": "rf_mcp.errors", "EngineError": "rf_mcp.errors", "GuardrailError": "rf_mcp.errors",
    "InputError": "rf_mcp.errors", "ModelError": "rf_mcp.errors", "RFError": "rf_mcp.errors",
    "Engine": "rf_mcp.ports", "Filter": "rf_mcp.ports", "Retriever": "rf_mcp.ports", "Scorer": "rf_mcp.ports",
    "SparseEncoder": "rf_mcp.ports", "Trainer": "rf_mcp.ports",
}
_RENAMED = {"ranking_metrics": ("rf_mcp.domain.metrics", "all_metrics"),
            "document_text": ("rf_mcp.domain.payload", "payload_text")}

__all__ = [
    "CalibrateRequest", "CalibrationProfile", "CalibrationReport", "CollectionsOverview", "Config", "ConfigError",
    "Engine", "EngineError", "EvaluateRequest", "EvaluationReport", "Filter", "GuardrailError", "IndexReport",
    "IndexRequest", "InputError", "ModelError", "PrecisionRequest", "Query", "RFError", "RFService", "RecallRequest",
    "Retriever", "Scorer", "SearchResult", "SparseEncoder", "TrainSettings", "Trainer", "Weights", "__version__",
    "document_text", "load_config", "open_service", "ranking_metrics", "read_qrels", "read_queries",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _RENAMED:
        module, attr = _RENAMED[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'rf_mcp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # the same names, for type checkers
    from rf_mcp.bootstrap import open_service
    from rf_mcp.config import Config, load_config
    from rf_mcp.domain.datasets import Query, read_qrels, read_queries
    from rf_mcp.domain.metrics import all_metrics as ranking_metrics
    from rf_mcp.domain.models import (
        CalibrationProfile,
        CalibrationReport,
        CollectionsOverview,
        EvaluationReport,
        IndexReport,
        SearchResult,
        TrainSettings,
        Weights,
    )
    from rf_mcp.domain.payload import payload_text as document_text
    from rf_mcp.domain.requests import CalibrateRequest, EvaluateRequest, IndexRequest, PrecisionRequest, RecallRequest
    from rf_mcp.domain.service import RFService
    from rf_mcp.errors import ConfigError, EngineError, GuardrailError, InputError, ModelError, RFError
    from rf_mcp.ports import Engine, Filter, Retriever, Scorer, SparseEncoder, Trainer
