"""The trainer port: fits the formula weights (the training library, or the all-pairs objective) over a
:class:`TrainingJob`, the trainer's view of a collection as callables over the other ports."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from rf_mcp.ports.queries import FeedbackItem, Point, PointId, Progress, Weights3

# -- training -------------------------------------------------------------------------------------------------
TrainLimit = Annotated[int, Field(ge=6, le=1000, description="Candidates scored per training query (cost: "
                                                          "queries x limit feedback scores).")]
ContextLimit = Annotated[int, Field(ge=2, le=50, description="Top candidates from which the context pair is mined.")]
ConfidenceMargin = Annotated[float, Field(ge=0.0, description="Minimum feedback-score gap for a context pair.")]
Epochs = Annotated[int, Field(ge=1, le=100_000, description="Training epochs (early stopping applies).")]
LearningRate = Annotated[float, Field(gt=0, le=1.0, description="Learning rate.")]
Patience = Annotated[int, Field(ge=1, description="Epochs without validation improvement before stopping.")]
MinDelta = Annotated[float, Field(ge=0, description="Minimum validation improvement.")]


class TrainSettings(BaseModel):
    """How the formula weights are fitted (the training library's ``train`` arguments)."""

    model_config = ConfigDict(frozen=True)

    limit: TrainLimit = 50
    context_limit: ContextLimit = 5
    confidence_margin: ConfidenceMargin = 0.0
    epochs: Epochs = 1000
    lr: LearningRate = 0.005
    patience: Patience = 200
    min_delta: MinDelta = 1e-6


class SkippedQuery(Exception):
    """Raised by :attr:`TrainingJob.score` when the domain skips this query (its grades stayed unusable; the domain
    counts it and fails the operation past its bound): a trainer goes on with the next query, as if it had no pair."""


@dataclass(frozen=True)
class TrainingJob:
    """Everything a trainer needs, as callables over the ports (the domain validates and counts the scores)."""

    collection: str
    vector_name: str
    distance: str
    embed: Callable[[str], Awaitable[np.ndarray]]
    candidates: Callable[[str, np.ndarray, int], Awaitable[list[Point]]]
    """``candidates(query, query_vector, limit)``: the search mode's seed source, best first, each point with its
    dense vector and, as its score, the retriever's similarity to the query."""
    nearest: Callable[[np.ndarray, int, Sequence[PointId]], Awaitable[list[Point]]]
    """``nearest(query_vector, limit, exclude)``: plain dense search, with vectors."""
    relevance_feedback: Callable[[np.ndarray, Sequence[FeedbackItem], Weights3, int], Awaitable[list[Point]]]
    score: Callable[[str, Sequence[str]], Awaitable[list[float]]]
    """Validated feedback scores; raises :class:`SkippedQuery` for a query the domain skips."""
    text: Callable[[dict[str, Any]], str]
    texts: Callable[[Sequence[Point]], Awaitable[list[str]]]
    """The candidates' texts (refuses with the payload keys seen when the configured text fields are all empty)."""
    progress: Progress | None = None


@dataclass(frozen=True)
class TrainingOutcome:
    weights: Weights3
    queries_with_pairs: int
    queries_disagreeing: int
    retriever_correlation: float | None
    library_reported: float | None = None
    """The disagreement the training library printed (a cross-check), when it is the trainer."""


@dataclass(frozen=True)
class LibraryEvaluation:
    """The training library's ``Evaluator`` view (agreement with the feedback model, not relevance)."""

    queries_kept: int
    rf_above_threshold: int
    vanilla_above_threshold: int
    relative_gain_pct: float
    dcg_rf_wins_pct: float
    dcg_vanilla_wins_pct: float
    dcg_ties_pct: float


class Trainer(ABC):
    identity: str

    @abstractmethod
    async def train(self, job: TrainingJob, queries: Sequence[str], settings: TrainSettings) -> TrainingOutcome: ...

    @abstractmethod
    async def evaluate(self, job: TrainingJob, queries: Sequence[str], weights: Weights3, at_n: int,
                       context_limit: int) -> LibraryEvaluation: ...

