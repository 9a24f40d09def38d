"""Feedback models ("scorers"): anything that scores (query, document) pairs, higher = more relevant."""

from rf_mcp.adapters.scorers.base import Scorer, build_scorer

__all__ = ["Scorer", "build_scorer"]
