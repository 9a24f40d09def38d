"""Shared helpers for the tests (imported as ``tests.common``): paths to ../shared, configs, test scorers."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from rf_mcp.domain.datasets import read_qrels, read_queries
from rf_mcp.ports import Retriever, Scorer

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("RF_MCP_SHARED", ROOT.parent / "shared"))
MODEL = SHARED / "models" / "all-MiniLM-L6-v2-int8"
SCIFACT = SHARED / "data" / "scifact"
MINI = SHARED / "data" / "scifact-mini"

needs_shared = pytest.mark.skipif(
    not (MODEL / "model.onnx").is_file() or not (MINI / "corpus.jsonl").is_file(),
    reason=f"needs the shared models and data at {SHARED} (set RF_MCP_SHARED to their folder)",
)


def config_text(data_path: Path, feedback: str = 'type = "bm25"') -> str:
    """A config for the shared MiniLM model; served tools may read files in ../shared and the test's folder."""
    return f"""
[server]
data_roots = ["{SHARED}", "{data_path.parent}"]

[qdrant]
path = "{data_path}"

[retriever]
model = "local/all-MiniLM-L6-v2"
model_path = "{MODEL}"
dim = 384
pooling = "mean"

[feedback]
{feedback}
"""


def make_config(tmp: Path, data_path: Path, feedback: str = 'type = "bm25"') -> Path:
    p = tmp / "config.toml"
    p.write_text(config_text(data_path, feedback))
    return p


def train_queries(n: int = 60) -> list[str]:
    ids = set(read_qrels(SCIFACT / "qrels" / "train.tsv"))
    return [q.text for q in read_queries(SCIFACT / "queries.jsonl", ids=ids)][:n]


def mini_vectors(tmp: Path) -> Path:
    """The precomputed MiniLM vectors of the scifact-mini corpus, in its line order."""
    ids = json.loads((SCIFACT / "embeddings" / "minilm_ids.json").read_text())["corpus_ids"]
    pos = {d: i for i, d in enumerate(ids)}
    corpus = np.load(SCIFACT / "embeddings" / "minilm_corpus.npy", mmap_mode="r")
    order = [pos[json.loads(line)["_id"]] for line in (MINI / "corpus.jsonl").read_text().splitlines() if line]
    out = tmp / "mini_vectors.npy"
    np.save(out, np.asarray(corpus[order], dtype=np.float32))
    return out


class CachedDenseScorer(Scorer):
    """A feedback model scoring with the retriever's own cached vectors: it agrees with the retriever."""

    identity = "test-cached-minilm"

    def __init__(self, retriever: Retriever) -> None:
        self.retriever = retriever
        ids = json.loads((SCIFACT / "embeddings" / "minilm_ids.json").read_text())["corpus_ids"]
        pos = {d: i for i, d in enumerate(ids)}
        corpus = np.load(SCIFACT / "embeddings" / "minilm_corpus.npy")
        self.by_text = {}
        for line in (MINI / "corpus.jsonl").read_text().splitlines():
            d = json.loads(line)
            self.by_text[f"{d['title']} {d['text']}"] = corpus[pos[d["_id"]]]

    async def score(self, query: str, documents: Sequence[str]) -> list[float]:
        q = await self.retriever.embed_query(query)
        return [float(np.dot(q, self.by_text[d])) for d in documents]


class ConstantScorer(Scorer):
    def __init__(self, value: float, identity: str = "test-constant") -> None:
        self.value = value
        self.identity = identity

    async def score(self, query: str, documents: Sequence[str]) -> list[float]:
        return [self.value] * len(documents)
