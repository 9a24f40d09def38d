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
import math
import re
from collections.abc import Callable, Sequence

import numpy as np

from rf_mcp.adapters.engines.memory import MemoryEngine
from rf_mcp.bootstrap import open_service
from rf_mcp.config import Config
from rf_mcp.domain.files import UNRESTRICTED, PathPolicy
from rf_mcp.domain.service import RFService
from rf_mcp.errors import GuardrailError
from rf_mcp.ports import (
    Engine,
    FeedbackItem,
    LibraryEvaluation,
    Point,
    Retriever,
    Scorer,
    Trainer,
    TrainingJob,
    TrainingOutcome,
    TrainSettings,
    Weights3,
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


def similarity(distance: str, u: np.ndarray, v: np.ndarray) -> float:
    """The score the engine reports for query ``u`` against stored ``v`` (``rf_library.similarity``, without torch)."""
    q = np.asarray(u, dtype=np.float64)
    s = np.asarray(v, dtype=np.float32)
    if distance == "Cosine":
        ns = np.linalg.norm(s)
        s = s / (ns if ns else np.float32(1e-12))
        nq = np.linalg.norm(q)
        return float(np.dot(s, q / (nq if nq else 1e-12)))
    if distance == "Dot":
        return float(np.dot(s, q))
    if distance == "Euclid":
        return float(np.linalg.norm(s - q))
    if distance == "Manhattan":
        return float(np.sum(np.abs(s - q)))
    raise ValueError(f"unknown distance {distance}")


def context_pair(scores: Sequence[float], margin: float) -> tuple[int, int, float] | None:
    """The library's ``get_context_pairs(...)[0]``: the most confident (negative, positive, confidence) pair."""
    pairs = [(neg, pos, scores[pos] - scores[neg]) for neg in range(len(scores)) for pos in range(len(scores))
             if pos != neg and scores[pos] - scores[neg] > margin]
    return sorted(pairs, key=lambda p: p[2], reverse=True)[0] if pairs else None


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank (pandas' ``rank()``)."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and x[order[j + 1]] == x[order[i]]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman correlation; None where pandas gives NaN (fewer than two values, or a constant column)."""
    if len(x) < 2:
        return None
    rx, ry = average_ranks(x), average_ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


MARGIN = 0.01  # the library's ranking_loss margin


def _loss_and_grad(w: np.ndarray, data: tuple[np.ndarray, ...], want_grad: bool) -> tuple[float, np.ndarray]:
    """The library's ranking loss (hinge, summed over pairs a query's targets order) and its gradient in (a, b, c)."""
    score, conf, delta, q, neg, pos = data
    a, b, c = w
    powered = conf ** b
    f = a * score + powered * delta * c
    margins = f[q, neg] - f[q, pos] + MARGIN
    loss = float(np.clip(margins, 0, None).sum())
    if not want_grad:
        return loss, np.zeros(3)
    grads = np.stack([score, c * powered * np.log(conf) * delta, powered * delta])  # df/da, df/db, df/dc
    active = margins >= 0
    qa, na, pa = q[active], neg[active], pos[active]
    return loss, (grads[:, qa, na] - grads[:, qa, pa]).sum(axis=1)


def _pairs(target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query, less relevant response, more relevant response) for every pair whose targets differ."""
    q, neg, pos = np.nonzero(target[:, None, :] - target[:, :, None] > 0)
    return q, neg, pos


def fit(score: np.ndarray, conf: np.ndarray, delta: np.ndarray, target: np.ndarray,
        settings: TrainSettings) -> Weights3:
    """The library's ``split_train_val`` + ``train_formula``: Adam (torch's defaults) on the naive formula from
    a=b=c=1, the first half of the queries training and the rest validating, early stopping on validation loss."""
    half = len(score) // 2
    train = (score[:half], conf[:half], delta[:half], *_pairs(target[:half]))
    val = (score[half:], conf[half:], delta[half:], *_pairs(target[half:]))
    w = np.ones(3)
    m, v = np.zeros(3), np.zeros(3)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    best_val, best, since = math.inf, None, 0
    for epoch in range(1, settings.epochs + 1):
        _, g = _loss_and_grad(w, train, True)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        denom = np.sqrt(v) / math.sqrt(1 - beta2 ** epoch) + eps
        w = w - settings.lr / (1 - beta1 ** epoch) * m / denom
        val_loss, _ = _loss_and_grad(w, val, False)
        if val_loss + settings.min_delta < best_val:
            best_val, best, since = val_loss, w.copy(), 0
        else:
            since += 1
        if since >= settings.patience:
            break
    if best is not None:
        w = best
    return float(w[0]), float(w[1]), float(w[2])


class NumpyTrainer(Trainer):
    """A double of the :class:`Trainer` port that follows the training library's contract without torch.

    ``train`` makes the library's rows: for each query (in order) ``job.embed``, ``job.candidates(limit)``,
    ``job.texts`` and one ``job.score`` of all candidates, a progress report, then the most confident context pair
    among the top ``context_limit`` (skipped without one); per candidate past ``context_limit`` the dense score, the
    pair's confidence, delta = sim(x, positive) - sim(x, negative) and target = feedback score minus the best top
    one. It counts queries with pairs, queries with a positive target (disagreeing) and the mean per-query Spearman
    correlation as ``rf_library.training_signal`` does, and fits (a, b, c) with the library's loss, split, Adam and
    early stopping in numpy. No training query with a pair is refused as the library adapter refuses it.
    ``evaluate`` is the library's ``Evaluator.evaluate_query`` over the job's callables.

    Limits: weights equal the library's only to float precision (float64 throughout; the library trains float32
    parameters); ``library_reported`` is None (no library printed anything); the fit runs on the event loop and
    checks for cancellation between queries, not between epochs; every query must have ``limit`` candidates.
    """

    identity = "test-numpy(qdrant-relevance-feedback==0.1.1 rows, loss and loop)"

    def __init__(self) -> None:
        self.trained = 0

    async def train(self, job: TrainingJob, queries: Sequence[str], settings: TrainSettings) -> TrainingOutcome:
        import anyio

        k, m = settings.context_limit, settings.limit - settings.context_limit
        rows: list[tuple[list[float], list[float], list[float], list[float]]] = []  # score, conf, delta, target
        fbs: list[list[float]] = []
        for n, query in enumerate(queries):
            await anyio.lowlevel.checkpoint()
            qv = await job.embed(query)
            points = await job.candidates(query, qv, settings.limit)
            fb = [float(x) for x in await job.score(query, await job.texts(points))]
            if job.progress is not None:
                await job.progress(float(n + 1), float(len(queries)), f"training query {n + 1}/{len(queries)}")
            pair = context_pair(fb[:k], settings.confidence_margin)
            if pair is None or len(points) <= k:
                continue
            neg, pos, confidence = pair
            vectors = [np.asarray(p.vector, dtype=np.float32) for p in points]
            rest = range(k, len(points))
            assert len(rest) == m, "the library's split needs limit candidates for every query"
            top = max(fb[:k])
            rows.append(([points[x].score for x in rest], [confidence] * m,
                         [similarity(job.distance, vectors[x], vectors[pos])
                          - similarity(job.distance, vectors[x], vectors[neg]) for x in rest],
                         [fb[x] - top for x in rest]))
            fbs.append(fb[k:])
        if not rows:
            raise GuardrailError(
                f"No training query had two top-{k} candidates with different feedback scores "
                f"(confidence_margin={settings.confidence_margin}): there is no signal to learn from.",
                fix="Lower confidence_margin, use more varied real queries, or another feedback model.")
        score, conf, delta, target = (np.asarray([r[i] for r in rows], dtype=np.float64) for i in range(4))
        weights = fit(score, conf, delta, target, settings)
        self.trained += 1
        corrs = [c for s, fb in zip(score, fbs, strict=True) if (c := spearman(s, np.asarray(fb))) is not None]
        corr = round(sum(corrs) / len(corrs), 4) if corrs else None
        return TrainingOutcome(weights=weights, queries_with_pairs=len(rows),
                               queries_disagreeing=int((target > 0).any(axis=1).sum()), retriever_correlation=corr)

    async def evaluate(self, job: TrainingJob, queries: Sequence[str], weights: Weights3, at_n: int,
                       context_limit: int) -> LibraryEvaluation:
        import anyio

        rf_total = vanilla_total = kept = 0
        wins = {"rf": 0, "vanilla": 0, "tie": 0}

        def texts(points: Sequence[Point]) -> list[str]:
            return [job.text(p.payload or {}) for p in points]

        def dcg(scores: Sequence[float]) -> float:
            return sum(s / math.log2(rank + 1) for rank, s in enumerate(scores[:at_n], 1))

        for i, query in enumerate(queries):
            await anyio.lowlevel.checkpoint()
            qv = np.asarray(await job.embed(query), dtype=np.float32)
            first = await job.nearest(qv, context_limit, [])
            fb = list(await job.score(query, texts(first)))
            if len(fb) >= 2 and not all(abs(s - fb[0]) < 1e-9 for s in fb):
                threshold = max(fb)
                feedback = [FeedbackItem(example=p.id, score=float(s)) for p, s in zip(first, fb, strict=True)]
                rf = list(await job.score(query, texts(await job.relevance_feedback(qv, feedback, weights, at_n))))
                vanilla = list(await job.score(query, texts(await job.nearest(qv, at_n, [p.id for p in first]))))
                kept += 1
                rf_total += sum(1 for j in range(at_n) if rf[j] >= threshold)
                vanilla_total += sum(1 for j in range(at_n) if vanilla[j] >= threshold)
                left, right = dcg(vanilla), dcg(rf)
                wins["vanilla" if left > right else "rf" if left < right else "tie"] += 1
            if job.progress is not None:
                await job.progress(float(i + 1), float(len(queries)), f"library evaluation {i + 1}/{len(queries)}")
        total = sum(wins.values())

        def pct(key: str) -> float:
            return round(wins[key] * 100 / total, 2) if total else 0.0

        gain = (rf_total - vanilla_total) / vanilla_total * 100 if rf_total > vanilla_total > 0 else 0.0
        return LibraryEvaluation(queries_kept=kept, rf_above_threshold=rf_total, vanilla_above_threshold=vanilla_total,
                                 relative_gain_pct=round(gain, 2), dcg_rf_wins_pct=pct("rf"),
                                 dcg_vanilla_wins_pct=pct("vanilla"), dcg_ties_pct=pct("tie"))


def service(config: Config | None = None, *, scorer: Scorer | None = None, retriever: Retriever | None = None,
            engine: Engine | None = None, trainer: Trainer | None = None, files: PathPolicy = UNRESTRICTED,
            read_only: bool = False) -> RFService:
    """An RFService over the in-memory engine and the hash retriever (BM25 feedback and the numpy trainer unless
    others are given)."""
    from rf_mcp.adapters.scorers.bm25 import BM25Scorer

    cfg = config or Config.model_validate({"qdrant": {"backend": "memory"}, "collection": {"vector_name": "dense"}})
    return open_service(cfg, engine=engine or MemoryEngine(), retriever=retriever or HashRetriever(),
                     scorer=scorer or BM25Scorer(), trainer=trainer or NumpyTrainer(), files=files, read_only=read_only)
