"""The training library (``qdrant-relevance-feedback``) behind the :class:`rf_mcp.ports.Trainer` port.

* Its progress output (``rich`` to stdout) is captured: stdout is the MCP protocol channel.
* It talks to Qdrant through a small facade whose ``query_points`` runs the job's engine calls (any engine of
  the port: edge, qdrant-client, the in-memory double), called back on the event loop from the worker thread.
* Its per-candidate ``get_similarity_score`` (one Qdrant query, a full scan on an embedded engine, per
  candidate) is replaced by the same similarity computed from the vectors already retrieved; the formula, the
  loss, the data split and the training loop stay the library's own.
* Cancellation stops the work promptly: between training queries, and between epochs (the formula checks).
* A query the domain skips (``job.score`` raises :class:`SkippedQuery`) gives no rows, as one without a pair; the
  library's printed disagreement (``library_reported``) still divides by every training query.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import anyio
import anyio.from_thread
import numpy as np
import pandas as pd
import rich
import torch
from qdrant_client import models
from qdrant_relevance_feedback import RelevanceFeedback
from qdrant_relevance_feedback.evaluate.evaluate import Evaluator
from qdrant_relevance_feedback.evaluate.metrics import DcgWinRate, relative_relevance_gain
from qdrant_relevance_feedback.feedback import Feedback
from qdrant_relevance_feedback.retriever import Retriever
from qdrant_relevance_feedback.train.naive_formula import NaiveFormula
from qdrant_relevance_feedback.train.train import get_context_pairs, split_train_val, train_formula
from rich.console import Console

from rf_mcp.adapters.fit import similarity
from rf_mcp.errors import GuardrailError
from rf_mcp.ports import (
    FeedbackItem,
    LibraryEvaluation,
    Point,
    Progress,
    SkippedQuery,
    Trainer,
    TrainingJob,
    TrainingOutcome,
    TrainSettings,
    Weights3,
)

_capture_lock = threading.Lock()
_DISAGREEMENT = re.compile(r"On ([0-9.]+)% of training queries the feedback model strongly disagreed")


@contextmanager
def captured_library_output() -> Iterator[io.StringIO]:
    """Route the library's rich console to a buffer for the duration (one user at a time)."""
    buf = io.StringIO()
    with _capture_lock:
        saved = rich._console
        rich._console = Console(file=buf, force_terminal=False, color_system=None, width=160)
        try:
            yield buf
        finally:
            rich._console = saved


def parse_disagreement(log: str) -> float | None:
    m = _DISAGREEMENT.search(log)
    return float(m.group(1)) / 100 if m else None


def _call(fn: Any, *args: Any) -> Any:
    """Run an async job callable from the library's worker thread, honouring cancellation."""
    anyio.from_thread.check_cancelled()
    return anyio.from_thread.run(fn, *args)


def _progress(progress: Progress, done: float, total: float, message: str) -> None:
    async def report() -> None:
        await progress(done, total, message)

    anyio.from_thread.run(report)


class _JobClient:
    """The part of ``QdrantClient.query_points`` the library and its Evaluator use, over the job's callables."""

    def __init__(self, job: TrainingJob) -> None:
        self.job = job

    def _shaped(self, p: Point, using: str | None) -> Any:
        vector = None if p.vector is None else ({using: p.vector} if using else p.vector)
        return SimpleNamespace(id=p.id, score=p.score, payload=p.payload, vector=vector)

    def query_points(self, collection_name: str, query: Any = None, query_filter: Any = None, using: str | None = None,
                     limit: int = 10, **_: Any) -> Any:
        exclude: list[Any] = []
        if query_filter is not None:
            for cond in query_filter.must_not or []:
                exclude.extend(getattr(cond, "has_id", []) or [])
        if isinstance(query, models.RelevanceFeedbackQuery):
            rf = query.relevance_feedback
            p = rf.strategy.naive
            feedback = [FeedbackItem(example=f.example, score=float(f.score))  # type: ignore[arg-type]  # ids or vectors
                        for f in rf.feedback]
            points = _call(self.job.relevance_feedback, np.asarray(rf.target, dtype=np.float32), feedback,
                           (p.a, p.b, p.c), limit)
        else:
            points = _call(self.job.nearest, np.asarray(query, dtype=np.float32), limit, exclude)
        return SimpleNamespace(points=[self._shaped(pt, using) for pt in points])


class _JobRetriever(Retriever):
    def __init__(self, job: TrainingJob) -> None:
        self.job = job

    def embed_query(self, query: str) -> list[float]:
        return list(map(float, _call(self.job.embed, query)))


class _JobFeedback(Feedback):
    """Sync face of the job's scorer, for code running in a worker thread; counts the scores it used."""

    def __init__(self, job: TrainingJob) -> None:
        self.job = job
        self.calls = 0

    def score(self, query: Any, responses: list[Any]) -> list[float]:
        scores = _call(self.job.score, query, list(responses))
        self.calls += len(responses)
        return list(scores)


class _CancellableFormula(NaiveFormula):
    """The library's formula, checking for cancellation once per epoch (forward runs each epoch)."""

    def forward(self, score: torch.Tensor, confidence: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        anyio.from_thread.check_cancelled()
        out: torch.Tensor = super().forward(score, confidence, delta)
        return out


class FastRelevanceFeedback(RelevanceFeedback):
    """The library's RelevanceFeedback: candidates from the job's seed source, similarities from vectors in hand."""

    def __init__(self, job: TrainingJob) -> None:
        self._feedback = _JobFeedback(job)
        super().__init__(_JobRetriever(job), self._feedback, _JobClient(job), job.collection, job.vector_name or None)
        self.job = job
        self.training_data: pd.DataFrame | None = None
        self._done = self._total = self._rows = 0

    @property
    def feedback_calls(self) -> int:
        return self._feedback.calls

    def retrieve_payload(self, responses: list[Any]) -> list[str]:
        return [self.job.text(p.payload or {}) for p in responses]

    def prepare_train_data_query(self, query_idx: int, query: Any, limit: int = 25, context_limit: int = 5,
                                 confidence_margin: float = 0.0) -> list[dict[str, Any]]:
        """Same rows as the library's method; similarities to the context pair come from vectors in hand."""
        query_embedding = np.asarray(self.retriever.embed_query(query), dtype=np.float32)
        responses: list[Point] = _call(self.job.candidates, query, query_embedding, limit)
        try:
            scores = self.feedback.score(query, _call(self.job.texts, responses))
        except SkippedQuery:  # counted by the domain: no rows, as a query without a context pair
            scores = []
        pairs = get_context_pairs(scores[:context_limit], confidence_margin=confidence_margin) if scores else []
        self._report(f"training query {query_idx + 1}/{self._total}")
        if not pairs:
            return []
        negative_idx, positive_idx, confidence = pairs[0]
        vectors = [np.asarray(p.vector, dtype=np.float32) for p in responses]
        pos, neg = vectors[positive_idx], vectors[negative_idx]
        distance = self.job.distance
        rows = []
        for response_idx, (response, fb) in enumerate(zip(responses, scores, strict=True)):
            delta = similarity(distance, vectors[response_idx], pos) - similarity(distance, vectors[response_idx], neg)
            rows.append({"query_idx": query_idx, "response_idx": response_idx, "confidence": confidence,
                         "score": response.score, "delta": delta, "feedback_model_score": fb})
        self._rows += len(rows)
        return rows

    def prepare_train_data_all_queries(self, queries: list[Any], limit: int = 25, context_limit: int = 5,
                                       confidence_margin: float = 0.0) -> pd.DataFrame:
        self._total, self._done, self._rows = len(queries), 0, 0
        try:
            data = super().prepare_train_data_all_queries(queries, limit, context_limit, confidence_margin)
        except KeyError:  # the library's pandas code fails on an empty frame
            if self._rows:
                raise
            raise GuardrailError(
                f"No training query had two top-{context_limit} candidates with different feedback scores "
                f"(confidence_margin={confidence_margin}): there is no signal to learn from.",
                fix="Lower confidence_margin, use more varied real queries, or another feedback model.",
            ) from None
        self.training_data = data
        return data

    def train(self, limit: int = 50, context_limit: int = 5, queries: list[Any] | None = None,
              amount_of_queries: int | None = None, confidence_margin: float | None = 0.0, lr: float = 0.005,
              epochs: int = 1000, patience: int = 200, min_delta: float = 1e-6) -> dict[str, float]:
        """The library's ``train`` (its data preparation, split, formula, loss and loop), with a cancellable formula."""
        assert queries is not None and amount_of_queries is None
        data = self.prepare_train_data_all_queries(queries, limit=limit, context_limit=context_limit,
                                                   confidence_margin=confidence_margin or 0.0)
        rich.print(f"\nOn {data[data.target_score > 0].groupby('query_idx').ngroups / len(queries) * 100:.2f}% "
                   "of training queries the feedback model strongly disagreed with the retriever model.\n")
        tensors = split_train_val(data, responses_per_query=limit - context_limit)
        formula = train_formula(_CancellableFormula(), *tensors, lr=lr, epochs=epochs, patience=patience,
                                min_delta=min_delta)
        a, b, c = formula.params.detach().cpu().numpy().tolist()
        return {"a": float(a), "b": float(b), "c": float(c)}

    def _report(self, message: str) -> None:
        self._done += 1
        if self.job.progress is not None:
            _progress(self.job.progress, float(self._done), float(self._total), message)


def training_signal(data: pd.DataFrame) -> tuple[int, int, float | None]:
    """(queries with a context pair, queries where the feedback model disagreed, mean retriever correlation).

    The correlation is the mean per-query Spearman correlation between the retriever's similarity and the feedback
    score over the training candidates: strongly negative means the scores look inverted (a distance?).
    """
    disagreeing = int(data[data.target_score > 0]["query_idx"].nunique())
    ranks = data[["score", "feedback_model_score"]].groupby(data["query_idx"]).rank()
    ranks["query_idx"] = data["query_idx"]
    per_query = [g["score"].corr(g["feedback_model_score"]) for _, g in ranks.groupby("query_idx")]
    per_query = [c for c in per_query if c == c]  # constant columns give NaN
    corr = round(float(sum(per_query) / len(per_query)), 4) if per_query else None
    return int(data["query_idx"].nunique()), disagreeing, corr


class LibraryTrainer(Trainer):
    """Fits a, b, c with ``qdrant_relevance_feedback`` (one context pair per training query)."""

    identity = "qdrant-relevance-feedback==0.1.1"

    async def train(self, job: TrainingJob, queries: Sequence[str], settings: TrainSettings) -> TrainingOutcome:
        rf = FastRelevanceFeedback(job)

        def run() -> tuple[dict[str, float], str]:
            with captured_library_output() as log:
                w = rf.train(limit=settings.limit, context_limit=settings.context_limit, queries=list(queries),
                             confidence_margin=settings.confidence_margin, lr=settings.lr, epochs=settings.epochs,
                             patience=settings.patience, min_delta=settings.min_delta)
            return w, log.getvalue()

        raw, log = await anyio.to_thread.run_sync(run)
        assert rf.training_data is not None
        with_pairs, disagreeing, corr = training_signal(rf.training_data)
        weights: Weights3 = (raw["a"], raw["b"], raw["c"])
        return TrainingOutcome(weights=weights, queries_with_pairs=with_pairs, queries_disagreeing=disagreeing,
                               retriever_correlation=corr, library_reported=parse_disagreement(log))

    async def evaluate(self, job: TrainingJob, queries: Sequence[str], weights: Weights3, at_n: int,
                       context_limit: int) -> LibraryEvaluation:
        evaluator = Evaluator(FastRelevanceFeedback(job))
        params = {"a": weights[0], "b": weights[1], "c": weights[2]}

        def run() -> LibraryEvaluation:
            dcg = DcgWinRate(n=at_n)
            rf_total = vanilla_total = kept = 0
            with captured_library_output():
                for i, q in enumerate(queries):
                    anyio.from_thread.check_cancelled()
                    try:  # the DCG tracker is updated last, after every grading of the query
                        res = evaluator.evaluate_query(q, formula_params=params, dcg_win_rate=dcg, at_n=at_n,
                                                       eval_context_limit=context_limit)
                    except SkippedQuery:  # counted by the domain: not kept, as a query without contrast
                        res = None
                    if res is not None:
                        kept += 1
                        rf_total += res["relevance_feedback_retrieval"]
                        vanilla_total += res["vanilla_retrieval"]
                    if job.progress is not None:
                        _progress(job.progress, float(i + 1), float(len(queries)),
                                  f"library evaluation {i + 1}/{len(queries)}")
            return LibraryEvaluation(queries_kept=kept, rf_above_threshold=rf_total, vanilla_above_threshold=vanilla_total,
                                     relative_gain_pct=round(relative_relevance_gain(rf_total, vanilla_total), 2),
                                     dcg_rf_wins_pct=round(dcg.evaluate_right(), 2),
                                     dcg_vanilla_wins_pct=round(dcg.evaluate_left(), 2),
                                     dcg_ties_pct=round(dcg.evaluate_ties(), 2))

        return await anyio.to_thread.run_sync(run)


class _AllPairsFormula(_CancellableFormula):
    """The search's own formula: a*sim(q,x) + c * sum over seed pairs of conf^b * delta (padded pairs add 0)."""

    def forward(self, score: torch.Tensor, confidence: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        anyio.from_thread.check_cancelled()
        a, b, c = self.params[0], self.params[1], self.params[2]
        out: torch.Tensor = a * score + c * (torch.pow(confidence, b) * delta).sum(dim=-1)
        return out


def _all_pairs(scores: Sequence[float], margin: float) -> list[tuple[int, int, float]]:
    """Every ordered (positive, negative, confidence) pair of seeds with a score gap above ``margin``."""
    return [(i, j, scores[i] - scores[j]) for i in range(len(scores)) for j in range(len(scores))
            if i != j and scores[i] - scores[j] > margin]


class AllPairsTrainer(LibraryTrainer):
    """Fits a, b, c to the formula a search runs: every ordered pair of the top ``context_limit`` seeds.

    The library trains on one context pair per query (the most confident one) while a 5-seed search sums over up
    to 10 pairs. This trainer keeps the library's data preparation (candidates, feedback scores, target = score
    minus the best seed's), its ranking loss and its training loop, and changes only the formula being fitted.
    """

    identity = "all-pairs(qdrant-relevance-feedback==0.1.1 loss and loop)"

    async def train(self, job: TrainingJob, queries: Sequence[str], settings: TrainSettings) -> TrainingOutcome:
        k = settings.context_limit
        rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # score, confidence, delta, target
        stats: list[pd.DataFrame] = []
        for n, query in enumerate(queries):
            qv = await job.embed(query)
            points = await job.candidates(query, qv, settings.limit)
            try:
                fb = list(await job.score(query, await job.texts(points)))
            except SkippedQuery:  # counted by the domain: no row, as a query without a pair
                fb = []
            if job.progress is not None:
                await job.progress(float(n + 1), float(len(queries)), f"training query {n + 1}/{len(queries)}")
            pairs = _all_pairs(fb[:k], settings.confidence_margin)
            if not pairs or len(points) < settings.limit:
                continue
            vectors = [np.asarray(p.vector, dtype=np.float32) for p in points]
            rest = range(k, len(points))
            conf_m = np.ones((len(rest), len(pairs)))
            delta_m = np.zeros((len(rest), len(pairs)))
            for r, x in enumerate(rest):
                for p_idx, (i, j, c) in enumerate(pairs):
                    conf_m[r, p_idx] = c
                    delta_m[r, p_idx] = (similarity(job.distance, vectors[x], vectors[i])
                                         - similarity(job.distance, vectors[x], vectors[j]))
            threshold = max(fb[:k])
            target_v = np.asarray([fb[x] - threshold for x in rest])
            rows.append((np.asarray([points[x].score for x in rest]), conf_m, delta_m, target_v))
            stats.append(pd.DataFrame({"query_idx": n, "score": [p.score for p in points[k:]],
                                       "feedback_model_score": fb[k:], "target_score": target_v}))
        if len(rows) < 2:
            raise GuardrailError(
                f"Fewer than two training queries had two top-{k} candidates with different feedback scores: there "
                "is no signal to learn from.", fix="Use more varied real queries, or another feedback model.")
        width = max(r[1].shape[1] for r in rows)

        def padded(m: np.ndarray, fill: float) -> np.ndarray:
            return np.pad(m, ((0, 0), (0, width - m.shape[1])), constant_values=fill)

        score = torch.tensor(np.stack([r[0] for r in rows]))
        confidence = torch.tensor(np.stack([padded(r[1], 1.0) for r in rows]))
        delta = torch.tensor(np.stack([padded(r[2], 0.0) for r in rows]))
        target = torch.tensor(np.stack([r[3] for r in rows]))
        half = max(1, len(rows) // 2)  # the library's split: the first half of the queries trains, the rest validates

        def fit() -> tuple[float, float, float]:
            formula = train_formula(_AllPairsFormula(), score[:half], confidence[:half], delta[:half], target[:half],
                                    score[half:], confidence[half:], delta[half:], target[half:], lr=settings.lr,
                                    epochs=settings.epochs, patience=settings.patience, min_delta=settings.min_delta)
            a, b, c = formula.params.detach().cpu().numpy().tolist()
            return float(a), float(b), float(c)

        with captured_library_output():
            weights = await anyio.to_thread.run_sync(fit)
        with_pairs, disagreeing, corr = training_signal(pd.concat(stats, ignore_index=True))
        return TrainingOutcome(weights=weights, queries_with_pairs=with_pairs, queries_disagreeing=disagreeing,
                               retriever_correlation=corr)
