"""The model ports: the retriever (the dense embedding model of the collection), the sparse encoder (the analyzer
behind the BM25 sparse vectors) and the feedback model (a scorer, higher = more relevant; or the MCP client's LLM)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rf_mcp.ports.queries import SparseVector


# -- BM25 term statistics, maintained by the index path ------------------------
@dataclass(frozen=True)
class TermStatistics:
    """A collection's term statistics over a sparse encoder's term ids, kept current by the index path."""

    revision: str
    """Changes with every write of the statistics: anything derived under another revision is stale."""
    encoder: str
    """The identity of the sparse encoder (so of the analyzer) whose term ids these are."""
    documents: int
    total_length: int
    """Terms in all documents together (the average document length is ``total_length / documents``)."""
    frequencies: Callable[[], tuple[np.ndarray, np.ndarray]]
    """Decodes (sorted term ids, their document frequencies): O(terms), so call it for a new revision only."""


TermStats = Callable[[], Awaitable[TermStatistics | None]]
"""Reads a collection's stored term statistics (one metadata read; None when the collection has none)."""

# -- models -------------------------------------------------------------------------------------------------
class Retriever(ABC):
    """The dense embedding model of the collection. ``load`` must be awaited before ``identity``/``dim``."""

    @abstractmethod
    async def load(self) -> None:
        """Load the model (once); later calls return at once."""

    @property
    @abstractmethod
    def identity(self) -> str:
        """Stable identity (name and a file hash for local folders): part of the calibration fingerprint."""

    @property
    @abstractmethod
    def dim(self) -> int: ...

    @abstractmethod
    async def embed_query(self, text: str) -> np.ndarray: ...

    @abstractmethod
    async def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""


class SparseEncoder(ABC):
    """Turns text into BM25 sparse vectors: term weights for documents, unit weights for queries.

    The engine multiplies by the IDF (the sparse vector's IDF modifier), so the collection's statistics stay
    current as documents are added.
    """

    identity: str

    @abstractmethod
    def document_lengths(self, texts: Sequence[str]) -> list[int]:
        """Number of (analyzed) terms per document, for the average document length."""

    @abstractmethod
    def encode_documents(self, texts: Sequence[str], avgdl: float) -> list[SparseVector]: ...

    @abstractmethod
    def encode_query(self, text: str) -> SparseVector: ...


class Scorer(ABC):
    """A feedback model: scores (query, document) pairs, higher = more relevant.

    ``identity`` is stable and goes into the calibration fingerprint: any change to the model, its settings or
    its analyzer must change it, so weights fitted to another scorer are refused.
    """

    identity: str
    out_of_band: bool = False
    """True when grades arrive out of band (the MCP client's LLM): it cannot score on demand, so calibration and
    evaluation refuse it."""
    needs_term_stats: bool = False
    """True when ``bind`` reads the collection's stored term statistics: calibration counts them first if missing."""

    @abstractmethod
    async def score(self, query: str, documents: Sequence[str]) -> list[float]:
        """Relevance of each document to the query, in order."""

    async def bind(self, collection: str, term_stats: TermStats, version: int = 0) -> None:  # noqa: B027
        """Optional hook, called before scoring documents of ``collection`` (corpus statistics and the like).
        ``term_stats()`` reads the collection's stored term statistics (their ``revision`` says when they changed);
        ``version`` is the collection's point count."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release resources (HTTP clients, model sessions)."""


class GradeReplyError(ValueError):
    """A grader's reply cannot be used (not one JSON object, a missing or repeated id, a grade out of range...)."""


class SampledScorer(Scorer):
    """A feedback model graded out of band by the MCP client's own LLM (sampling).

    A search's plan stops for grades; the protocol layer asks the client with :meth:`prompt`, checks the reply with
    :meth:`parse` (asking again once with :meth:`retry_prompt`) and resumes the plan with them. :meth:`score` cannot
    grade (there is no client to ask) and says so.
    """

    out_of_band = True
    model: str
    system_prompt: str
    timeout: float
    """Seconds one grading round may take (the client's LLM answers in its own time)."""

    @abstractmethod
    def prompt(self, query: str, documents: Sequence[str]) -> str:
        """The user message asking for grades (identical across retry rounds)."""

    @abstractmethod
    def retry_prompt(self, error: str) -> str: ...

    @abstractmethod
    def parse(self, reply: str, n: int) -> list[float]:
        """Grades in document order, or :class:`GradeReplyError`."""

    @abstractmethod
    def max_tokens(self, n: int) -> int: ...


