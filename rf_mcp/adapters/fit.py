"""Fits the formula weights a, b, c without torch: the training library's rows, ranking loss, train/validation split,
Adam and early stopping, vectorized in numpy (the default trainer; ``[calibration] trainer = "library"`` runs the
library itself, which needs torch).

Why hand-written: the library's ``train`` builds a pandas frame and fits three parameters with torch, 1,000 epochs
of tiny tensors: on 100 SciFact training queries the fit took most of the calibration's CPU time. The objective is
small enough to state here, and ``tests/integration/test_trainer_double.py`` holds it to the library's numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import anyio
import anyio.from_thread
import numpy as np

from rf_mcp.errors import GuardrailError
from rf_mcp.ports import (
    FeedbackItem,
    LibraryEvaluation,
    Point,
    SkippedQuery,
    Trainer,
    TrainingJob,
    TrainingOutcome,
    TrainSettings,
)
from rf_mcp.ports.queries import Weights3

__all__ = ["VectorizedTrainer", "context_pair", "fit", "similarity", "spearman"]


def similarity(distance: str, u: np.ndarray, v: np.ndarray) -> float:
    """The score Qdrant reports for query ``u`` against stored ``v`` (as ``query_points`` shows it): the stored
    vector in float32 (unit-normalised for cosine), the query in float64, as the engine computes it."""
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


class _Pairs:
    """Every pair of one query's responses whose targets order them, as the differences the hinge reads.

    The naive formula is f = a*score + c*conf**b*delta, and a query's responses share its pair's confidence, so a
    pair's margin f(less relevant) - f(more relevant) + MARGIN is a*d_score + c*conf**b*d_delta + MARGIN: the
    differences are taken once here, and each epoch costs a few vector operations over the pairs."""

    def __init__(self, score: np.ndarray, conf: np.ndarray, delta: np.ndarray, target: np.ndarray) -> None:
        q, neg, pos = np.nonzero(target[:, None, :] - target[:, :, None] > 0)
        self.d_score = score[q, neg] - score[q, pos]
        self.d_delta = delta[q, neg] - delta[q, pos]
        self.conf = conf[q, neg]  # = conf[q, pos]: one confidence per query
        self.log_conf = np.log(self.conf)

    def loss_and_grad(self, w: np.ndarray, want_grad: bool) -> tuple[float, np.ndarray]:
        """The library's ranking loss (hinge, summed over pairs) and its gradient in (a, b, c)."""
        a, b, c = w
        powered_delta = self.conf ** b * self.d_delta
        margins = a * self.d_score + c * powered_delta + MARGIN
        active = margins >= 0
        loss = float(margins[active].sum())
        if not want_grad:
            return loss, np.zeros(3)
        pd = powered_delta[active]
        return loss, np.array([self.d_score[active].sum(), c * (pd * self.log_conf[active]).sum(), pd.sum()])


def fit(score: np.ndarray, conf: np.ndarray, delta: np.ndarray, target: np.ndarray,
        settings: TrainSettings) -> Weights3:
    """The library's ``split_train_val`` + ``train_formula``: Adam (torch's defaults) on the naive formula from
    a=b=c=1, the first half of the queries training and the rest validating, early stopping on validation loss."""
    half = len(score) // 2
    train = _Pairs(score[:half], conf[:half], delta[:half], target[:half])
    val = _Pairs(score[half:], conf[half:], delta[half:], target[half:])
    w = np.ones(3)
    m, v = np.zeros(3), np.zeros(3)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    best_val, best, since = math.inf, None, 0
    for epoch in range(1, settings.epochs + 1):
        if epoch % 50 == 0:
            anyio.from_thread.check_cancelled()  # a cancelled calibration stops between epochs
        _, g = train.loss_and_grad(w, True)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        denom = np.sqrt(v) / math.sqrt(1 - beta2 ** epoch) + eps
        w = w - settings.lr / (1 - beta1 ** epoch) * m / denom
        val_loss, _ = val.loss_and_grad(w, False)
        if val_loss + settings.min_delta < best_val:
            best_val, best, since = val_loss, w.copy(), 0
        else:
            since += 1
        if since >= settings.patience:
            break
    if best is not None:
        w = best
    return float(w[0]), float(w[1]), float(w[2])


class VectorizedTrainer(Trainer):
    """The training library's fit without torch: the same rows, loss, split and loop, vectorized in numpy.

    ``train`` makes the library's rows: for each query (in order) ``job.embed``, ``job.candidates(limit)``,
    ``job.texts`` and one ``job.score`` of all candidates, a progress report, then the most confident context pair
    among the top ``context_limit`` (skipped without one, or when ``job.score`` raises :class:`SkippedQuery`); per
    candidate past ``context_limit`` the dense score, the pair's confidence, delta = sim(x, positive) - sim(x,
    negative) and target = feedback score minus the best top one. It counts queries with pairs, queries with a
    positive target (disagreeing) and the mean per-query Spearman correlation as ``rf_library.training_signal`` does,
    and fits (a, b, c) with the library's loss, split, Adam and early stopping in numpy. No training query with a pair
    is refused as the library adapter refuses it.
    ``evaluate`` is the library's ``Evaluator.evaluate_query`` over the job's callables.

    Measured against the library on the same jobs (tests/integration/test_trainer_double.py): the same query counts
    and correlation, weights within 1e-4 (float64 here, float32 parameters there). ``library_reported`` is None
    (no library printed anything). The fit runs in a worker thread and stops between epochs when the call is
    cancelled; every query must have ``limit`` candidates (the library's split needs them).
    """

    identity = "numpy-fit(qdrant-relevance-feedback==0.1.1 rows, loss and loop)"

    async def train(self, job: TrainingJob, queries: Sequence[str], settings: TrainSettings) -> TrainingOutcome:
        k, m = settings.context_limit, settings.limit - settings.context_limit
        rows: list[tuple[list[float], list[float], list[float], list[float]]] = []  # score, conf, delta, target
        fbs: list[list[float]] = []
        for n, query in enumerate(queries):
            await anyio.lowlevel.checkpoint()
            qv = await job.embed(query)
            points = await job.candidates(query, qv, settings.limit)
            try:
                fb = [float(x) for x in await job.score(query, await job.texts(points))]
            except SkippedQuery:  # counted by the domain: no row, as a query without a pair
                fb = []
            if job.progress is not None:
                await job.progress(float(n + 1), float(len(queries)), f"training query {n + 1}/{len(queries)}")
            pair = context_pair(fb[:k], settings.confidence_margin) if fb else None
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
        weights = await anyio.to_thread.run_sync(fit, score, conf, delta, target, settings)
        corrs = [c for s, fb in zip(score, fbs, strict=True) if (c := spearman(s, np.asarray(fb))) is not None]
        corr = round(sum(corrs) / len(corrs), 4) if corrs else None
        return TrainingOutcome(weights=weights, queries_with_pairs=len(rows),
                               queries_disagreeing=int((target > 0).any(axis=1).sum()), retriever_correlation=corr)

    async def evaluate(self, job: TrainingJob, queries: Sequence[str], weights: Weights3, at_n: int,
                       context_limit: int) -> LibraryEvaluation:
        rf_total = vanilla_total = kept = 0
        wins = {"rf": 0, "vanilla": 0, "tie": 0}

        def texts(points: Sequence[Point]) -> list[str]:
            return [job.text(p.payload or {}) for p in points]

        def dcg(scores: Sequence[float]) -> float:
            return sum(s / math.log2(rank + 1) for rank, s in enumerate(scores[:at_n], 1))

        async def graded(query: str) -> tuple[float, list[float], list[float]] | None:
            """(threshold, RF grades, vanilla grades), or None: no contrast among the seeds, or skipped."""
            qv = np.asarray(await job.embed(query), dtype=np.float32)
            first = await job.nearest(qv, context_limit, [])
            fb = list(await job.score(query, texts(first)))
            if len(fb) < 2 or all(abs(s - fb[0]) < 1e-9 for s in fb):
                return None
            feedback = [FeedbackItem(example=p.id, score=float(s)) for p, s in zip(first, fb, strict=True)]
            rf = list(await job.score(query, texts(await job.relevance_feedback(qv, feedback, weights, at_n))))
            vanilla = list(await job.score(query, texts(await job.nearest(qv, at_n, [p.id for p in first]))))
            return max(fb), rf, vanilla

        for i, query in enumerate(queries):
            await anyio.lowlevel.checkpoint()
            try:
                res = await graded(query)
            except SkippedQuery:  # counted by the domain: not kept, as a query without contrast
                res = None
            if res is not None:
                threshold, rf, vanilla = res
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
