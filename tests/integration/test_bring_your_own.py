"""Bring your own collection: one built exactly as Qdrant's official MCP server (mcp-server-qdrant 0.8.1) builds it,
served by rf-mcp over stdio with configuration only (the layout preset and that server's environment variables);
and hybrid search on it after `index --sparse-only`, with that server still writing and reading it.

mcp-server-qdrant's ``QdrantConnector`` creates the collection with one named vector ``fast-<model>`` (384, cosine),
stores each entry as ``{"document": text, "metadata": {...}}`` under a ``uuid4().hex`` id, in a qdrant-client folder
(``QDRANT_LOCAL_PATH``). The documents' own ids live in ``metadata.doc_id``. The build below uses the same client calls
and payload (qdrant-client, the same request shapes); the vectors are the shared MiniLM vectors of scifact-mini.
"""

from __future__ import annotations

import json
import math
import os
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

from rf_mcp.config import load_config
from rf_mcp.domain.datasets import read_qrels, read_queries
from rf_mcp.factory import build_retriever
from tests.common import MINI, MODEL, SHARED, mini_vectors, needs_shared, train_queries

pytestmark = [needs_shared, pytest.mark.anyio]
VECTOR = "fast-all-minilm-l6-v2"  # mcp-server-qdrant: f"fast-{model_name.split('/')[-1].lower()}"
COLLECTION = "memories"


def build_like_mcp_server_qdrant(folder: Path, tmp_path: Path) -> None:
    from qdrant_client import QdrantClient, models

    docs = [json.loads(line) for line in (MINI / "corpus.jsonl").read_text().splitlines() if line]
    vectors = np.load(mini_vectors(tmp_path))
    client = QdrantClient(path=str(folder))
    client.create_collection(COLLECTION, vectors_config={VECTOR: models.VectorParams(
        size=384, distance=models.Distance.COSINE)})
    points = [models.PointStruct(id=uuid.uuid4().hex, vector={VECTOR: v.tolist()},
                                 payload={"document": f"{d['title']} {d['text']}",
                                          "metadata": {"doc_id": d["_id"], "title": d["title"]}})
              for d, v in zip(docs, vectors, strict=True)]
    client.upsert(COLLECTION, points=points)
    client.close()


def ndcg10(ranked: list[str], relevant: dict[str, int]) -> float:
    """nDCG@10 written out independently of rf-mcp's metrics (graded gains, log2 discounts)."""
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(sorted(relevant.values(), reverse=True)[:10]))
    return dcg / ideal if ideal else 0.0


def text(r) -> str:
    return "\n".join(c.text for c in r.content if getattr(c, "text", None))


async def test_a_collection_built_by_mcp_server_qdrant_with_config_only(tmp_path):
    folder = tmp_path / "mcp-server-qdrant-data"
    build_like_mcp_server_qdrant(folder, tmp_path)
    cfg = tmp_path / "rf-mcp.toml"
    cfg.write_text(f"""
[collection]
layout = "mcp-server-qdrant"

[retriever]
model_path = "{MODEL}"   # offline here; a user leaves it out and sets EMBEDDING_MODEL like mcp-server-qdrant

[feedback]
type = "bm25"

[server]
data_roots = ["{SHARED}"]
""")
    env = {**os.environ, "RF_MCP_CONFIG": str(cfg), "QDRANT_LOCAL_PATH": str(folder), "COLLECTION_NAME": COLLECTION,
           "EMBEDDING_MODEL": "sentence-transformers/all-MiniLM-L6-v2"}
    err = tmp_path / "stderr.log"
    params = StdioServerParameters(command="bash", args=["-c", f"{sys.executable} -m rf_mcp serve 2>{err}"], env=env)
    async with Client(params, read_timeout_seconds=600) as client:
        listing = await client.call_tool("list_collections", {})
        assert not listing.is_error, text(listing)
        [overview] = listing.structured_content["collections"]
        assert overview["info"]["name"] == COLLECTION and overview["info"]["points_count"] == 500

        # no collection argument anywhere: COLLECTION_NAME is the default
        r = await client.call_tool("calibrate", {"queries": train_queries(60), "limit": 30, "epochs": 300})
        assert not r.is_error, text(r)
        assert r.structured_content["profile"]["usable"], text(r)

        r = await client.call_tool("rf_search_precision", {"query": "APOE4 and tau phosphorylation", "limit": 5})
        assert not r.is_error, text(r)
        hits = r.structured_content["hits"]
        assert len(hits) == 5 and all(h["doc_id"] and h["text"] for h in hits)
        assert all(isinstance(h["id"], str) and uuid.UUID(h["id"]) for h in hits)  # the uuid point ids
        r = await client.call_tool("rf_search_recall", {"query": "APOE4 and tau phosphorylation", "budget": 5,
                                                        "seed_ids": [h["doc_id"] for h in hits[:3]]})
        assert not r.is_error, text(r)
        r = await client.call_tool("evaluate", {"queries_path": str(MINI / "queries.jsonl"),
                                                "qrels_path": str(MINI / "qrels" / "test.tsv")})
        assert not r.is_error, text(r)
        truth = r.structured_content["evaluation"]["ground_truth"]
        rows = {m["method"]: m for m in truth["methods"]}
        assert truth["queries"] == 50 and rows["vanilla"]["ndcg_at_10"] > 0.3, rows

        # the gate's verdict is stored: RF is refused with the evaluation's advice, plain search still answers
        verdict = r.structured_content["evaluation"]["verdict"]
        assert r.structured_content["stored"], text(r)
        r = await client.call_tool("rf_search_precision", {"query": "APOE4 and tau phosphorylation"})
        if verdict == "failed":
            assert r.is_error and "ground-truth evaluation" in text(r) and "vanilla=true" in text(r)
        else:
            assert not r.is_error and (verdict != "inconclusive" or "inconclusive" in text(r)), text(r)
        r = await client.call_tool("rf_search_precision", {"query": "APOE4 and tau phosphorylation", "vanilla": True})
        assert not r.is_error, text(r)
    log = err.read_text()
    assert "qdrant-client" in log and str(folder) in log, log  # the folder's engine was detected and said so

    # "correct": the vanilla row equals nDCG@10 recomputed here, straight from the folder with qdrant-client
    from qdrant_client import QdrantClient

    retriever = build_retriever(load_config(cfg, env=env).retriever)
    await retriever.load()
    qrels = read_qrels(MINI / "qrels" / "test.tsv")
    queries = [q for q in read_queries(MINI / "queries.jsonl") if q.id in qrels]
    client = QdrantClient(path=str(folder))
    scores = []
    for q in queries:
        qv = await retriever.embed_query(q.text)
        found = client.query_points(COLLECTION, query=qv.tolist(), using=VECTOR, limit=10, with_payload=True).points
        scores.append(ndcg10([p.payload["metadata"]["doc_id"] for p in found], qrels[q.id]))
    client.close()
    assert rows["vanilla"]["ndcg_at_10"] == pytest.approx(float(np.mean(scores)), abs=1e-3)


class LikeMcpServerQdrant:
    """mcp-server-qdrant 0.8's ``QdrantConnector``, call for call (``AsyncQdrantClient`` on its folder; ``store``,
    ``search`` and the collection it creates), with the embeddings given (the cached MiniLM vectors) instead of made
    by its fastembed provider."""

    def __init__(self, folder: Path) -> None:
        from qdrant_client import AsyncQdrantClient

        self.client = AsyncQdrantClient(location=None, api_key=None, path=str(folder))

    async def store(self, content: str, metadata: dict | None, embedding: list[float]) -> None:
        from qdrant_client import models

        if not await self.client.collection_exists(COLLECTION):
            await self.client.create_collection(COLLECTION, vectors_config={VECTOR: models.VectorParams(
                size=len(embedding), distance=models.Distance.COSINE)})
        await self.client.upsert(COLLECTION, points=[models.PointStruct(
            id=uuid.uuid4().hex, vector={VECTOR: embedding}, payload={"document": content, "metadata": metadata})])

    async def search(self, embedding: list[float], limit: int = 10) -> list[tuple[str, dict | None]]:
        found = await self.client.query_points(COLLECTION, query=embedding, using=VECTOR, limit=limit)
        return [(p.payload["document"], p.payload.get("metadata")) for p in found.points]

    async def close(self) -> None:
        await self.client.close()


def stored_points(folder: Path) -> dict[str, tuple[dict, dict]]:
    """Every point's vectors and payload, read straight from the folder with qdrant-client."""
    from qdrant_client import QdrantClient

    client = QdrantClient(path=str(folder))
    try:
        records, _ = client.scroll(COLLECTION, limit=10_000, with_payload=True, with_vectors=True)
        return {str(r.id): (r.vector, r.payload) for r in records}
    finally:
        client.close()


async def test_hybrid_search_on_a_collection_mcp_server_qdrant_keeps_using(tmp_path):
    """`index --sparse-only` adds the BM25 sparse vector to a collection mcp-server-qdrant wrote and fills it from the
    payload text: hybrid search (fusion "sparse") is then served, while that server still stores and finds entries
    as before, the old points' dense vectors and payloads byte for byte as it wrote them. An entry it stores later
    (no BM25 vector: its upsert writes the whole point) is found by hybrid search's dense side, and a second
    `--sparse-only` run gives it one."""
    from rf_mcp.bootstrap import open_service

    docs = [json.loads(line) for line in (MINI / "corpus.jsonl").read_text().splitlines() if line][:61]
    vectors = np.load(mini_vectors(tmp_path))[:61].tolist()
    folder = tmp_path / "mcp-server-qdrant-data"
    theirs = LikeMcpServerQdrant(folder)
    for d, v in zip(docs[:60], vectors[:60], strict=True):
        await theirs.store(f"{d['title']} {d['text']}", {"doc_id": d["_id"]}, v)
    found_before = await theirs.search(vectors[7])
    await theirs.close()
    written = stored_points(folder)

    cfg_path = tmp_path / "rf-mcp.toml"
    cfg_path.write_text(f'[collection]\nlayout = "mcp-server-qdrant"\n\n[retriever]\nmodel_path = "{MODEL}"\n')
    cfg = load_config(cfg_path, env={"QDRANT_LOCAL_PATH": str(folder), "COLLECTION_NAME": COLLECTION})
    title = docs[11]["title"]
    async with open_service(cfg) as rf:
        report = await rf.index(None, sparse_only=True)
        assert report.sparse_vector == "bm25" and report.documents == 60
        assert any("Added the BM25 sparse vector 'bm25'" in n for n in report.notes), report.notes
        hits = (await rf.search_precision(None, title, vanilla=True, fusion="sparse", limit=5)).hits
        assert {h.source for h in hits} == {"hybrid"} and hits[0].doc_id == docs[11]["_id"]

    after = stored_points(folder)
    assert after.keys() == written.keys()
    for pid, (vecs, payload) in written.items():  # only the BM25 vector was added
        assert after[pid][1] == payload and after[pid][0][VECTOR] == vecs[VECTOR], pid
        assert set(after[pid][0]) == {VECTOR, "bm25"} and after[pid][0]["bm25"].indices

    theirs = LikeMcpServerQdrant(folder)  # mcp-server-qdrant, as before
    assert await theirs.search(vectors[7]) == found_before
    later = f"{docs[60]['title']} {docs[60]['text']}"
    await theirs.store(later, {"doc_id": docs[60]["_id"]}, vectors[60])
    assert (await theirs.search(vectors[60], limit=1))[0] == (later, {"doc_id": docs[60]["_id"]})
    await theirs.close()
    new = [vecs for pid, (vecs, _) in stored_points(folder).items() if pid not in written]
    assert len(new) == 1 and set(new[0]) == {VECTOR}  # its upsert wrote the whole point: no BM25 vector

    async with open_service(cfg) as rf:
        hits = (await rf.search_precision(None, docs[60]["title"], vanilla=True, fusion="sparse", limit=5)).hits
        assert docs[60]["_id"] in [h.doc_id for h in hits]  # by its dense vector
        assert (await rf.index(None, sparse_only=True)).documents == 61
    assert all(set(vecs) == {VECTOR, "bm25"} for vecs, _ in stored_points(folder).values())
