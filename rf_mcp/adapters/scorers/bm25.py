"""A lexical BM25 feedback model: cheap, no model file, and a signal that differs from dense vectors.

Term statistics (document frequencies, average length) come from the collection's own payload texts, read
once per collection and again when its point count changes (documents indexed since). The analyzer is the one
of the BM25 sparse vectors (:mod:`rf_mcp.adapters.analyzer`), and it is part of the scorer's identity: a
calibration made with another analyzer is refused, not reused.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar

import anyio

from rf_mcp.adapters.analyzer import Analyzer, CorpusStats, bm25_scores
from rf_mcp.ports import CorpusTexts, Scorer


class BM25Scorer(Scorer):
    def __init__(self, k1: float = 1.2, b: float = 0.75, analyzer: Analyzer | None = None) -> None:
        self.k1 = k1
        self.b = b
        self.analyzer = analyzer or Analyzer()
        self.identity = f"bm25(k1={k1:g},b={b:g},analyzer={self.analyzer.identity})"
        self._stats: dict[str, tuple[int, CorpusStats]] = {}  # collection -> (version read, statistics)
        # the collection bound by the current task (a request): concurrent requests on other collections keep theirs
        self._current: ContextVar[CorpusStats | None] = ContextVar(f"bm25-stats-{id(self)}", default=None)

    async def bind(self, collection: str, corpus_texts: CorpusTexts, version: int = 0) -> None:
        known = self._stats.get(collection)
        if known is None or known[0] != version:
            texts = await corpus_texts()
            known = self._stats[collection] = (version, await anyio.to_thread.run_sync(CorpusStats, self.analyzer, texts))
        self._current.set(known[1])

    def score_sync(self, query: str, documents: Sequence[str], stats: CorpusStats | None = None) -> list[float]:
        stats = stats or self._current.get() or CorpusStats(self.analyzer, documents)
        return bm25_scores(self.analyzer, query, documents, stats, self.k1, self.b)

    async def score(self, query: str, documents: Sequence[str]) -> list[float]:
        stats = self._current.get()  # read in the request's task, used in the worker thread
        return await anyio.to_thread.run_sync(self.score_sync, query, documents, stats)
