"""Indexing a JSONL corpus: embed with the retriever, upsert in batches under stable ids, with BM25 sparse vectors.

The sparse vectors hold BM25 term weights for the collection's average document length, recorded in the
collection's metadata on first use (with the encoder's identity) so later batches use the same; the engine's IDF
modifier keeps the term statistics current as documents are added.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rf_mcp.domain import guardrails
from rf_mcp.domain.datasets import read_jsonl
from rf_mcp.domain.models import IndexReport
from rf_mcp.domain.payload import DOC_ID, is_decimal, payload_text, set_path
from rf_mcp.errors import InputError
from rf_mcp.ports import CollectionSpec, Engine, PointId, PointInput, Progress, Retriever, SparseEncoder

ID_NAMESPACE = uuid.UUID("6f0c1f5e-3a7e-4f9a-9a51-2b1b6a0c9d11")
SPARSE_KEY_PREFIX = "rf_mcp.sparse:"  # metadata: {"encoder": identity, "avgdl": float} per sparse vector


def point_id(doc_id: str) -> PointId:
    """Stable Qdrant id: the number itself for plain decimal ids, else a UUID5 of the id."""
    if is_decimal(doc_id) and (doc_id == "0" or not doc_id.startswith("0")) and int(doc_id) < 2**63:
        return int(doc_id)
    return str(uuid.uuid5(ID_NAMESPACE, doc_id))


def load_documents(path: str | Path, input_id_field: str, text_fields: Sequence[str],
                   id_field: str = DOC_ID) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """(document id, payload) per document (the payload keeps the id under ``id_field``), and the ids that came
    more than once (the last line of each is kept)."""
    docs: dict[str, dict[str, Any]] = {}
    repeated: list[str] = []
    for lineno, obj in read_jsonl(path, "corpus"):
        raw = obj.get(input_id_field)
        if raw in (None, "") or isinstance(raw, dict | list | bool):
            raise InputError(f"Line {lineno} of the corpus has no usable id in field {input_id_field!r}.",
                             fix="Give every document an id, or set [collection].input_id_field to the field that "
                                 "holds it.")
        if not payload_text(obj, text_fields).strip():
            raise InputError(f"Line {lineno} of the corpus has no text in fields {list(text_fields)}.",
                             fix="Set [collection].text_fields to the fields holding the document text.")
        payload = {k: v for k, v in obj.items() if k != input_id_field}
        set_path(payload, id_field, str(raw))
        if str(raw) in docs:
            repeated.append(str(raw))
        docs[str(raw)] = payload  # a repeated id keeps its last version
    if not docs:
        raise InputError("The corpus file holds no documents.", fix="Pass a JSONL file with documents.")
    return list(docs.items()), repeated


async def check_precomputed(retriever: Retriever, docs: Sequence[dict[str, Any]], vectors: np.ndarray,
                            text_fields: Sequence[str], sample: int = 3, min_cosine: float = 0.98) -> None:
    """Precomputed vectors must be the configured retriever's: re-embed a few documents and compare."""
    if vectors.ndim != 2 or len(vectors) != len(docs):
        raise InputError(f"The vectors file holds {vectors.shape} but the corpus has {len(docs)} documents.",
                         fix="Give one vector per corpus line, in the corpus file's order.")
    if vectors.shape[1] != retriever.dim:
        raise InputError(f"The vectors have {vectors.shape[1]} dimensions; the retriever makes {retriever.dim}.",
                         fix="Use vectors made by the configured retriever.")
    if not np.isfinite(vectors).all():
        raise InputError("The vectors file holds NaN or infinite values.", fix="Recompute the vectors.")
    n = min(sample, len(docs))
    fresh = await retriever.embed_documents([payload_text(d, text_fields) for d in docs[:n]])
    given = vectors[:n]
    cos = (fresh * given).sum(1) / (np.linalg.norm(fresh, axis=1) * np.linalg.norm(given, axis=1) + 1e-12)
    if float(cos.min()) < min_cosine:
        raise InputError(
            f"The precomputed vectors do not match the configured retriever (cosine {float(cos.min()):.3f} on a "
            "re-embedded sample): searching them with this retriever would be wrong.",
            fix="Use vectors from the configured retriever, in the corpus file's order, or index without --vectors.")


class SparseIndex:
    """Writes a collection's BM25 sparse vectors with one encoder and one recorded average document length."""

    def __init__(self, engine: Engine, collection: str, name: str, encoder: SparseEncoder) -> None:
        self.engine, self.collection, self.name, self.encoder = engine, collection, name, encoder
        self.avgdl: float | None = None

    @property
    def key(self) -> str:
        return SPARSE_KEY_PREFIX + self.name

    async def prepare(self, texts: Sequence[str], *, rebuild: bool = False) -> None:
        """Use the recorded average length, or record one from ``texts`` (the first batch, or the whole corpus)."""
        meta = (await self.engine.get_metadata(self.collection)).get(self.key)
        if isinstance(meta, dict) and not rebuild:
            if meta.get("encoder") != self.encoder.identity:
                raise InputError(
                    f"The sparse vector {self.name!r} of {self.collection!r} was written by {meta.get('encoder')!r}, "
                    f"not by this version's {self.encoder.identity!r}: mixing the two would corrupt lexical search.",
                    fix=f"Rebuild it: `rf-mcp index --sparse-only -c {self.collection}` (or the index tool with "
                        "sparse_only).")
            self.avgdl = float(meta["avgdl"])
            return
        lengths = self.encoder.document_lengths(texts)
        self.avgdl = max(1.0, sum(lengths) / max(1, len(lengths)))
        await self.engine.set_metadata(self.collection, {self.key: {"encoder": self.encoder.identity,
                                                                    "avgdl": self.avgdl}})

    def encode(self, texts: Sequence[str]) -> list[Any]:
        assert self.avgdl is not None
        return self.encoder.encode_documents(texts, self.avgdl)


async def ensure_collection(engine: Engine, collection: str, vector_name: str, dim: int,
                            sparse_name: str | None) -> tuple[bool, list[str]]:
    """Create the collection if missing, else check its vectors (adding the sparse one). Returns (created, notes)."""
    if not await engine.exists(collection):
        await engine.create_collection(collection, CollectionSpec(vector_name, dim, "Cosine",
                                                                  (sparse_name,) if sparse_name else ()))
        return True, []
    info = await engine.describe(collection)
    guardrails.dense_vector(info, vector_name, dim)
    notes = []
    if sparse_name:
        vec = info.vector(sparse_name)
        if vec is None:
            await engine.add_sparse_vector(collection, sparse_name)
            if info.points_count:
                notes.append(f"Added the sparse vector {sparse_name!r}; the {info.points_count} points indexed before "
                             f"have none: back-fill them with `rf-mcp index --sparse-only -c {collection}`.")
        elif vec.kind != "sparse":
            raise InputError(f"Vector {sparse_name!r} of {collection!r} is not sparse.",
                             fix="Set [collection].sparse_vector to the collection's BM25 sparse vector, or to \"\".")
    return False, notes


async def index_file(engine: Engine, retriever: Retriever, collection: str, vector_name: str, path: str | Path,
                     *, input_id_field: str, id_field: str, text_fields: Sequence[str],
                     sparse: tuple[str, SparseEncoder] | None = None, batch_size: int = 64,
                     vectors: np.ndarray | None = None, progress: Progress | None = None,
                     filterable: Mapping[str, Literal["keyword", "integer", "float", "bool"]] | None = None
                     ) -> IndexReport:
    """Index a corpus; with ``vectors`` (one row per corpus line, from the same retriever) skip embedding."""
    t0 = time.perf_counter()
    loaded, repeated = load_documents(path, input_id_field, text_fields, id_field)
    docs = [payload for _, payload in loaded]
    await retriever.load()
    if vectors is not None:
        await check_precomputed(retriever, docs, vectors, text_fields)
        batch_size = 512
    created, notes = await ensure_collection(engine, collection, vector_name, retriever.dim,
                                             sparse[0] if sparse else None)
    if repeated:
        notes.append(f"{len(repeated)} document id(s) came more than once in the corpus (e.g. "
                     f"{sorted(set(repeated))[:3]}): the last line of each was kept.")
    sparse_index = SparseIndex(engine, collection, *sparse) if sparse else None
    existing = set((await engine.describe(collection)).payload_indexes)
    for key, schema in (filterable or {}).items():  # the payload indexes filters use
        if key not in existing:
            await engine.create_payload_index(collection, key, schema)
    if sparse_index is not None:
        await sparse_index.prepare([payload_text(d, text_fields) for d in docs])
    for start in range(0, len(docs), batch_size):
        batch = docs[start:start + batch_size]
        texts = [payload_text(d, text_fields) for d in batch]
        if vectors is None:
            batch_vectors = await retriever.embed_documents(texts)
        else:
            batch_vectors = vectors[start:start + batch_size]
        sparse_vectors = sparse_index.encode(texts) if sparse_index is not None else None
        points = []
        for i, (doc, vec) in enumerate(zip(batch, batch_vectors, strict=True)):
            named: dict[str, Any] = {vector_name: [float(x) for x in vec]}
            if sparse_index is not None and sparse_vectors is not None:
                named[sparse_index.name] = sparse_vectors[i]
            points.append(PointInput(point_id(loaded[start + i][0]), named, doc))
        await engine.upsert(collection, points)
        if progress is not None:
            done = min(start + batch_size, len(docs))
            await progress(float(done), float(len(docs)), f"indexed {done}/{len(docs)} documents")
    return IndexReport(collection=collection, vector_name=vector_name, documents=len(docs), created=created,
                       points_count=await engine.count(collection), seconds=round(time.perf_counter() - t0, 3),
                       sparse_vector=sparse_index.name if sparse_index else None, notes=notes)


async def backfill_sparse(engine: Engine, collection: str, text_fields: Sequence[str], name: str,
                          encoder: SparseEncoder, *, batch: int = 256, progress: Progress | None = None) -> IndexReport:
    """(Re)write the BM25 sparse vector of every point from its payload text (collections built by other tools)."""
    t0 = time.perf_counter()
    info = await engine.describe(collection)
    vec = info.vector(name)
    if vec is None:
        await engine.add_sparse_vector(collection, name)
    elif vec.kind != "sparse":
        raise InputError(f"Vector {name!r} of {collection!r} is not sparse.", fix="Name a sparse vector.")
    ids: list[PointId] = []
    texts: list[str] = []
    offset: PointId | None = None
    while True:
        page, offset = await engine.scroll(collection, offset=offset, limit=1024)
        ids += [p.id for p in page]
        texts += [payload_text(p.payload, text_fields) for p in page]
        if offset is None:
            break
    empty = sum(1 for t in texts if not t.strip())
    if texts and empty == len(texts):
        raise InputError(f"No point of {collection!r} has text in the fields {list(text_fields)}.",
                         fix="Set [collection].text_fields to the payload fields that hold the document text.")
    index = SparseIndex(engine, collection, name, encoder)
    await index.prepare(texts, rebuild=True)
    for start in range(0, len(ids), batch):
        chunk = slice(start, start + batch)
        encoded = index.encode(texts[chunk])
        await engine.update_vectors(collection, [PointInput(i, {name: v}) for i, v in zip(ids[chunk], encoded,
                                                                                       strict=True)])
        if progress is not None:
            done = min(start + batch, len(ids))
            await progress(float(done), float(len(ids)), f"sparse vectors {done}/{len(ids)}")
    notes = [f"{empty} points have no text in {list(text_fields)}: their sparse vectors are empty."] if empty else []
    return IndexReport(collection=collection, vector_name=info.vectors[0].name if info.vectors else "", documents=len(ids),
                       created=False, points_count=info.points_count, seconds=round(time.perf_counter() - t0, 3),
                       sparse_vector=name, notes=notes)
