"""One English analyzer for everything lexical: the BM25 feedback model and the BM25 sparse vectors.

The linguistic work is done by libraries: the token pattern and the English stopword list of ``bm25s``, and
the Snowball English stemmer of ``py_rust_stemmers`` (the stemmer fastembed's BM25 uses). Terms become
sparse indices through MurmurHash3 (``mmh3``), unsigned 32-bit, as fastembed's BM25 does, so no vocabulary
is stored and indices stay stable as a collection grows. Both consumers use the same term ids and the same
BM25 term weight, so a feedback score is what the engine's sparse search with the IDF modifier computes.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Protocol

import mmh3
import numpy as np
from bm25s.stopwords import STOPWORDS_EN
from py_rust_stemmers import SnowballStemmer

from rf_mcp.ports import SparseEncoder, SparseVector

TOKEN_PATTERN = r"(?u)\b\w\w+\b"  # bm25s' (and scikit-learn's) default: words of two or more characters
K1, B = 1.2, 0.75  # the BM25 defaults of Qdrant, fastembed and Lucene


class Analyzer:
    """lower-case -> words -> drop English stopwords -> Snowball stem -> 32-bit term id."""

    identity = "en-v1(bm25s-stopwords-en,snowball-english,mmh3)"

    def __init__(self, cache_size: int = 500_000) -> None:
        self._split = re.compile(TOKEN_PATTERN).findall
        self._stop = frozenset(STOPWORDS_EN)
        self._stemmer = SnowballStemmer("english")
        self._ids: dict[str, int] = {}  # word -> term id (stemming and hashing cached)
        self._lock = threading.Lock()
        self._cache_size = cache_size
        self._documents = functools.lru_cache(maxsize=4096)(self._analyze)

    def _analyze(self, text: str) -> tuple[int, dict[int, int]]:
        terms = self.terms(text)
        return len(terms), dict(Counter(terms))

    def _term_id(self, word: str) -> int:
        tid = self._ids.get(word)
        if tid is None:
            tid = mmh3.hash(self._stemmer.stem_word(word), signed=False)
            with self._lock:
                if len(self._ids) >= self._cache_size:
                    self._ids.clear()
                self._ids[word] = tid
        return tid

    def document(self, text: str) -> tuple[int, dict[int, int]]:
        """A document's length in terms and its term frequencies, remembered for the documents seen last (the same
        candidates come back across the queries of a calibration or an evaluation)."""
        return self._documents(text)

    def terms(self, text: str) -> list[int]:
        """The term ids of ``text``, in order, stopwords removed."""
        known, stop, new = self._ids.get, self._stop, self._term_id  # a known word is one dict look-up
        return [t if (t := known(w)) is not None else new(w) for w in self._split(text.lower()) if w not in stop]


def term_weight(tf: int, dl: int, avgdl: float, k1: float = K1, b: float = B) -> float:
    """BM25's saturated term frequency (the part of a term's score that depends on the document)."""
    return tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / (avgdl or 1.0)))


def idf(df: int, n: int) -> float:
    """Qdrant's IDF modifier (and Lucene's): ln(1 + (n - df + 0.5) / (df + 0.5))."""
    return math.log((n - df + 0.5) / (df + 0.5) + 1)


class TermFrequencies(Protocol):
    """What BM25 needs of a corpus: its size, its average document length, and the document frequency of terms."""

    n: int
    avgdl: float

    def df_of(self, terms: Iterable[int]) -> dict[int, int]:
        """The document frequency of each term (0 for a term no document holds)."""
        ...


class CorpusStats:
    """Document frequencies and average length of a corpus, over the analyzer's term ids."""

    def __init__(self, analyzer: Analyzer, texts: Iterable[str]) -> None:
        self.df: Counter[int] = Counter()
        total = n = 0
        for text in texts:
            terms = analyzer.terms(text)
            total += len(terms)
            n += 1
            self.df.update(set(terms))
        self.n = n
        self.total = total
        self.avgdl = average_length(total, n)

    def df_of(self, terms: Iterable[int]) -> dict[int, int]:
        return {t: self.df.get(t, 0) for t in terms}


class StoredStats:
    """Term statistics as the index path stores them: sorted term ids and their document frequencies (arrays, so a
    million terms stay compact and a query's few terms are found by binary search)."""

    def __init__(self, revision: str, documents: int, total_length: int, ids: np.ndarray, dfs: np.ndarray) -> None:
        if ids.shape != dfs.shape or ids.ndim != 1:
            raise ValueError("term ids and document frequencies differ in shape")
        self.revision = revision
        self.n = documents
        self.avgdl = average_length(total_length, documents)
        self.ids, self.dfs = ids, dfs

    def df_of(self, terms: Iterable[int]) -> dict[int, int]:
        wanted = list(terms)
        if not wanted or not len(self.ids):
            return dict.fromkeys(wanted, 0)
        pos = np.searchsorted(self.ids, np.asarray(wanted, dtype=np.uint32))
        pos = np.minimum(pos, len(self.ids) - 1)
        return {t: int(self.dfs[p]) if int(self.ids[p]) == t else 0 for t, p in zip(wanted, pos.tolist(), strict=True)}


def average_length(total: int, n: int) -> float:
    return total / n if n else 1.0


def same_terms(encoder_identity: str, analyzer: Analyzer) -> bool:
    """Whether a sparse encoder (named by its identity) makes the term ids of ``analyzer``."""
    return encoder_identity.endswith(f"analyzer={analyzer.identity})")


def bm25_scores(analyzer: Analyzer, query: str, documents: Sequence[str], stats: TermFrequencies,
                k1: float = K1, b: float = B) -> list[float]:
    """Sum over the query's distinct terms of idf x term weight: the engine's sparse score with IDF."""
    q_terms = set(analyzer.terms(query))
    weights = {t: idf(df, stats.n) for t, df in stats.df_of(q_terms).items()}
    out = []
    for doc in documents:
        length, tf = analyzer.document(doc)
        out.append(sum(w * term_weight(f, length, stats.avgdl, k1, b) for t, w in weights.items() if (f := tf.get(t))))
    return out


class Bm25Encoder(SparseEncoder):
    """BM25 sparse vectors for Qdrant's IDF modifier: term weights for documents, 1 per distinct query term."""

    def __init__(self, analyzer: Analyzer | None = None, k1: float = K1, b: float = B) -> None:
        self.analyzer = analyzer or Analyzer()
        self.k1, self.b = k1, b
        self.identity = f"bm25-sparse(k1={k1:g},b={b:g},analyzer={self.analyzer.identity})"

    def document_lengths(self, texts: Sequence[str]) -> list[int]:
        return [len(self.analyzer.terms(t)) for t in texts]

    def encode_documents(self, texts: Sequence[str], avgdl: float) -> list[SparseVector]:
        out = []
        for text in texts:
            terms = self.analyzer.terms(text)
            tf = Counter(terms)
            ids = sorted(tf)
            out.append(SparseVector(tuple(ids), tuple(term_weight(tf[t], len(terms), avgdl, self.k1, self.b)
                                                      for t in ids)))
        return out

    def encode_query(self, text: str) -> SparseVector:
        ids = sorted(set(self.analyzer.terms(text)))
        return SparseVector(tuple(ids), tuple(1.0 for _ in ids))
