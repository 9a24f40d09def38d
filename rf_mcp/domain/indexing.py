"""Indexing a JSONL corpus: embed with the retriever, upsert in batches under stable ids, with BM25 sparse vectors.

The sparse vectors hold BM25 term weights for the collection's average document length, recorded in the
collection's metadata on first use (with the encoder's identity) so later batches use the same; the engine's IDF
modifier keeps the term statistics current as documents are added.

The BM25 feedback model needs the same statistics (document count, total length, document frequency per term id)
outside the engine: :class:`TermStatsWriter` keeps them in the collection's metadata as documents are written. A
batch that overwrites existing points first subtracts the terms of their stored text (one ``retrieve`` of the
batch's ids: O(batch), never O(collection)); the statistics are written at the end of a run (and every minute of a
long one) under a new ``revision``, which is how a reader learns they changed even when the point count did not.
A full scan happens only on the index path: ``index --sparse-only``, or an index run that finds no usable
statistics (none yet, another encoder or text fields, or a run that did not finish).

Size: the table is ~4 bytes per distinct term id (delta-coded ids and frequencies, byte planes, zlib, base64):
SciFact's 5,183 documents have 26,571 terms, 108 KB. A million documents of similar text hold some 0.5-2 million
terms: 2-8 MB, in the collection's metadata, which every metadata read (calibration profiles too) carries.
"""

from __future__ import annotations

import base64
import functools
import itertools
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rf_mcp.domain import guardrails
from rf_mcp.domain.datasets import read_jsonl
from rf_mcp.domain.models import IndexReport
from rf_mcp.domain.payload import DOC_ID, is_decimal, payload_keys, payload_text, set_path
from rf_mcp.errors import InputError
from rf_mcp.ports import (
    CollectionSpec,
    Engine,
    PointId,
    PointInput,
    Progress,
    Retriever,
    SparseEncoder,
    SparseVector,
    TermStatistics,
)

ID_NAMESPACE = uuid.UUID("6f0c1f5e-3a7e-4f9a-9a51-2b1b6a0c9d11")
SPARSE_KEY_PREFIX = "rf_mcp.sparse:"  # metadata: {"encoder": identity, "avgdl": float} per sparse vector
TERM_STATS_KEY = "rf_mcp.term-stats"  # metadata: the collection's BM25 term statistics (TermStatsWriter)
TERM_STATS_WRITING_KEY = "rf_mcp.term-stats.writing"  # metadata: the token of the index run updating them
TERM_STATS_FORMAT = 1


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


# -- BM25 term statistics ---------------------------------------------------------------------------------------
def pack_frequencies(ids: np.ndarray, dfs: np.ndarray) -> str:
    """Sorted term ids and their document frequencies as text: id gaps and frequencies (uint32), byte planes
    apart (the high bytes are mostly zero), zlib, base64."""
    gaps = np.diff(ids.astype(np.uint32), prepend=np.uint32(0)).astype("<u4")
    both = np.concatenate([gaps, dfs.astype("<u4")])
    return base64.b64encode(zlib.compress(both.view(np.uint8).reshape(-1, 4).T.tobytes(), 6)).decode("ascii")


def unpack_frequencies(packed: str, terms: int, documents: int) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of :func:`pack_frequencies`, checked (ValueError when the text is not such a table)."""
    try:
        raw = zlib.decompress(base64.b64decode(packed, validate=True))
    except zlib.error as exc:
        raise ValueError(str(exc)) from None
    if len(raw) != 8 * terms:
        raise ValueError(f"{len(raw)} bytes for {terms} terms")
    both = np.frombuffer(raw, np.uint8).reshape(4, -1).T.copy().view("<u4").ravel()
    gaps, dfs = both[:terms], both[terms:]
    ids = np.cumsum(gaps, dtype=np.uint64)
    if terms and (ids[-1] >= 2**32 or (gaps[1:] == 0).any() or dfs.min() < 1 or dfs.max() > documents):
        raise ValueError("term ids out of order, or document frequencies out of range")
    return ids.astype(np.uint32), dfs.astype(np.int64)


def parse_term_stats(entry: Any, collection: str, text_fields: Sequence[str]) -> TermStatistics:
    """A stored statistics entry, checked; an ``InputError`` naming the fix when it cannot serve these text fields."""
    fix = f"Recompute them: `rf-mcp index -c {collection} --sparse-only` (or the index tool with sparse_only)."
    ints = ("documents", "total_length", "terms")
    if not (isinstance(entry, dict) and entry.get("format") == TERM_STATS_FORMAT
            and all(isinstance(entry.get(k), str) for k in ("revision", "encoder", "df"))
            and all(type(entry.get(k)) is int and entry[k] >= 0 for k in ints)
            and isinstance(entry.get("text_fields"), list)):
        raise InputError(f"The stored BM25 term statistics of {collection!r} are not in this version's format "
                         f"{TERM_STATS_FORMAT} (written by another version of rf-mcp, or edited).", fix=fix)
    if entry["text_fields"] != list(text_fields):
        raise InputError(f"The BM25 term statistics of {collection!r} were computed over the text fields "
                         f"{entry['text_fields']}, not the configured {list(text_fields)}.", fix=fix)
    return TermStatistics(revision=entry["revision"], encoder=entry["encoder"], documents=entry["documents"],
                          total_length=entry["total_length"],
                          frequencies=functools.partial(_frequencies, entry, collection))


def _frequencies(entry: dict[str, Any], collection: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        return unpack_frequencies(entry["df"], entry["terms"], entry["documents"])
    except ValueError as exc:
        raise InputError(f"The stored BM25 term statistics of {collection!r} are corrupt ({exc}).",
                         fix=f"Recompute them: `rf-mcp index -c {collection} --sparse-only`.") from None


async def read_term_stats(engine: Engine, collection: str, text_fields: Sequence[str]) -> TermStatistics | None:
    """The collection's stored BM25 term statistics (one metadata read, nothing decoded), None when it has none."""
    entry = (await engine.get_metadata(collection)).get(TERM_STATS_KEY)
    return None if entry is None else parse_term_stats(entry, collection, text_fields)


async def ensure_term_stats(engine: Engine, collection: str, text_fields: Sequence[str], encoder: SparseEncoder
                            ) -> bool:
    """Count the collection's BM25 term statistics when it has none usable (a collection written by another tool):
    one full scan, for the offline operations that precede searches (calibration). True when it counted."""
    meta = await engine.get_metadata(collection)
    if meta.get(TERM_STATS_WRITING_KEY) is None and (entry := meta.get(TERM_STATS_KEY)) is not None:
        try:
            stats = parse_term_stats(entry, collection, text_fields)
            if stats.encoder == encoder.identity:
                stats.frequencies()  # decodes (checks) the table
                return False
        except InputError:
            pass
    elif meta.get(TERM_STATS_WRITING_KEY) is not None:
        return False  # an index run is updating them (or died): the next index run recounts
    await backfill_sparse(engine, collection, text_fields, None, encoder)
    return True


class TermStatsWriter:
    """Keeps a collection's BM25 term statistics current while documents are written.

    Counts go into a delta (``account``), merged into the sorted arrays and stored by ``save``: at the end of a run
    and every ``checkpoint_seconds`` of a long one. While a run writes, a token under
    :data:`TERM_STATS_WRITING_KEY` says so: a run that finds one (a run that did not finish, or one still going)
    does not trust the stored statistics and recounts them from the payloads."""

    def __init__(self, engine: Engine, collection: str, text_fields: Sequence[str], encoder: SparseEncoder,
                 checkpoint_seconds: float = 60.0) -> None:
        self.engine, self.collection, self.text_fields, self.encoder = engine, collection, list(text_fields), encoder
        self.ids = np.zeros(0, np.uint32)
        self.dfs = np.zeros(0, np.int64)
        self.documents = self.total_length = 0
        self.delta: Counter[int] = Counter()
        self.token = uuid.uuid4().hex
        self.checkpoint_seconds = checkpoint_seconds
        self._saved = time.monotonic()

    def terms(self, texts: Sequence[str]) -> tuple[list[int], list[SparseVector]]:
        """Lengths and distinct term ids (the indices of the sparse vectors) of ``texts``."""
        return self.encoder.document_lengths(texts), self.encoder.encode_documents(texts, 1.0)

    def account(self, lengths: Sequence[int], vectors: Sequence[SparseVector], sign: int = 1) -> None:
        """Count documents in (``sign`` 1) or out (-1)."""
        self.documents += sign * len(lengths)
        self.total_length += sign * sum(lengths)
        terms = itertools.chain.from_iterable(v.indices for v in vectors)
        if sign > 0:
            self.delta.update(terms)
        else:
            self.delta.subtract(terms)

    def _merge(self) -> None:
        if not self.delta:
            return
        ids = np.concatenate([self.ids, np.fromiter(self.delta.keys(), np.uint32, len(self.delta))])
        dfs = np.concatenate([self.dfs, np.fromiter(self.delta.values(), np.int64, len(self.delta))])
        unique, where = np.unique(ids, return_inverse=True)
        sums = np.zeros(len(unique), np.int64)
        np.add.at(sums, where, dfs)
        keep = sums > 0  # a term no document holds any more
        self.ids, self.dfs = unique[keep], sums[keep]
        self.delta.clear()

    async def open(self, *, fresh: bool) -> list[str]:
        """Start from the stored statistics, from zero (``fresh``: a new collection), or from a recount; mark the
        run. Returns notes for the report."""
        meta = await self.engine.get_metadata(self.collection)
        notes = []
        if not fresh:
            stats: TermStatistics | None = None
            reason: str | None = "there were none"
            if (entry := meta.get(TERM_STATS_KEY)) is not None:
                try:
                    stats, reason = parse_term_stats(entry, self.collection, self.text_fields), None
                except InputError as exc:
                    reason = exc.problem
            if stats is not None and stats.encoder != self.encoder.identity:
                reason = f"they were computed by {stats.encoder!r}"
            elif stats is not None and meta.get(TERM_STATS_WRITING_KEY) is not None:
                reason = "an index run that updated them did not finish, or is still running"
            if stats is not None and reason is None:
                try:
                    self.ids, self.dfs = stats.frequencies()
                    self.documents, self.total_length = stats.documents, stats.total_length
                except InputError as exc:
                    reason = exc.problem
            if reason is not None and await self.engine.count(self.collection):
                await self.recount()
                notes.append(f"Counted the BM25 term statistics of the {self.documents} points already in "
                             f"{self.collection!r} ({reason}).")
        await self.engine.set_metadata(self.collection, {TERM_STATS_WRITING_KEY: self.token})
        self._saved = time.monotonic()
        return notes

    async def recount(self) -> None:
        """Count every point's payload text (the index path's full scan), replacing what was counted."""
        self.ids, self.dfs = np.zeros(0, np.uint32), np.zeros(0, np.int64)
        self.documents = self.total_length = 0
        self.delta.clear()
        offset: PointId | None = None
        while True:
            page, offset = await self.engine.scroll(self.collection, offset=offset, limit=1024)
            self.account(*self.terms([payload_text(p.payload, self.text_fields) for p in page]))
            if offset is None:
                break
        self._merge()

    async def checkpoint(self) -> None:
        if time.monotonic() - self._saved >= self.checkpoint_seconds:
            await self.save()

    async def save(self, *, final: bool = False, points_count: int | None = None) -> list[str]:
        """Store the statistics under a new revision; ``final`` ends the run (its mark is removed when it is still
        this run's and ``points_count``, when given, matches the documents counted). Returns notes."""
        self._merge()
        entry = {"format": TERM_STATS_FORMAT, "revision": uuid.uuid4().hex, "encoder": self.encoder.identity,
                 "text_fields": self.text_fields, "documents": self.documents, "total_length": self.total_length,
                 "terms": len(self.ids), "df": pack_frequencies(self.ids, self.dfs)}
        entries: dict[str, Any] = {TERM_STATS_KEY: entry}
        notes = []
        if final:
            mark = (await self.engine.get_metadata(self.collection)).get(TERM_STATS_WRITING_KEY)
            if points_count is not None and points_count != self.documents:
                notes.append(f"The BM25 term statistics count {self.documents} documents but {self.collection!r} "
                             f"holds {points_count} points (another writer?): recount them with `rf-mcp index -c "
                             f"{self.collection} --sparse-only`.")
            elif mark not in (None, self.token):
                notes.append(f"Another index run wrote {self.collection!r} at the same time: the next index run "
                             "recounts the BM25 term statistics (or `rf-mcp index --sparse-only` now).")
            else:
                entries[TERM_STATS_WRITING_KEY] = None
        await self.engine.set_metadata(self.collection, entries)
        self._saved = time.monotonic()
        return notes


CREATED_BY_KEY = "rf_mcp.created_by"
"""Metadata key rf-mcp sets on a collection it creates: what created it ("index", "demo"). A collection without it
was made by another tool (or by rf-mcp before 0.x marked its collections)."""


async def ensure_collection(engine: Engine, collection: str, vector_name: str, dim: int,
                            sparse_name: str | None) -> tuple[bool, list[str]]:
    """Create the collection if missing (marked as created by ``index``), else check its vectors (adding the sparse
    one). Returns (created, notes)."""
    if not await engine.exists(collection):
        await engine.create_collection(collection, CollectionSpec(vector_name, dim, "Cosine",
                                                                  (sparse_name,) if sparse_name else ()))
        await engine.set_metadata(collection, {CREATED_BY_KEY: "index"})
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
                     filterable: Mapping[str, Literal["keyword", "integer", "float", "bool"]] | None = None,
                     terms: SparseEncoder | None = None) -> IndexReport:
    """Index a corpus; with ``vectors`` (one row per corpus line, from the same retriever) skip embedding.

    ``terms`` (default: the sparse encoder) makes the term ids of the BM25 term statistics kept in the collection's
    metadata; with neither, stored statistics would go stale and are removed."""
    t0 = time.perf_counter()
    loaded, repeated = load_documents(path, input_id_field, text_fields, id_field)
    await retriever.load()
    if vectors is not None:
        await check_precomputed(retriever, [payload for _, payload in loaded], vectors, text_fields)
        batch_size = 512
    notes = []
    if repeated:
        notes.append(f"{len(repeated)} document id(s) came more than once in the corpus (e.g. "
                     f"{sorted(set(repeated))[:3]}): the last line of each was kept.")
    report = await write_documents(engine, retriever, collection, vector_name, loaded, text_fields=text_fields,
                                   sparse=sparse, batch_size=batch_size, vectors=vectors, progress=progress,
                                   filterable=filterable, terms=terms)
    report.notes[:0] = notes
    report.seconds = round(time.perf_counter() - t0, 3)
    return report


async def write_documents(engine: Engine, retriever: Retriever, collection: str, vector_name: str,
                          loaded: Sequence[tuple[str, dict[str, Any]]], *, text_fields: Sequence[str],
                          sparse: tuple[str, SparseEncoder] | None = None, batch_size: int = 64,
                          vectors: np.ndarray | None = None, progress: Progress | None = None,
                          filterable: Mapping[str, Literal["keyword", "integer", "float", "bool"]] | None = None,
                          terms: SparseEncoder | None = None, point_ids: Sequence[PointId] | None = None
                          ) -> IndexReport:
    """Embed and upsert (document id, payload) pairs under their stable point ids (or ``point_ids``, one per pair),
    with their BM25 sparse vectors, creating the collection if needed and keeping its BM25 term statistics current
    (the points a batch overwrites leave them first). The path every write of documents takes: a corpus file
    (:func:`index_file`) or documents sent inline (``add_documents``)."""
    t0 = time.perf_counter()
    docs = [payload for _, payload in loaded]
    await retriever.load()
    created, notes = await ensure_collection(engine, collection, vector_name, retriever.dim,
                                             sparse[0] if sparse else None)
    sparse_index = SparseIndex(engine, collection, *sparse) if sparse else None
    existing = set((await engine.describe(collection)).payload_indexes)
    for key, schema in (filterable or {}).items():  # the payload indexes filters use
        if key not in existing:
            await engine.create_payload_index(collection, key, schema)
    if sparse_index is not None:
        await sparse_index.prepare([payload_text(d, text_fields) for d in docs])
    terms = terms or (sparse[1] if sparse else None)
    stats = TermStatsWriter(engine, collection, text_fields, terms) if terms is not None else None
    if stats is not None:
        notes += await stats.open(fresh=created)
    elif TERM_STATS_KEY in await engine.get_metadata(collection):
        await engine.set_metadata(collection, {TERM_STATS_KEY: None})
        notes.append("Removed the stored BM25 term statistics (this run had no encoder to keep them current).")
    for start in range(0, len(docs), batch_size):
        batch = docs[start:start + batch_size]
        texts = [payload_text(d, text_fields) for d in batch]
        if vectors is None:
            batch_vectors = await retriever.embed_documents(texts)
        else:
            batch_vectors = vectors[start:start + batch_size]
        sparse_vectors = sparse_index.encode(texts) if sparse_index is not None else None
        ids = (list(point_ids[start:start + batch_size]) if point_ids is not None else
               [point_id(doc_id) for doc_id, _ in loaded[start:start + batch_size]])
        if stats is not None:  # the points this batch overwrites leave the statistics, the batch enters them
            if not created:
                old = await engine.retrieve(collection, ids)
                stats.account(*stats.terms([payload_text(p.payload, text_fields) for p in old]), sign=-1)
            if sparse_vectors is not None and sparse is not None and sparse[1] is stats.encoder:
                stats.account(stats.encoder.document_lengths(texts), sparse_vectors)  # their indices are the terms
            else:
                stats.account(*stats.terms(texts))
        points = []
        for i, (doc, vec) in enumerate(zip(batch, batch_vectors, strict=True)):
            named: dict[str, Any] = {vector_name: [float(x) for x in vec]}
            if sparse_index is not None and sparse_vectors is not None:
                named[sparse_index.name] = sparse_vectors[i]
            points.append(PointInput(ids[i], named, doc))
        await engine.upsert(collection, points)
        if stats is not None:
            await stats.checkpoint()
        if progress is not None:
            done = min(start + batch_size, len(docs))
            await progress(float(done), float(len(docs)), f"indexed {done}/{len(docs)} documents")
    points_count = await engine.count(collection)
    if stats is not None:
        notes += await stats.save(final=True, points_count=points_count)
    return IndexReport(collection=collection, vector_name=vector_name, documents=len(docs), created=created,
                       points_count=points_count, seconds=round(time.perf_counter() - t0, 3),
                       sparse_vector=sparse_index.name if sparse_index else None, notes=notes)


async def backfill_sparse(engine: Engine, collection: str, text_fields: Sequence[str], name: str | None,
                          encoder: SparseEncoder, *, batch: int = 256, progress: Progress | None = None) -> IndexReport:
    """(Re)write the BM25 sparse vector of every point from its payload text (collections built by other tools:
    the vector is added first when the collection has none; only that vector of each point is written, its dense
    vector and payload stay as they are), and count the collection's BM25 term statistics; with ``name`` None, only
    the statistics."""
    t0 = time.perf_counter()
    info = await engine.describe(collection)
    vec = None if name is None else info.vector(name)
    if vec is not None and vec.kind != "sparse":
        raise InputError(f"Vector {name!r} of {collection!r} is not sparse.", fix="Name a sparse vector.")
    ids: list[PointId] = []
    texts: list[str] = []
    keys: set[str] = set()
    offset: PointId | None = None
    while True:
        page, offset = await engine.scroll(collection, offset=offset, limit=1024)
        ids += [p.id for p in page]
        texts += [payload_text(p.payload, text_fields) for p in page]
        if len(keys) < 100:
            keys.update(k for p in page[:20] for k in payload_keys(p.payload))
        if offset is None:
            break
    empty = sum(1 for t in texts if not t.strip())
    if texts and empty == len(texts):
        raise InputError(f"No point of {collection!r} has text in the configured text_fields {list(text_fields)} "
                         f"(payload keys seen: {sorted(keys)[:20] or 'none'}).",
                         fix="Set [collection].text_fields to the payload keys holding the document text (dotted paths "
                             'are fine, e.g. "document" or "metadata.body").')
    notes: list[str] = []
    if name is not None and vec is None:  # after the checks: bad input changes nothing
        await engine.add_sparse_vector(collection, name)
        notes.append(f"Added the BM25 sparse vector {name!r} to {collection!r}: hybrid search uses it. Points another "
                     "tool writes later have none (hybrid search finds them by their dense vector only) until the "
                     f"next sparse_only run (`rf-mcp index --sparse-only -c {collection}`).")
    index = None if name is None else SparseIndex(engine, collection, name, encoder)
    if index is not None:
        await index.prepare(texts, rebuild=True)
    stats = TermStatsWriter(engine, collection, text_fields, encoder)  # from zero: every point is counted here
    for start in range(0, len(ids), batch):
        chunk = slice(start, start + batch)
        encoded = index.encode(texts[chunk]) if index is not None else encoder.encode_documents(texts[chunk], 1.0)
        stats.account(encoder.document_lengths(texts[chunk]), encoded)
        if name is not None:
            await engine.update_vectors(collection, [PointInput(i, {name: v}) for i, v in zip(ids[chunk], encoded,
                                                                                           strict=True)])
        if progress is not None:
            done = min(start + batch, len(ids))
            what = "sparse vectors" if name is not None else "term statistics"
            await progress(float(done), float(len(ids)), f"{what} {done}/{len(ids)}")
    await stats.save()
    await engine.set_metadata(collection, {TERM_STATS_WRITING_KEY: None})  # a full count supersedes any run's mark
    made = "their sparse vectors are empty" if name is not None else "they count as empty documents"
    notes += [f"{empty} points have no text in {list(text_fields)}: {made}."] if empty else []
    return IndexReport(collection=collection, vector_name=info.vectors[0].name if info.vectors else "", documents=len(ids),
                       created=False, points_count=info.points_count, seconds=round(time.perf_counter() - t0, 3),
                       sparse_vector=name, notes=notes)


async def delete_points(engine: Engine, collection: str, ids: Sequence[PointId], *, text_fields: Sequence[str],
                        terms: SparseEncoder | None) -> tuple[list[PointId], list[str]]:
    """Delete these points (those that exist) and take their terms out of the BM25 term statistics. Returns the ids
    deleted and notes. ``terms`` None: the collection's stored statistics would go stale and are removed."""
    existing = await engine.retrieve(collection, ids)
    if not existing:
        return [], []
    notes: list[str] = []
    stats = None
    meta = await engine.get_metadata(collection)
    if terms is not None and TERM_STATS_KEY in meta:  # none stored: calibration counts them when it needs them
        stats = TermStatsWriter(engine, collection, text_fields, terms)
        notes += await stats.open(fresh=False)  # stored ones, or a recount that still holds the points deleted below
        stats.account(*stats.terms([payload_text(p.payload, text_fields) for p in existing]), sign=-1)
    elif TERM_STATS_KEY in meta:
        await engine.set_metadata(collection, {TERM_STATS_KEY: None})
        notes.append("Removed the stored BM25 term statistics (no encoder to keep them current).")
    gone = [p.id for p in existing]
    await engine.delete(collection, gone)
    if stats is not None:
        notes += await stats.save(final=True, points_count=await engine.count(collection))
    return gone, notes
