"""rf-mcp: safe, calibrated Qdrant Relevance Feedback for AI agents (Python API, CLI, MCP server)."""

from rf_mcp.config import Config, load_config
from rf_mcp.domain.datasets import Query, read_qrels, read_queries
from rf_mcp.domain.models import (
                                  CalibrationProfile,
                                  CalibrationReport,
                                  EvaluationReport,
                                  IndexReport,
                                  SearchResult,
                                  TrainSettings,
                                  Weights,
)
from rf_mcp.domain.service import RFService
from rf_mcp.errors import ConfigError, EngineError, GuardrailError, InputError, ModelError, RFError

__version__ = "0.1.0"

__all__ = [
    "CalibrationProfile", "CalibrationReport", "Config", "ConfigError", "EngineError", "EvaluationReport",
    "GuardrailError", "IndexReport", "InputError", "ModelError", "Query", "RFError", "RFService", "SearchResult",
    "TrainSettings", "Weights", "load_config", "read_qrels", "read_queries",
]
