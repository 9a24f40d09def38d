"""A lexical BM25 feedback model: cheap, no model file, and a signal that differs from dense vectors.

Term statistics (document count, average length, document frequencies) are the ones the index path stores with
the collection and keeps current as documents are written: binding reads them (one metadata read) and decodes
them again only when their revision changed, so a search never scans the collection, and a re-index that keeps
the point count is still seen. A collection without stored statistics (written by another tool) is refused with
the command that computes them once, offline. The analyzer is the one of the BM25 sparse vectors
(:mod:`rf_mcp.adapters.analyzer`), and it is part of the scorer's identity: a calibration made with another
analyzer is refused, not reused.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextvars import ContextVar

import anyio

from rf_mcp.adapters.analyzer import Analyzer, CorpusStats, StoredStats, TermFrequencies, bm25_scores, same_terms
from rf_mcp.errors import InputError, RFError
from rf_mcp.ports import Scorer, TermStats

log = logging.getLogger(__name__)


class BM25Scorer(Scorer):
    needs_term_stats = True

    def __init__(self, k1: float = 1.2, b: float = 0.75, analyzer: Analyzer | None = None) -> None:
        self.k1 = k1
        self.b = b
        self.analyzer = analyzer or Analyzer()
        self.identity = f"bm25(k1={k1:g},b={b:g},analyzer={self.analyzer.identity})"
        self._stats: dict[str, StoredStats] = {}  # collection -> its statistics, decoded (at their revision)
        # the collection bound by the current task (a request): concurrent requests on other collections keep theirs
        self._current: ContextVar[TermFrequencies | RFError | None] = ContextVar(f"bm25-stats-{id(self)}", default=None)

    async def bind(self, collection: str, term_stats: TermStats, version: int = 0) -> None:
        """Read the collection's statistics (decoded again only for a new revision). Statistics it cannot use are
        refused when scoring, not here: operations that never score (vanilla search, listing) still run."""
        try:
            self._current.set(await self._read(collection, term_stats, version))
        except RFError as exc:
            self._current.set(exc)

    async def _read(self, collection: str, term_stats: TermStats, version: int) -> StoredStats:
        stored = await term_stats()
        fix = (f"Count them once: calibrate (it counts them when missing), or `rf-mcp index -c {collection} "
               "--sparse-only` (the index tool with sparse_only); indexing with rf-mcp keeps them current.")
        if stored is None:
            raise InputError(f"Collection {collection!r} has no stored BM25 term statistics (it was written by another "
                             "tool, or by an older rf-mcp): the BM25 feedback model needs them.", fix=fix)
        if not same_terms(stored.encoder, self.analyzer):
            raise InputError(f"The BM25 term statistics of {collection!r} were computed by {stored.encoder!r}, not with "
                             f"this feedback model's analyzer {self.analyzer.identity!r}.", fix=fix)
        known = self._stats.get(collection)
        if known is None or known.revision != stored.revision:
            ids, dfs = await anyio.to_thread.run_sync(stored.frequencies)
            known = self._stats[collection] = StoredStats(stored.revision, stored.documents, stored.total_length,
                                                          ids, dfs)
            if version and abs(version - stored.documents) > 0.1 * version:  # points written by another tool
                log.warning("The BM25 term statistics of %r count %d documents, the collection holds %d points "
                            "(written by another tool?): recount them with `rf-mcp index -c %s --sparse-only`.",
                            collection, stored.documents, version, collection)
        return known

    def score_sync(self, query: str, documents: Sequence[str], stats: TermFrequencies | None = None) -> list[float]:
        stats = stats or self._bound() or CorpusStats(self.analyzer, documents)
        return bm25_scores(self.analyzer, query, documents, stats, self.k1, self.b)

    async def score(self, query: str, documents: Sequence[str]) -> list[float]:
        stats = self._bound()  # read in the request's task, used in the worker thread
        return await anyio.to_thread.run_sync(self.score_sync, query, documents, stats)

    def _bound(self) -> TermFrequencies | None:
        current = self._current.get()
        if isinstance(current, RFError):  # the bound collection's statistics could not be read
            raise type(current)(current.problem, fix=current.fix)
        return current
