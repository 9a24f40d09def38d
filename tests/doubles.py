"""In-memory doubles of the ports, and a small synthetic corpus, for fast unit tests (no model, no ../shared).

* :class:`HashRetriever`: a bag-of-words retriever (each word a fixed pseudo-random vector; a text is the
  normalised sum): similar texts are close, as with a real embedding model, and it costs microseconds.
* The engine double is the product's own :class:`rf_mcp.adapters.engines.memory.MemoryEngine`.
* Scorers: :class:`ConstantScorer`, :class:`FunctionScorer`; the real BM25 scorer needs no model either.
* :class:`NumpyTrainer`: the training library's data, counts, loss and loop in numpy (no torch): the default trainer
  of :func:`service`. The real library is tested in ``tests/integration`` (``test_rf_library.py``,
  ``test_trainer_double.py`` holds this double to the library's numbers).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Sequence

import numpy as np

from rf_mcp.adapters.engines.memory import MemoryEngine
from rf_mcp.adapters.fit import VectorizedTrainer
from rf_mcp.bootstrap import open_service
from rf_mcp.config import Config
from rf_mcp.domain.files import UNRESTRICTED, PathPolicy
from rf_mcp.domain.service import RFService
from rf_mcp.ports import (
    Engine,
    Retriever,
    Scorer,
    Trainer,
    TrainingJob,
    TrainingOutcome,
    TrainSettings,
)

DIM = 32
TRAIN = TrainSettings(limit=20, epochs=150)  # a short training run for the unit tests
_WORD = re.compile(r"[a-z0-9]+")


@functools.lru_cache(maxsize=65536)
def word_vector(word: str, dim: int = DIM) -> np.ndarray:
    """A fixed pseudo-random vector per word (cached, read-only: the corpus has a few dozen words)."""
    seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).normal(size=dim)
    v.setflags(write=False)
    return v


class HashRetriever(Retriever):
    def __init__(self, dim: int = DIM, identity: str = "test-hash") -> None:
        self._dim = dim
        self._identity = f"{identity}-{dim}"
        self.loaded = False
        self.queries = 0

    async def load(self) -> None:
        self.loaded = True

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, text: str) -> np.ndarray:
        v = np.zeros(self._dim)
        for w in _WORD.findall(text.lower()):
            v += word_vector(w, self._dim)
        n = np.linalg.norm(v)
        return (v / n if n else v).astype(np.float32)

    async def embed_query(self, text: str) -> np.ndarray:
        self.queries += 1
        return self.embed(text)

    async def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.embed(t) for t in texts]) if texts else np.zeros((0, self._dim), np.float32)


class ConstantScorer(Scorer):
    def __init__(self, value: float, identity: str = "test-constant") -> None:
        self.value = value
        self.identity = identity

    async def score(self, query: str, documents: Sequence[str]) -> list[float]:
        return [self.value] * len(documents)


class FunctionScorer(Scorer):
    """Scores with a function of (query, document); counts its calls."""

    def __init__(self, fn: Callable[[str, str], float], identity: str = "test-function") -> None:
        self.fn = fn
        self.identity = identity
        self.scored = 0

    async def score(self, query: str, documents: Sequence[str]) -> list[float]:
        self.scored += len(documents)
        return [self.fn(query, d) for d in documents]


def overlap(query: str, doc: str) -> float:
    """Share of the query's words in the document, with a bonus for rare words: a lexical feedback model."""
    q = set(_WORD.findall(query.lower()))
    d = set(_WORD.findall(doc.lower()))
    return sum(1.0 + (len(w) > 6) for w in q & d) / max(1, len(q))


TOPICS = {
    "neuro": "neuron tau protein brain synapse dementia alzheimer cortex memory plaque amyloid glia",
    "cardio": "heart artery blood pressure cholesterol stroke vessel cardiac statin rhythm valve aorta",
    "onco": "tumor cancer chemotherapy metastasis oncogene biopsy carcinoma radiation lymphoma mutation",
    "immuno": "immune antibody vaccine tcell cytokine infection virus antigen inflammation macrophage",
    "metab": "insulin glucose obesity diabetes liver lipid metabolism adipose diet ketone pancreas",
}
COMMON = ["study", "patients", "results", "effect", "increase", "decrease", "risk", "trial", "cohort", "analysis", "data", "group"]


def corpus(n: int = 300, seed: int = 0) -> list[dict[str, str]]:
    """``n`` short documents in five topics (BEIR layout: _id, title, text)."""
    rng = np.random.default_rng(seed)
    names = sorted(TOPICS)
    docs = []
    for i in range(n):
        topic = names[i % len(names)]
        vocab = TOPICS[topic].split()
        other = TOPICS[names[(i + 1 + int(rng.integers(0, 4))) % len(names)]].split()
        words = list(rng.choice(vocab, size=int(rng.integers(4, 9)))) + list(rng.choice(other, size=2))
        words += list(rng.choice(COMMON, size=int(rng.integers(2, 6))))
        rng.shuffle(words)
        docs.append({"_id": f"d{i}", "title": " ".join(words[:3]), "text": " ".join(words[3:]), "topic": topic,
                     "year": 2000 + i % 20})
    return docs


def queries(n: int = 60, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    names = sorted(TOPICS)
    out = []
    for i in range(n):
        vocab = TOPICS[names[i % len(names)]].split()
        out.append(" ".join(rng.choice(vocab, size=3, replace=False)) + f" {rng.choice(COMMON)} q{i}")
    return out


def judged(n: int, seed: int = 11, prefix: str = "j") -> tuple[list[dict[str, str]], dict[str, dict[str, int]]]:
    """``n`` held-out queries (ids ``<prefix><i>``, texts unlike the training ones) and their judgments: a query's
    relevant documents are the corpus documents of its topic (grade 1), as :func:`corpus` assigns topics."""
    rng = np.random.default_rng(seed)
    names = sorted(TOPICS)
    docs = corpus()
    qs, qrels = [], {}
    for i in range(n):
        topic = names[i % len(names)]
        words = rng.choice(TOPICS[topic].split(), size=3, replace=False)
        qid = f"{prefix}{i}"
        qs.append({"id": qid, "text": " ".join(words) + f" {rng.choice(COMMON)} {qid}"})
        qrels[qid] = {d["_id"]: 1 for d in docs if d["topic"] == topic}
    return qs, qrels


class NumpyTrainer(VectorizedTrainer):
    """The product's torch-free trainer (rf_mcp/adapters/fit.py), counting the fits it completes."""

    def __init__(self) -> None:
        self.trained = 0

    async def train(self, job: TrainingJob, queries: Sequence[str], settings: TrainSettings) -> TrainingOutcome:
        out = await super().train(job, queries, settings)
        self.trained += 1
        return out


def service(config: Config | None = None, *, scorer: Scorer | None = None, retriever: Retriever | None = None,
            engine: Engine | None = None, trainer: Trainer | None = None, files: PathPolicy = UNRESTRICTED,
            read_only: bool = False) -> RFService:
    """An RFService over the in-memory engine and the hash retriever (BM25 feedback and the numpy trainer unless
    others are given)."""
    from rf_mcp.adapters.scorers.bm25 import BM25Scorer

    cfg = config or Config.model_validate({"qdrant": {"backend": "memory"}, "collection": {"vector_name": "dense"}})
    return open_service(cfg, engine=engine or MemoryEngine(), retriever=retriever or HashRetriever(),
                     scorer=scorer or BM25Scorer(), trainer=trainer or NumpyTrainer(), files=files, read_only=read_only)
