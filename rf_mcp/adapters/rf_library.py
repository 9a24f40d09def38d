"""Bridge to ``qdrant-relevance-feedback``: its training loop and Evaluator, with our adapters.

* Its progress output (``rich`` to stdout) is captured: stdout is the MCP protocol channel.
* Its per-candidate ``get_similarity_score`` (one Qdrant query, a full scan on the embedded engine,
  per candidate) is replaced by the same similarity computed from the vectors already retrieved;
  the formula, loss, data split and training loop stay the library's own.
* Runs in a worker thread; async scorers are called back on the event loop with ``anyio.from_thread``.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import anyio.from_thread
import numpy as np
import pandas as pd
import rich
from qdrant_relevance_feedback import RelevanceFeedback
from qdrant_relevance_feedback.feedback import Feedback
from qdrant_relevance_feedback.retriever import Retriever
from qdrant_relevance_feedback.train.train import get_context_pairs, vanilla_retrieval
from rich.console import Console

from rf_mcp.adapters.embedder import Embedder
from rf_mcp.adapters.engine import similarity
from rf_mcp.adapters.scorers import Scorer
from rf_mcp.errors import GuardrailError

_capture_lock = threading.Lock()
_DISAGREEMENT = re.compile(r"On ([0-9.]+)% of training queries the feedback model strongly disagreed")

Progress = Callable[[float, float, str], Awaitable[None]]
# validates a scorer's output: (scores, expected count, scorer identity) -> scores
ScoreCheck = Callable[[Sequence[float], int, str], list[float]]


@contextmanager
def captured_library_output() -> Iterator[io.StringIO]:
    """Route the library's rich console to a buffer for the duration (one user at a time)."""
    buf = io.StringIO()
    with _capture_lock:
        saved = rich._console  # noqa: SLF001 - the library prints through rich's global console
        rich._console = Console(file=buf, force_terminal=False, color_system=None, width=160)  # noqa: SLF001
        try:
            yield buf
        finally:
            rich._console = saved  # noqa: SLF001


def parse_disagreement(log: str) -> float | None:
    m = _DISAGREEMENT.search(log)
    return float(m.group(1)) / 100 if m else None


class LibraryRetriever(Retriever):
    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def embed_query(self, query: str) -> list[float]:
        return self.embedder.embed_query_sync(query).tolist()


class LibraryFeedback(Feedback):
    """Sync face of an async scorer, for code running in a worker thread; counts the scores it used."""

    def __init__(self, scorer: Scorer, check: ScoreCheck) -> None:
        self.scorer = scorer
        self.check = check
        self.calls = 0

    def score(self, query: Any, responses: list[Any]) -> list[float]:
        anyio.from_thread.check_cancelled()
        scores = anyio.from_thread.run(self.scorer.score, query, list(responses))
        self.calls += len(responses)
        return self.check(scores, len(responses), self.scorer.identity)


class FastRelevanceFeedback(RelevanceFeedback):
    """The library's RelevanceFeedback with in-memory similarities and progress/cancellation hooks."""

    def __init__(self, *, embedder: Embedder, scorer: Scorer, client: Any, collection_name: str,
                 vector_name: str, distance: str, text_fields: Sequence[str], check: ScoreCheck,
                 progress: Progress | None = None) -> None:
        super().__init__(LibraryRetriever(embedder), LibraryFeedback(scorer, check), client, collection_name,
                         vector_name or None)
        self.distance = distance
        self.text_fields = list(text_fields)
        self.progress = progress
        self.training_data: pd.DataFrame | None = None
        self._done = self._total = self._rows = 0

    @property
    def feedback_calls(self) -> int:
        return self.feedback.calls  # type: ignore[attr-defined]

    def retrieve_payload(self, responses: list[Any]) -> list[str]:
        return [payload_text(p.payload or {}, self.text_fields) for p in responses]

    def _vector(self, point: Any) -> np.ndarray:
        v = point.vector[self.vector_name] if self.vector_name else point.vector
        return np.asarray(v, dtype=np.float32)

    def prepare_train_data_query(self, query_idx: int, query: Any, limit: int = 25, context_limit: int = 5,
                                 confidence_margin: float = 0.0) -> list[dict]:
        """Same rows as the library's method; similarities to the context pair come from vectors in hand."""
        anyio.from_thread.check_cancelled()
        query_embedding = self.retriever.embed_query(query)
        responses = vanilla_retrieval(self.client, query_embedding, limit=limit, vector_name=self.vector_name,
                                      collection_name=self.collection_name)
        scores = self.feedback.score(query, self.retrieve_payload(responses))
        pairs = get_context_pairs(scores[:context_limit], confidence_margin=confidence_margin)
        self._report(f"training query {query_idx + 1}/{self._total}")
        if not pairs:
            return []
        negative_idx, positive_idx, confidence = pairs[0]
        vectors = [self._vector(p) for p in responses]
        pos, neg = vectors[positive_idx], vectors[negative_idx]
        rows = []
        for response_idx, (response, fb) in enumerate(zip(responses, scores)):
            delta = similarity(self.distance, vectors[response_idx], pos) - similarity(
                self.distance, vectors[response_idx], neg)
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

    def _report(self, message: str) -> None:
        self._done += 1
        if self.progress is not None:
            anyio.from_thread.run(self.progress, float(self._done), float(self._total), message)


def payload_text(payload: dict[str, Any], fields: Sequence[str]) -> str:
    return " ".join(str(payload[f]) for f in fields if payload.get(f))
