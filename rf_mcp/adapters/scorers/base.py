"""The scorer interface and the registry that builds one from ``[feedback]``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import entry_points
from typing import Any

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
ENTRY_POINT_GROUP = "rf_mcp.scorers"


def register(type_name: str) -> Callable[[ScorerFactory], ScorerFactory]:
    def deco(factory: ScorerFactory) -> ScorerFactory:
        _REGISTRY[type_name] = factory
        return factory

    return deco


def _plugins() -> dict[str, Any]:
    """Scorer factories published by installed packages under the ``rf_mcp.scorers`` entry-point group."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_types() -> list[str]:
    from rf_mcp.adapters.scorers import bm25, fastembed_scorer, llm_judge  # noqa: F401 - registers the built-ins

    return sorted(set(_REGISTRY) | set(_plugins()))


def build_scorer(settings: FeedbackSettings) -> Scorer:
    """The built-in scorer for ``[feedback].type``, or the plug-in registered under that name."""
    types = available_types()
    factory = _REGISTRY.get(settings.type)
    if factory is None and settings.type in _plugins():
        try:
            factory = _plugins()[settings.type].load()
        except Exception as exc:  # noqa: BLE001 - a broken plug-in is a configuration problem
            raise ConfigError(f"The feedback plug-in {settings.type!r} failed to load: {type(exc).__name__}: {exc}",
                              fix="Reinstall or fix the plug-in package.") from None
    if factory is None:
        raise ConfigError(
            f"[feedback].type {settings.type!r} is not a known feedback model type.",
            fix=f"Use one of {types}, or install a plug-in that provides it (entry-point group {ENTRY_POINT_GROUP!r}).",
        )
    scorer = factory(settings)
    if not isinstance(scorer, Scorer) or not getattr(scorer, "identity", None):
        raise ConfigError(f"The feedback plug-in {settings.type!r} did not return a Scorer with an identity.",
                          fix="Its factory must return an rf_mcp Scorer subclass instance with `identity` set.")
    return scorer


