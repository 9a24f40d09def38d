"""The training bridge gives the library's own training rows, with one engine query per training query."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import numpy as np
import pandas as pd
import pytest
from qdrant_relevance_feedback import RelevanceFeedback
from qdrant_relevance_feedback.feedback import Feedback
from qdrant_relevance_feedback.retriever import Retriever as LibRetriever

from rf_mcp.adapters.engines.client import ClientEngine
from rf_mcp.adapters.rf_library import FastRelevanceFeedback, captured_library_output, parse_disagreement, similarity
from rf_mcp.config import QdrantSettings
from rf_mcp.domain.calibration import training_job
from rf_mcp.domain.context import resolve_target
from rf_mcp.ports import CollectionSpec, PointInput, QueryRequest, Retriever, Scorer

DIM = 12


class VectorRetriever(LibRetriever):
    def __init__(self, queries: dict[str, np.ndarray]) -> None:
        self.queries = queries

    def embed_query(self, query: str) -> list[float]:
        return self.queries[query].tolist()


class TableRetriever(Retriever):
    """The port's retriever over a fixed table of query vectors."""

    def __init__(self, queries: dict[str, np.ndarray]) -> None:
        self.queries = queries

    async def load(self) -> None:
        return None

    @property
    def identity(self) -> str:
        return "test-table"

    @property
    def dim(self) -> int:
        return DIM

    async def embed_query(self, text: str) -> np.ndarray:
        return self.queries[text].astype(np.float32)

    async def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError


class Hidden(Scorer):
    """Scores by a fixed hidden direction: a real disagreement with the retriever's space."""

    identity = "test-hidden-direction"

    def __init__(self, hidden: dict[str, float]) -> None:
        self.hidden = hidden

    async def score(self, query: str, documents: Sequence[str]) -> list[float]:
        return [self.hidden[d] for d in documents]


class LibFeedback(Feedback):
    def __init__(self, hidden: dict[str, float]) -> None:
        self.hidden = hidden

    def score(self, query: Any, responses: list[Any]) -> list[float]:
        return [self.hidden[d] for d in responses]


class Counting(ClientEngine):
    calls = 0

    async def query(self, collection: str, request: QueryRequest) -> Any:
        self.calls += 1
        return await super().query(collection, request)


DISTANCES = ["Cosine", "Dot", "Euclid", "Manhattan"]


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("vector_name", ["", "dense"])
def test_rows_equal_the_library_and_cost_one_query_each(distance, vector_name):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(120, DIM))
    hidden_dir = rng.normal(size=DIM)
    hidden = {f"doc {i}": float(v @ hidden_dir) for i, v in enumerate(vectors)}
    queries = {f"q{i}": rng.normal(size=DIM) for i in range(6)}
    engine = Counting(QdrantSettings(path=":memory:", backend="local"))

    async def main() -> tuple[list[dict], list[dict], int]:
        await engine.create_collection("c", CollectionSpec(vector_name, DIM, distance))
        await engine.upsert("c", [PointInput(i, {vector_name: v.tolist()}, {"text": f"doc {i}"})
                                  for i, v in enumerate(vectors)])
        lib = RelevanceFeedback(VectorRetriever(queries), LibFeedback(hidden), engine._connect(), "c",
                                vector_name or None, "text")
        target = await resolve_target(engine, TableRetriever(queries), Hidden(hidden), "c", vector_name, ["text"])
        fast = FastRelevanceFeedback(training_job(target))
        engine.calls = 0

        def run() -> tuple[list[dict], list[dict]]:
            with captured_library_output():
                expected = [r for i, q in enumerate(queries) for r in lib.prepare_train_data_query(i, q, limit=30)]
                got = [r for i, q in enumerate(queries) for r in fast.prepare_train_data_query(i, q, limit=30)]
            return expected, got

        expected, got = await anyio.to_thread.run_sync(run)
        return expected, got, engine.calls

    expected, got, calls = anyio.run(main)
    assert len(expected) == len(got) == 6 * 30
    e, g = pd.DataFrame(expected), pd.DataFrame(got)
    assert (e.drop(columns=["delta", "score"]) == g.drop(columns=["delta", "score"])).all().all()
    # float32 storage: most rows agree to 1e-16, every row within 1e-6 (the engine's own rounding)
    assert np.max(np.abs(e["score"].to_numpy() - g["score"].to_numpy())) < 1e-6
    assert np.max(np.abs(e["delta"].to_numpy() - g["delta"].to_numpy())) < 1e-6
    assert calls == len(queries)  # the library itself makes 1 + 2 * limit per query


def test_similarity_rejects_unknown_distance():
    with pytest.raises(ValueError):
        similarity("Hamming", np.ones(2), np.ones(2))


def test_library_output_is_captured(capsys):
    import rich

    with captured_library_output() as buf:
        rich.print("On 12.50% of training queries the feedback model strongly disagreed with the retriever model.")
    assert capsys.readouterr().out == ""
    assert parse_disagreement(buf.getvalue()) == pytest.approx(0.125)
