"""An engine kept in memory, in numpy: the test double of the engine port (and a readable reference).

It computes what Qdrant computes, exactly (no index): the four distances as Qdrant's core does (cosine on
unit vectors, dot, negative squared Euclid, negative Manhattan; shown scores as Qdrant shows them), the naive
relevance-feedback formula over every ordered pair with a positive score difference, sparse dot products with
the IDF modifier, reciprocal rank fusion with k = 2, and the filter language of :mod:`rf_mcp.ports`. The
congruence tests hold it, qdrant-client's engine and qdrant-edge to the same results.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import permutations
from typing import Any, Literal

import numpy as np

from rf_mcp.adapters.engines._shared import check_ids, feedback_vectors, point_id, split_feedback
from rf_mcp.errors import InputError
from rf_mcp.ports import (
    RRF_K,
    CollectionInfo,
    CollectionSpec,
    Engine,
    FieldCondition,
    Filter,
    Fusion,
    HasId,
    Nearest,
    Point,
    PointId,
    PointInput,
    QueryRequest,
    RelevanceFeedback,
    Rescore,
    SparseNearest,
    SparseVector,
    VectorInfo,
)


@dataclass
class _Collection:
    spec: CollectionSpec
    sparse: list[str]
    points: dict[PointId, tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)  # id -> vectors, payload
    metadata: dict[str, Any] = field(default_factory=dict)
    indexes: dict[str, str] = field(default_factory=dict)


def _values(payload: Any, path: str) -> list[Any]:
    """Every value at a dotted path; lists along the way are flattened (Qdrant's array semantics)."""
    current = [payload]
    for part in path.split("."):
        nxt: list[Any] = []
        for v in current:
            if isinstance(v, dict) and part in v:
                got = v[part]
                nxt.extend(got if isinstance(got, list) else [got])
            elif isinstance(v, list):
                for item in v:
                    if isinstance(item, dict) and part in item:
                        got = item[part]
                        nxt.extend(got if isinstance(got, list) else [got])
        current = nxt
    return current


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


def _field_matches(cond: FieldCondition, payload: dict[str, Any]) -> bool:
    values = _values(payload, cond.key)
    if cond.range is not None:
        r = cond.range
        nums = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        return any((r.gt is None or v > r.gt) and (r.gte is None or v >= r.gte) and (r.lt is None or v < r.lt)
                   and (r.lte is None or v <= r.lte) for v in nums)
    m = cond.match
    assert m is not None
    if m.value is not None:
        return any(_same(v, m.value) for v in values)
    if m.any is not None:
        return any(_same(v, x) for v in values for x in m.any)
    assert m.except_ is not None
    return not any(_same(v, x) for v in values for x in m.except_)


@functools.lru_cache(maxsize=64)
def _id_set(ids: tuple[PointId, ...]) -> frozenset[PointId]:
    """A has_id condition's ids, normalised once (not once per point it is checked against)."""
    return frozenset(point_id(i) for i in ids)


def matches(flt: Filter | None, pid: PointId, payload: dict[str, Any]) -> bool:
    if flt is None:
        return True

    def one(cond: Any) -> bool:
        if isinstance(cond, HasId):
            return pid in _id_set(tuple(cond.has_id))
        if isinstance(cond, Filter):
            return matches(cond, pid, payload)
        return _field_matches(cond, payload)

    if not all(one(c) for c in flt.must):
        return False
    if flt.should and not any(one(c) for c in flt.should):
        return False
    return not any(one(c) for c in flt.must_not)


class MemoryEngine(Engine):
    def __init__(self) -> None:
        self._collections: dict[str, _Collection] = {}

    @property
    def location(self) -> str:
        return "memory"

    def _get(self, collection: str) -> _Collection:
        try:
            return self._collections[collection]
        except KeyError:
            raise InputError(f"Collection {collection!r} does not exist (existing: {sorted(self._collections) or 'none'}).",
                             fix="Create it with `rf-mcp index`, or name an existing collection.") from None

    # -- collections --------------------------------------------------------------------------------------
    async def list_collections(self) -> list[str]:
        return sorted(self._collections)

    async def exists(self, collection: str) -> bool:
        return collection in self._collections

    async def describe(self, collection: str) -> CollectionInfo:
        c = self._get(collection)
        s = c.spec
        vectors = [VectorInfo(name=s.vector_name, kind="dense", dim=s.dim, distance=s.distance)]
        vectors += [VectorInfo(name=n, kind="sparse", modifier="idf") for n in c.sparse]
        return CollectionInfo(name=collection, points_count=len(c.points), vectors=vectors, indexed_vectors=0,
                              payload_indexes=sorted(c.indexes))

    async def create_collection(self, collection: str, spec: CollectionSpec) -> None:
        if collection in self._collections:
            raise InputError(f"Collection {collection!r} already exists.", fix="Use another name.")
        self._collections[collection] = _Collection(spec=spec, sparse=list(spec.sparse))

    async def add_sparse_vector(self, collection: str, name: str) -> None:
        c = self._get(collection)
        if name == c.spec.vector_name:
            raise InputError(f"Vector {name!r} of {collection!r} is dense, not a BM25 sparse vector.",
                             fix="Set [collection].sparse_vector to another name (default \"bm25\").")
        if name not in c.sparse:
            c.sparse.append(name)

    def _vectors(self, c: _Collection, given: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, v in given.items():
            if isinstance(v, SparseVector):
                if name not in c.sparse:
                    raise InputError(f"No sparse vector {name!r} in the collection.", fix="Declare it first.")
                out[name] = v
            else:
                if name != c.spec.vector_name:
                    raise InputError(f"No dense vector {name!r} in the collection.", fix="Use the collection's vector.")
                arr = np.asarray(v, dtype=np.float32)
                if arr.shape != (c.spec.dim,):
                    raise InputError(f"Vector {name!r} has {arr.size} dimensions, the collection {c.spec.dim}.",
                                     fix="Use vectors of the collection's size.")
                if c.spec.distance == "Cosine":
                    n = np.linalg.norm(arr)
                    arr = arr / n if n else arr
                out[name] = arr
        return out

    async def upsert(self, collection: str, points: Sequence[PointInput]) -> None:
        c = self._get(collection)
        for p in points:
            c.points[check_ids([p.id])[0]] = (self._vectors(c, dict(p.vectors)), copy.deepcopy(p.payload or {}))

    async def update_vectors(self, collection: str, points: Sequence[PointInput]) -> None:
        c = self._get(collection)
        for p in points:
            pid = check_ids([p.id])[0]
            if pid not in c.points:
                raise InputError(f"No point {pid!r} in {collection!r}.", fix="Update existing points only.")
            c.points[pid][0].update(self._vectors(c, dict(p.vectors)))

    async def delete(self, collection: str, ids: Sequence[PointId]) -> None:
        c = self._get(collection)
        for pid in check_ids(ids):
            c.points.pop(pid, None)

    async def count(self, collection: str) -> int:
        return len(self._get(collection).points)

    # -- scoring ----------------------------------------------------------------------------------------
    def _core(self, c: _Collection, q: Sequence[float], vectors: np.ndarray) -> np.ndarray:
        """Qdrant's internal similarity (higher = closer)."""
        qv = np.asarray(q, dtype=np.float32)
        d = c.spec.distance
        out: np.ndarray
        if d == "Cosine":
            n = np.linalg.norm(qv)
            out = vectors @ (qv / n if n else qv)
        elif d == "Dot":
            out = vectors @ qv
        elif d == "Euclid":
            out = -np.square(vectors - qv).sum(axis=1)
        else:
            out = -np.abs(vectors - qv).sum(axis=1)
        return out

    def _shown(self, c: _Collection, core: float) -> float:
        if c.spec.distance == "Euclid":
            return math.sqrt(max(-core, 0.0))
        if c.spec.distance == "Manhattan":
            return -core
        return core

    def _candidates(self, c: _Collection, flt: Filter | None) -> list[PointId]:
        return [pid for pid, (_, payload) in c.points.items() if matches(flt, pid, payload)]

    def _dense(self, c: _Collection, ids: list[PointId]) -> np.ndarray:
        if not ids:
            return np.zeros((0, c.spec.dim), dtype=np.float32)
        return np.stack([c.points[i][0][c.spec.vector_name] for i in ids])

    def _scored(self, c: _Collection, query: Any, flt: Filter | None, limit: int,
                among: set[PointId] | None = None) -> list[tuple[PointId, float]]:
        """The top ``limit`` (id, score) for ``query`` (exact: this double has no index), ``among`` these ids only."""
        if isinstance(query, Fusion | Rescore):
            fused: dict[PointId, float] = {}
            for pre in query.prefetch:
                inner = pre.filter if flt is None else (flt if pre.filter is None else Filter(must=[flt, pre.filter]))
                for rank, (pid, _) in enumerate(self._scored(c, pre.query, inner, pre.limit)):
                    fused[pid] = fused.get(pid, 0.0) + 1.0 / (rank + RRF_K)
            if isinstance(query, Rescore):
                return self._scored(c, query.query, flt, limit, among=set(fused))
            return sorted(fused.items(), key=lambda t: -t[1])[:limit]
        if isinstance(query, SparseNearest):
            return self._sparse(c, query, flt, limit)
        if isinstance(query, RelevanceFeedback):
            ids = split_feedback(query.feedback)
            stored = {i: c.points[i][0][c.spec.vector_name] for i in ids if i in c.points}
            items = feedback_vectors(query.feedback, stored, "memory")
            flt = Filter.combine(flt, exclude=ids)
        ids = [i for i in self._candidates(c, flt) if among is None or i in among]
        vectors = self._dense(c, ids)
        if isinstance(query, Nearest):
            core = self._core(c, query.vector, vectors)
            order = np.argsort(-core, kind="stable")[:limit]
            return [(ids[i], self._shown(c, float(core[i]))) for i in order]
        a, b, cc = query.weights
        score = a * self._core(c, query.target, vectors).astype(np.float64)
        for (pos, s_pos), (neg, s_neg) in permutations(items, 2):
            confidence = s_pos - s_neg
            if confidence <= 0:
                continue
            score = score + (confidence ** b) * cc * (self._core(c, pos, vectors) - self._core(c, neg, vectors))
        order = np.argsort(-score, kind="stable")[:limit]
        return [(ids[i], float(score[i])) for i in order]

    def _sparse(self, c: _Collection, query: SparseNearest, flt: Filter | None, limit: int) -> list[tuple[PointId, float]]:
        having = [(pid, vecs[query.using]) for pid, (vecs, _) in c.points.items() if query.using in vecs]
        n = len(having)
        df: dict[int, int] = {}
        for _, sv in having:
            for i in sv.indices:
                df[i] = df.get(i, 0) + 1
        weights = {i: v * math.log((n - df.get(i, 0) + 0.5) / (df.get(i, 0) + 0.5) + 1)
                   for i, v in zip(query.vector.indices, query.vector.values, strict=True)}
        out = []
        for pid, sv in having:
            if not matches(flt, pid, c.points[pid][1]):
                continue
            s = sum(weights[i] * v for i, v in zip(sv.indices, sv.values, strict=True) if i in weights)
            if s > 0:
                out.append((pid, s))
        return sorted(out, key=lambda t: -t[1])[:limit]

    def _point(self, c: _Collection, pid: PointId, score: float, with_vector: str | None) -> Point:
        vecs, payload = c.points[pid]
        vector = None
        if with_vector is not None:
            raw = vecs.get(with_vector)
            vector = None if raw is None else [float(x) for x in raw]
        return Point(id=pid, score=score, payload=copy.deepcopy(payload), vector=vector)

    async def query(self, collection: str, request: QueryRequest) -> list[Point]:
        c = self._get(collection)
        hits = self._scored(c, request.query, request.filter, request.limit)
        return [self._point(c, pid, s, request.with_vector) for pid, s in hits]

    async def retrieve(self, collection: str, ids: Sequence[PointId], *, with_vector: str | None = None) -> list[Point]:
        c = self._get(collection)
        return [self._point(c, i, 0.0, with_vector) for i in dict.fromkeys(check_ids(ids)) if i in c.points]

    async def scroll(self, collection: str, *, offset: PointId | None = None, limit: int = 256,
                     with_vector: str | None = None, filter: Filter | None = None) -> tuple[list[Point], PointId | None]:
        c = self._get(collection)
        ids = sorted((i for i in c.points if matches(filter, i, c.points[i][1])), key=lambda i: (isinstance(i, str), i))
        start = 0 if offset is None else ids.index(offset)
        page = ids[start:start + limit]
        nxt = ids[start + limit] if start + limit < len(ids) else None
        return [self._point(c, i, 0.0, with_vector) for i in page], nxt

    async def create_payload_index(self, collection: str, key: str,
                                   schema: Literal["keyword", "integer", "float", "bool"]) -> None:
        self._get(collection).indexes[key] = schema

    async def optimize(self, collection: str) -> bool:
        self._get(collection)
        return False

    async def get_metadata(self, collection: str) -> dict[str, Any]:
        return copy.deepcopy(self._get(collection).metadata)

    async def set_metadata(self, collection: str, entries: dict[str, Any]) -> None:
        meta = self._get(collection).metadata
        for k, v in entries.items():
            if v is None:
                meta.pop(k, None)
            else:
                meta[k] = copy.deepcopy(v)

    async def close(self) -> None:
        return None
