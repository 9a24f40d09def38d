"""The in-memory similarities give the library's own training rows, with one Qdrant query per training query."""

from __future__ import annotations

from typing import Any

import anyio
import numpy as np
import pandas as pd
import pytest
from qdrant_client import QdrantClient, models
from qdrant_relevance_feedback import RelevanceFeedback
from qdrant_relevance_feedback.feedback import Feedback
from qdrant_relevance_feedback.retriever import Retriever

from rf_mcp.adapters.engine import similarity
from rf_mcp.adapters.rf_library import FastRelevanceFeedback, captured_library_output, parse_disagreement
from rf_mcp.adapters.scorers import Scorer
from rf_mcp.domain import guardrails

DIM = 12


class VectorRetriever(Retriever):
    def __init__(self, queries: dict[str, np.ndarray]) -> None:
        self.queries = queries

    def embed_query(self, query: str) -> list[float]:
        return self.queries[query].tolist()


class Lexical(Scorer):
    """Scores by a fixed hidden direction: a real disagreement with the retriever's space."""

    identity = "test-hidden-direction"

    def __init__(self, hidden: dict[str, float]) -> None:
        self.hidden = hidden

    async def score(self, query, documents):
        return [self.hidden[d] for d in documents]


class LibFeedback(Feedback):
    def __init__(self, hidden: dict[str, float]) -> None:
        self.hidden = hidden

    def score(self, query, responses):
        return [self.hidden[d] for d in responses]


class Counting:
    """Counts query_points calls made by the library through the client."""

    def __init__(self, client: QdrantClient) -> None:
        self.client = client
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.client, name)
        if name == "query_points":
            def counted(*a, **k):
                self.calls += 1
                return attr(*a, **k)
            return counted
        return attr


def _collection(distance: models.Distance, vector_name: str | None, n: int = 120, seed: int = 0):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, DIM))
    client = QdrantClient(":memory:")
    params = models.VectorParams(size=DIM, distance=distance)
    client.create_collection("c", vectors_config={vector_name: params} if vector_name else params)
    hidden_dir = rng.normal(size=DIM)
    hidden = {}
    points = []
    for i, v in enumerate(vectors):
        text = f"doc {i}"
        hidden[text] = float(v @ hidden_dir)
        points.append(models.PointStruct(id=i, vector={vector_name: v.tolist()} if vector_name else v.tolist(),
                                         payload={"text": text}))
    client.upsert("c", points)
    queries = {f"q{i}": rng.normal(size=DIM) for i in range(6)}
    return client, hidden, queries


class _NoEmbedder:
    def __init__(self, queries):
        self.queries = queries

    def embed_query_sync(self, q):
        return self.queries[q]


@pytest.mark.parametrize("distance", [models.Distance.COSINE, models.Distance.DOT, models.Distance.EUCLID,
                                      models.Distance.MANHATTAN])
@pytest.mark.parametrize("vector_name", [None, "dense"])
def test_rows_equal_the_library_and_cost_one_query_each(distance, vector_name):
    client, hidden, queries = _collection(distance, vector_name)
    lib = RelevanceFeedback(VectorRetriever(queries), LibFeedback(hidden), client, "c", vector_name, "text")
    counting = Counting(client)
    fast = FastRelevanceFeedback(embedder=_NoEmbedder(queries), scorer=Lexical(hidden), client=counting,
                                 collection_name="c", vector_name=vector_name or "", distance=distance.value,
                                 text_fields=["text"], check=guardrails.finite_scores)

    def run():
        with captured_library_output():
            expected = [r for i, q in enumerate(queries) for r in lib.prepare_train_data_query(i, q, limit=30)]
            got = [r for i, q in enumerate(queries) for r in fast.prepare_train_data_query(i, q, limit=30)]
        return expected, got

    async def main():
        return await anyio.to_thread.run_sync(run)

    expected, got = anyio.run(main)
    assert len(expected) == len(got) == 6 * 30
    e, g = pd.DataFrame(expected), pd.DataFrame(got)
    assert (e.drop(columns="delta") == g.drop(columns="delta")).all().all()
    # float32 storage: most rows agree to 1e-16, every row within 1e-7 (the engine's own rounding)
    assert np.max(np.abs(e["delta"].to_numpy() - g["delta"].to_numpy())) < 1e-6
    assert counting.calls == len(queries)  # the library itself makes 1 + 2 * limit per query


def test_similarity_rejects_unknown_distance():
    with pytest.raises(ValueError):
        similarity("Hamming", np.ones(2), np.ones(2))


def test_library_output_is_captured(capsys):
    import rich

    with captured_library_output() as buf:
        rich.print("On 12.50% of training queries the feedback model strongly disagreed with the retriever model.")
    assert capsys.readouterr().out == ""
    assert parse_disagreement(buf.getvalue()) == pytest.approx(0.125)
