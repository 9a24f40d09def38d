"""Indexing a JSONL corpus: embed with the retriever, upsert in batches under stable ids."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rf_mcp.adapters.embedder import Embedder
from rf_mcp.adapters.engine import PointId, QdrantEngine
from rf_mcp.domain import guardrails
from rf_mcp.domain.datasets import read_jsonl
from rf_mcp.domain.models import IndexReport
from rf_mcp.errors import InputError

ID_NAMESPACE = uuid.UUID("6f0c1f5e-3a7e-4f9a-9a51-2b1b6a0c9d11")
Progress = Callable[[float, float, str], Awaitable[None]]


def point_id(doc_id: str) -> PointId:
    """Stable Qdrant id: the number itself for plain decimal ids, else a UUID5 of the id."""
    if doc_id.isdigit() and (doc_id == "0" or not doc_id.startswith("0")) and int(doc_id) < 2**63:
        return int(doc_id)
    return str(uuid.uuid5(ID_NAMESPACE, doc_id))


def load_documents(path: str | Path, id_field: str, text_fields: Sequence[str]) -> list[dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {}
    for lineno, obj in read_jsonl(path, "corpus"):
        if obj.get(id_field) in (None, ""):
            raise InputError(f"{path}:{lineno} has no id field {id_field!r}.",
                             fix="Give every document an id, or set [collection].id_field to the field that holds it.")
        if not any(isinstance(obj.get(f), str) and obj[f].strip() for f in text_fields):
            raise InputError(f"{path}:{lineno} has no text in fields {list(text_fields)}.",
                             fix="Set [collection].text_fields to the fields holding the document text.")
        payload = {k: v for k, v in obj.items() if k != id_field}
        payload["doc_id"] = str(obj[id_field])
        docs[str(obj[id_field])] = payload  # a repeated id keeps its last version
    if not docs:
        raise InputError(f"The corpus file {path} holds no documents.", fix="Pass a JSONL file with documents.")
    return list(docs.values())


async def ensure_collection(engine: QdrantEngine, collection: str, vector_name: str, dim: int) -> bool:
    """Create the collection if missing; else check its vector. Returns True if created."""
    if not await engine.exists(collection):
        await engine.create_collection(collection, vector_name, dim)
        return True
    guardrails.dense_vector(await engine.describe(collection), vector_name, dim)
    return False


async def upsert_documents(engine: QdrantEngine, collection: str, vector_name: str, docs: Sequence[dict[str, Any]],
                           vectors: np.ndarray | Sequence[Sequence[float]]) -> None:
    await engine.upsert(collection, vector_name, [point_id(d["doc_id"]) for d in docs], vectors, list(docs))


def _doc_text(doc: dict[str, Any], text_fields: Sequence[str]) -> str:
    return " ".join(str(doc[f]) for f in text_fields if doc.get(f))


async def check_precomputed(embedder: Embedder, docs: Sequence[dict[str, Any]], vectors: np.ndarray,
                            text_fields: Sequence[str], sample: int = 3, min_cosine: float = 0.98) -> None:
    """Precomputed vectors must be the configured retriever's: re-embed a few documents and compare."""
    if vectors.ndim != 2 or len(vectors) != len(docs):
        raise InputError(f"The vectors file holds {vectors.shape} but the corpus has {len(docs)} documents.",
                         fix="Give one vector per corpus line, in the corpus file's order.")
    if vectors.shape[1] != embedder.dim:
        raise InputError(f"The vectors have {vectors.shape[1]} dimensions; the retriever makes {embedder.dim}.",
                         fix="Use vectors made by the configured retriever.")
    n = min(sample, len(docs))
    fresh = await embedder.embed_documents([_doc_text(d, text_fields) for d in docs[:n]])
    given = vectors[:n]
    cos = (fresh * given).sum(1) / (np.linalg.norm(fresh, axis=1) * np.linalg.norm(given, axis=1) + 1e-12)
    if float(cos.min()) < min_cosine:
        raise InputError(
            f"The precomputed vectors do not match the configured retriever (cosine {float(cos.min()):.3f} on a "
            "re-embedded sample): searching them with this retriever would be wrong.",
            fix="Use vectors from the configured retriever, in the corpus file's order, or index without --vectors.")


async def index_file(engine: QdrantEngine, embedder: Embedder, collection: str, vector_name: str, path: str | Path,
                     *, id_field: str, text_fields: Sequence[str], batch_size: int = 64,
                     vectors: np.ndarray | None = None, progress: Progress | None = None) -> IndexReport:
    """Index a corpus; with ``vectors`` (one row per corpus line, from the same retriever) skip embedding."""
    t0 = time.perf_counter()
    docs = load_documents(path, id_field, text_fields)
    await embedder.warm_up()
    if vectors is not None:
        await check_precomputed(embedder, docs, vectors, text_fields)
        batch_size = 512
    created = await ensure_collection(engine, collection, vector_name, embedder.dim)
    for start in range(0, len(docs), batch_size):
        batch = docs[start:start + batch_size]
        if vectors is None:
            batch_vectors = await embedder.embed_documents([_doc_text(d, text_fields) for d in batch])
        else:
            batch_vectors = vectors[start:start + batch_size]
        await upsert_documents(engine, collection, vector_name, batch, batch_vectors)
        if progress is not None:
            done = min(start + batch_size, len(docs))
            await progress(float(done), float(len(docs)), f"indexed {done}/{len(docs)} documents")
    return IndexReport(collection=collection, vector_name=vector_name, documents=len(docs), created=created,
                       points_count=await engine.count(collection), seconds=round(time.perf_counter() - t0, 3))
