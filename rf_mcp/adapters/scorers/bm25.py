"""A lexical BM25 feedback model: cheap, no model file, and a signal that differs from dense vectors.

Term statistics (document frequencies, average length) come from the collection's own payload
texts, read once per collection.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

from rf_mcp.adapters.scorers.base import CorpusTexts, Scorer, register
from rf_mcp.config import FeedbackSettings

_TOKEN = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    "a an and are as at be by for from has have in is it its of on or that the this to was were "
    "which with not no than then there these those their they we our can may also into".split()
)


def tokenize(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS]


class CorpusStats:
    def __init__(self, texts: Iterable[str]) -> None:
        self.df: Counter[str] = Counter()
        total = 0
        n = 0
        for text in texts:
            toks = tokenize(text)
            total += len(toks)
            n += 1
            self.df.update(set(toks))
        self.n = n
        self.avgdl = total / n if n else 1.0

    def idf(self, term: str) -> float:
        df = self.df.get(term, 0)
        return math.log(1.0 + (self.n - df + 0.5) / (df + 0.5))


class BM25Scorer(Scorer):
    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self.identity = f"bm25(k1={k1:g},b={b:g})"
        self._stats: dict[str, CorpusStats] = {}
        self._current: CorpusStats | None = None

    async def bind(self, collection: str, corpus_texts: CorpusTexts) -> None:
        if collection not in self._stats:
            self._stats[collection] = CorpusStats(await corpus_texts())
        self._current = self._stats[collection]

    def score_sync(self, query: str, documents: Sequence[str], stats: CorpusStats | None = None) -> list[float]:
        stats = stats or self._current or CorpusStats(documents)
        q_terms = tokenize(query)
        out = []
        for doc in documents:
            toks = tokenize(doc)
            tf = Counter(toks)
            norm = self.k1 * (1 - self.b + self.b * len(toks) / (stats.avgdl or 1.0))
            s = 0.0
            for t in q_terms:
                f = tf.get(t, 0)
                if f:
                    s += stats.idf(t) * f * (self.k1 + 1) / (f + norm)
            out.append(s)
        return out

    async def score(self, query: str, documents: Sequence[str]) -> list[float]:
        return self.score_sync(query, documents)


@register("bm25")
def _factory(settings: FeedbackSettings) -> Scorer:
    return BM25Scorer(k1=settings.k1, b=settings.b)
