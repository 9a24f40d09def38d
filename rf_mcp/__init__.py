"""rf-mcp: safe, calibrated Qdrant Relevance Feedback for AI agents (Python API, CLI, MCP server).

The public API is what ``__all__`` lists (pinned by a test): the service, its configuration, its result models, the
ports a plug-in or a test double implements, and the error types.
"""

from rf_mcp.config import Config, load_config
from rf_mcp.domain.datasets import Query, read_qrels, read_queries
from rf_mcp.domain.metrics import all_metrics as ranking_metrics
from rf_mcp.domain.payload import payload_text as document_text
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
from rf_mcp.domain.service import RFService
from rf_mcp.errors import ConfigError, EngineError, GuardrailError, InputError, ModelError, RFError
from rf_mcp.ports import Engine, Filter, Retriever, Scorer, SparseEncoder, Trainer

__version__ = "0.2.0"

__all__ = [
    "CalibrationProfile",
    "CalibrationReport",
    "CollectionsOverview",
    "Config",
    "ConfigError",
    "Engine",
    "EngineError",
    "EvaluationReport",
    "Filter",
    "GuardrailError",
    "IndexReport",
    "InputError",
    "ModelError",
    "Query",
    "RFError",
    "RFService",
    "Retriever",
    "Scorer",
    "SearchResult",
    "SparseEncoder",
    "TrainSettings",
    "Trainer",
    "Weights",
    "__version__",
    "document_text",
    "load_config",
    "ranking_metrics",
    "read_qrels",
    "read_queries",
]
