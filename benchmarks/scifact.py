"""BEIR SciFact through the product's public API, for the quality and pairing benchmarks.

* The retriever is the configured all-MiniLM-L6-v2 (int8 ONNX from ../shared); query vectors come from the shared
  cache (fp32, cosine >= 0.9996 with the int8 model) and any other query is embedded with the model itself.
* Feedback models, all implementing the public :class:`rf_mcp.Scorer` port: BM25 (the product's built-in), the
  all-mpnet-base-v2 vectors from the shared cache (a dense feedback model weaker than the retriever here: the
  negative control), and their fusion (each divided by its score spread, sampled after binding to the corpus).
* The collection is indexed by ``RFService.index`` from the precomputed vectors, with its BM25 sparse vector, in a
  temporary edge folder removed at the end.
"""

from __future__ import annotations

import json
import random
import shutil
import statistics
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rf_mcp import Config, Query, Retriever, RFService, Scorer, document_text, open_service, read_qrels, read_queries

COLLECTION = "scifact"
TEXT_FIELDS = ["title", "text"]


class CachedRetriever(Retriever):
    """The configured retriever, with query vectors from the shared cache where it has them."""

    def __init__(self, inner: Retriever, table: dict[str, np.ndarray]) -> None:
        self.inner, self.table = inner, table
        self.embedded: list[str] = []  # queries the cache did not have (embedded with the model)

    async def load(self) -> None:
        await self.inner.load()

    @property
    def identity(self) -> str:
        return self.inner.identity

    @property
    def dim(self) -> int:
        return self.inner.dim

    async def embed_query(self, text: str) -> np.ndarray:
        hit = self.table.get(text)
        if hit is not None:
            return hit
        self.embedded.append(text)
        return await self.inner.embed_query(text)

    async def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return await self.inner.embed_documents(texts)


class CachedDenseScorer(Scorer):
    """A dense feedback model from cached vectors: cosine(query, document)."""

    def __init__(self, name: str, docs: dict[str, np.ndarray], queries: dict[str, np.ndarray]) -> None:
        self.identity = f"cached-dense:{name}"
        self.docs, self.queries = docs, queries

    async def score(self, query: str, documents: Sequence[str]) -> list[float]:
        q = self.queries[query]
        return [float(np.dot(q, self.docs[d])) for d in documents]


class FusedScorer(Scorer):
    """Sum of feedback models, each divided by its score spread (set by :meth:`set_spreads`, after binding)."""

    def __init__(self, parts: list[Scorer]) -> None:
        self.parts = parts
        self.spreads = [1.0] * len(parts)
        self.identity = "fused(unscaled)"

    def set_spreads(self, spreads: list[float]) -> None:
        self.spreads = spreads
        self.identity = "fused(" + "+".join(f"{s.identity}/{w:.4g}" for s, w in zip(self.parts, spreads, strict=True)) + ")"

    async def bind(self, collection: str, term_stats: Any, version: int = 0) -> None:
        for s in self.parts:
            await s.bind(collection, term_stats, version)

    async def score(self, query: str, documents: Sequence[str]) -> list[float]:
        total = np.zeros(len(documents))
        for s, spread in zip(self.parts, self.spreads, strict=True):
            total += np.asarray(await s.score(query, documents)) / spread
        return total.tolist()


@dataclass
class SciFact:
    shared: Path
    mini: bool
    train: list[str]
    eval: list[Query]
    qrels: dict[str, dict[str, int]]
    corpus: Path
    vectors: np.ndarray
    query_table: dict[str, np.ndarray]
    mpnet_docs: dict[str, np.ndarray]
    mpnet_queries: dict[str, np.ndarray]
    notes: list[str] = field(default_factory=list)


def load(shared: Path, mini: bool, queries_path: str | None = None, qrels_path: str | None = None) -> SciFact:
    sf = shared / "data" / "scifact"
    corpus = (shared / "data" / "scifact-mini" if mini else sf) / "corpus.jsonl"
    ids = json.loads((sf / "embeddings" / "minilm_ids.json").read_text())
    corpus_vecs = np.load(sf / "embeddings" / "minilm_corpus.npy")
    query_vecs = np.load(sf / "embeddings" / "minilm_queries.npy")
    pos = {d: i for i, d in enumerate(ids["corpus_ids"])}
    docs = [json.loads(line) for line in corpus.read_text().splitlines() if line.strip()]
    text = {d["_id"]: document_text(d, TEXT_FIELDS) for d in docs}  # the text the product's scorers read
    all_queries = {q.id: q.text for q in read_queries(sf / "queries.jsonl")}
    mp_ids = json.loads((sf / "embeddings" / "mpnet_ids.json").read_text())
    mp_docs = np.load(sf / "embeddings" / "mpnet_corpus.npy")
    mp_q = np.load(sf / "embeddings" / "mpnet_queries.npy")
    default_qrels = shared / "data" / "scifact-mini" / "qrels" / "test.tsv" if mini else sf / "qrels" / "dev.tsv"
    qrels = read_qrels(qrels_path or default_qrels)
    eval_queries = read_queries(queries_path or sf / "queries.jsonl", ids=set(qrels))
    mp_qids = set(mp_ids["query_ids"])
    train_ids = list(dict.fromkeys(read_qrels(sf / "qrels" / "train.tsv")))
    train = [all_queries[i] for i in train_ids if i in mp_qids][: (40 if mini else 100)]
    calibrated = set(train)
    held_out = [q for q in eval_queries if q.text not in calibrated]  # never evaluate on a calibration query
    notes = [f"{len(eval_queries) - len(held_out)} judged queries left out: used for calibration"] \
        if len(held_out) < len(eval_queries) else []
    eval_queries = held_out[:20] if mini else held_out
    return SciFact(shared=shared, mini=mini, train=train, eval=eval_queries, qrels=qrels, corpus=corpus, notes=notes,
                   vectors=np.asarray([corpus_vecs[pos[d["_id"]]] for d in docs], dtype=np.float32),
                   query_table={all_queries[q]: query_vecs[i] for i, q in enumerate(ids["query_ids"]) if q in all_queries},
                   mpnet_docs={text[d]: mp_docs[pos[d]] for d in text},
                   mpnet_queries={all_queries[q]: mp_q[i] for i, q in enumerate(mp_ids["query_ids"])})


def config(data: SciFact, folder: Path, **sections: dict[str, Any]) -> Config:
    base: dict[str, Any] = {
        "qdrant": {"path": str(folder), "backend": "edge"},
        "retriever": {"model": "local/all-MiniLM-L6-v2", "model_path": str(data.shared / "models" / "all-MiniLM-L6-v2-int8"),
                      "dim": 384, "pooling": "mean"},
        "feedback": {"type": "bm25"},
        "search": {"max_text_chars": 100_000},  # whole texts in hits: the fused scorer's spread is sampled from them
    }
    for k, v in sections.items():
        base[k] = {**base.get(k, {}), **v}
    return Config.model_validate(base)


@asynccontextmanager
async def indexed(data: SciFact, **sections: dict[str, Any]) -> AsyncIterator[RFService]:
    """An RFService over a fresh edge folder holding SciFact (removed afterwards), with the cached retriever."""
    tmp = Path(tempfile.mkdtemp(prefix="rf-bench-"))
    try:
        plain = open_service(config(data, tmp / "data", **sections))
        rf = open_service(plain.config, engine=plain.engine, retriever=CachedRetriever(plain.retriever, data.query_table))
        np.save(tmp / "vectors.npy", data.vectors)
        await rf.index(COLLECTION, data.corpus, vectors_path=tmp / "vectors.npy")
        try:
            yield rf
        finally:
            await rf.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def with_scorer(rf: RFService, scorer: Scorer, **sections: dict[str, Any]) -> RFService:
    """The same engine and retriever with another feedback model (and config sections)."""
    cfg = rf.config
    if sections:
        cfg = Config.model_validate({**cfg.model_dump(mode="python"),
                                     **{k: {**cfg.model_dump(mode="python")[k], **v} for k, v in sections.items()}})
    return open_service(cfg, engine=rf.engine, retriever=rf.retriever, scorer=scorer)


async def feedback_models(rf: RFService, data: SciFact) -> dict[str, Scorer]:
    """BM25, cached mpnet, and their fusion with spreads sampled on the training queries' top 25, after binding."""
    bm25 = rf.scorer
    mpnet = CachedDenseScorer("all-mpnet-base-v2-int8", data.mpnet_docs, data.mpnet_queries)
    second_bm25 = open_service(rf.config, engine=rf.engine, retriever=rf.retriever).scorer  # the fusion's own BM25
    fused = FusedScorer([second_bm25, mpnet])
    probe = with_scorer(rf, fused)
    await probe.target(COLLECTION)  # binds every part to the corpus (BM25 statistics)
    samples: list[list[float]] = [[], []]
    for q in data.train[:30]:
        res = await probe.search_precision(COLLECTION, q, vanilla=True, limit=25, fusion="none")
        texts = [h.text for h in res.hits]
        for i, part in enumerate(fused.parts):
            samples[i] += await part.score(q, texts)
    fused.set_spreads([float(np.std(s)) or 1.0 for s in samples])
    return {"bm25": bm25, "mpnet": mpnet, "fused": fused}


def bootstrap(diffs: Sequence[float], n: int = 10_000, seed: int = 7) -> tuple[float, float, float]:
    """Mean and 95% percentile-bootstrap interval of paired per-query differences."""
    rng = random.Random(seed)
    k = len(diffs)
    means = sorted(sum(diffs[rng.randrange(k)] for _ in range(k)) / k for _ in range(n))
    return round(statistics.fmean(diffs), 4), round(means[int(0.025 * n)], 4), round(means[int(0.975 * n)], 4)
