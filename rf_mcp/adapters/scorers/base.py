"""The scorer interface and the registry that builds one from ``[feedback]``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence


from rf_mcp.config import FeedbackSettings
from rf_mcp.errors import ConfigError

# Returns every payload text of the collection (for scorers that need corpus statistics).
CorpusTexts = Callable[[], Awaitable[list[str]]]


class Scorer(ABC):
    """A feedback model. ``identity`` is stable and goes into the calibration fingerprint."""

    identity: str

    @abstractmethod
    async def score(self, query: str, documents: Sequence[str]) -> list[float]:
        """Relevance of each document to the query, in order; higher = more relevant."""

    async def bind(self, collection: str, corpus_texts: CorpusTexts) -> None:  # noqa: B027
        """Called before scoring documents of ``collection`` (corpus statistics and the like)."""

    async def warm_up(self) -> None:  # noqa: B027
        """Load models ahead of the first call."""


ScorerFactory = Callable[[FeedbackSettings], Scorer]
_REGISTRY: dict[str, ScorerFactory] = {}


def register(type_name: str) -> Callable[[ScorerFactory], ScorerFactory]:
    def deco(factory: ScorerFactory) -> ScorerFactory:
        _REGISTRY[type_name] = factory
        return factory

    return deco


def build_scorer(settings: FeedbackSettings) -> Scorer:
    # importing the built-ins registers them
    from rf_mcp.adapters.scorers import bm25, fastembed_scorer  # noqa: F401

    factory = _REGISTRY.get(settings.type)
    if factory is None:
        raise ConfigError(
            f"[feedback].type {settings.type!r} is not a known feedback model type.",
            fix=f"Use one of {sorted(_REGISTRY)}.",
        )
    return factory(settings)


