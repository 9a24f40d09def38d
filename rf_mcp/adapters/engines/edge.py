"""The engine port on qdrant-edge (Qdrant's Rust engine, in-process): one shard folder per collection.

The embedded default. What differs from a Qdrant server is handled here:
* edge has no collections: ``<path>/<collection>/shard`` plus ``collection.json`` (the vector configuration and
  the metadata that holds calibration profiles, written atomically under a file lock);
* edge takes feedback examples as vectors only: point-id examples are resolved to their stored vectors and
  excluded with a filter, which is what a server does with ids;
* edge returns UUID objects for UUID ids: they are turned into the port's strings.
Searches are exact until ``optimize`` builds the HNSW index (``rf-mcp optimize``, or ``rf-mcp index`` once a
collection reaches ``[qdrant] hnsw_threshold`` points). Reads take no lock; writes are serialised.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

import anyio

from rf_mcp.adapters.engines._shared import (
    check_ids,
    claim_folder,
    ensure_free_bytes,
    ensure_free_space,
    feedback_vectors,
    folder_bytes,
    guarded,
    is_local_engine_folder,
    point_id,
    split_feedback,
)
from rf_mcp.config import QdrantSettings
from rf_mcp.errors import EngineError, InputError
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
    SearchParams,
    SparseNearest,
    SparseVector,
    VectorInfo,
)

T = TypeVar("T")
META = "collection.json"
EF_CONSTRUCT, FULL_SCAN_KB = 100, 10_000  # Qdrant's defaults (edge needs them with an HNSW config's m)


def _edge() -> Any:
    try:
        import qdrant_edge
    except ImportError:
        raise EngineError("The edge backend needs the qdrant-edge-py package.",
                          fix='pip install qdrant-edge-py, or set [qdrant] backend = "local".') from None
    return qdrant_edge


# -- request translation ------------------------------------------------------------------------------------
def to_filter(flt: Filter | None) -> Any:
    if flt is None:
        return None
    qe = _edge()

    def cond(c: Any) -> Any:
        if isinstance(c, HasId):
            return qe.HasIdCondition(set(check_ids(c.has_id)))
        if isinstance(c, Filter):
            return to_filter(c)
        assert isinstance(c, FieldCondition)
        if c.range is not None:
            r = c.range
            return qe.FieldCondition(c.key, range=qe.RangeFloat(gte=r.gte, gt=r.gt, lte=r.lte, lt=r.lt))
        m = c.match
        assert m is not None
        if any(isinstance(v, bool) for v in (m.value, *(m.any or []), *(m.except_ or []))):
            raise InputError(  # measured: MatchValue(True) matches no point, not even one whose value is true
                f"The filter matches a boolean on {c.key!r}: qdrant-edge-py {version('qdrant-edge-py')} cannot match boolean "
                "payload values (it would silently match nothing).",
                fix='Filter on a keyword or integer field, or use backend = "local" or a Qdrant server for this '
                    "collection.")
        if m.value is not None:
            match = qe.MatchValue(m.value)
        elif m.any is not None:
            match = qe.MatchAny(list(m.any))
        else:
            match = qe.MatchExcept(list(m.except_ or []))
        return qe.FieldCondition(c.key, match=match)

    return qe.Filter(must=[cond(c) for c in flt.must] or None, should=[cond(c) for c in flt.should] or None,
                     must_not=[cond(c) for c in flt.must_not] or None)


def _params(p: SearchParams | None) -> Any:
    return None if p is None else _edge().SearchParams(hnsw_ef=p.hnsw_ef, exact=p.exact)


class EdgeEngine(Engine):
    def __init__(self, settings: QdrantSettings) -> None:
        self.settings = settings
        self.root = Path(settings.data_path)
        self._lock = threading.RLock()  # shard map and writes; reads do not take it
        self._shards: dict[str, Any] = {}
        self._meta_cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._root_lock: IO[str] | None = None

    def _claim_folder(self) -> None:
        """One process per folder, like qdrant-client's embedded mode: two writers would corrupt the shards."""
        if self._root_lock is None:
            with self._lock:
                self._claim_folder_locked()

    def _claim_folder_locked(self) -> None:
        if self._root_lock is None:  # no other thread claimed it meanwhile
            if is_local_engine_folder(self.root):
                raise EngineError(
                    f"The folder {self.root} holds data of qdrant-client's embedded engine, not of the edge engine.",
                    fix='Set [qdrant] backend = "local" (or "auto") to use it, or copy it with backend = "local" and '
                        '`rf-mcp migrate -c NAME --to NEW_FOLDER --to-backend edge`.')
            self._root_lock = claim_folder(self.root)

    @property
    def location(self) -> str:
        return f"edge:{self.root}"

    # -- plumbing ---------------------------------------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        if not name or "/" in name or "\\" in name or name.startswith(".") or "\x00" in name or len(name.encode()) > 255:
            raise InputError(f"{name[:80]!r} is not a valid collection name.", fix="Use letters, digits, '-' and '_'.")
        return self.root / name

    def _meta_path(self, name: str) -> Path:
        return self._dir(name) / META

    def _list(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / META).is_file())

    def _read_meta(self, name: str) -> dict[str, Any]:
        """The collection's ``collection.json``, re-read only when the file changed."""
        p = self._meta_path(name)
        try:
            stat = p.stat()
        except FileNotFoundError:
            names = self._list()
            raise InputError(f"Collection {name!r} does not exist (existing: {names or 'none'}).",
                             fix="Create it with `rf-mcp index`, or name an existing collection.") from None
        stamp = stat.st_mtime_ns + stat.st_size / 1e12 + stat.st_ino / 1e18
        cached = self._meta_cache.get(name)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            meta = json.loads(p.read_text(encoding="utf-8"))
            if not isinstance(meta, dict) or not isinstance(meta.get("vectors"), list):
                raise ValueError("no vector list")
        except (ValueError, UnicodeDecodeError) as exc:
            raise EngineError(f"The description of collection {name!r} ({p}) is corrupt ({type(exc).__name__}).",
                              fix="Restore collection.json from a backup; the shard next to it is untouched.") from None
        self._meta_cache[name] = (stamp, meta)
        return meta

    @contextmanager
    def _file_lock(self, name: str) -> Iterator[None]:
        self._dir(name).mkdir(parents=True, exist_ok=True)
        with open(self._dir(name) / ".lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _write_meta(self, name: str, meta: dict[str, Any]) -> None:
        p = self._meta_path(name)
        tmp = p.with_suffix(".json.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(json.dumps(meta))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, p)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise EngineError(f"Could not write {p}: {exc.strerror or exc}.",
                              fix="Free disk space or fix the folder's permissions; the previous file is intact.") from None
        self._meta_cache.pop(name, None)

    def _shard(self, name: str) -> Any:
        shard = self._shards.get(name)
        if shard is not None:
            return shard
        with self._lock:
            if name not in self._shards:
                self._read_meta(name)
                # opening rewrites the shard's config and replays its journal (a fraction of the shard at most)
                ensure_free_bytes(self.root, 0, f"opening collection {name!r}")
                self._shards[name] = _edge().EdgeShard.load(str(self._dir(name) / "shard"))
            return self._shards[name]

    def _describe_error(self, exc: Exception) -> EngineError:
        return EngineError(f"The edge engine refused the request: {str(exc)[:500]}", fix="Check the collection and arguments.")

    def _call(self, fn: Callable[..., T], *args: Any, write: bool = False) -> T:
        self._claim_folder()
        if write:
            with self._lock:
                return guarded(fn, self._describe_error, *args)
        return guarded(fn, self._describe_error, *args)

    async def _run(self, fn: Callable[..., T], *args: Any, write: bool = False) -> T:
        return await anyio.to_thread.run_sync(partial(self._call, fn, *args, write=write))

    async def close(self) -> None:
        with self._lock:
            for shard in self._shards.values():
                shard.close()
            self._shards.clear()
            if self._root_lock is not None:
                self._root_lock.close()  # releases the folder
                self._root_lock = None

    # -- collections --------------------------------------------------------------------------------------
    async def list_collections(self) -> list[str]:
        return await self._run(self._list)

    async def exists(self, collection: str) -> bool:
        return await self._run(lambda: self._meta_path(collection).is_file())

    async def describe(self, collection: str) -> CollectionInfo:
        def describe() -> CollectionInfo:  # one worker-thread hop: this runs on every search
            meta = self._read_meta(collection)
            info = self._shard(collection).info()  # 0.004 ms; an exact count takes 0.4 ms at 5k
            return CollectionInfo(name=collection, points_count=info.points_count,
                                  vectors=[VectorInfo(**v) for v in meta["vectors"]],
                                  indexed_vectors=info.indexed_vectors_count,
                                  payload_indexes=sorted(info.payload_schema))

        return await self._run(describe)

    async def create_collection(self, collection: str, spec: CollectionSpec) -> None:
        qe = _edge()

        def create() -> None:
            with self._file_lock(collection):
                if self._meta_path(collection).is_file():
                    raise InputError(f"Collection {collection!r} already exists.", fix="Use another name.")
                shard_dir = self._dir(collection) / "shard"
                if shard_dir.exists():  # data without its description: never overwrite it
                    raise InputError(
                        f"The folder of collection {collection!r} holds a shard but no {META}: refusing to create the "
                        "collection over existing data.",
                        fix=f"Restore {self._meta_path(collection)} from a backup, or move {shard_dir} away first.")
                ensure_free_bytes(self.root, 0, f"creating collection {collection!r}")
                params = qe.EdgeVectorParams(size=spec.dim, distance=getattr(qe.Distance, spec.distance))
                sparse = {n: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf) for n in spec.sparse} or None
                hnsw = qe.HnswIndexConfig(m=spec.hnsw_m, ef_construct=EF_CONSTRUCT, full_scan_threshold=FULL_SCAN_KB)
                config = qe.EdgeConfig(vectors={spec.vector_name: params}, sparse_vectors=sparse, hnsw_config=hnsw,
                                       # `optimize` indexes every segment: when to call it is our threshold's call
                                       optimizers=qe.EdgeOptimizersConfig(indexing_threshold=1))
                self._shards[collection] = qe.EdgeShard.create(str(shard_dir), config)
                vectors = [{"name": spec.vector_name, "kind": "dense", "dim": spec.dim, "distance": spec.distance}]
                vectors += [{"name": n, "kind": "sparse", "modifier": "idf"} for n in spec.sparse]
                self._write_meta(collection, {"vectors": vectors, "metadata": {}})

        await self._run(create, write=True)

    async def add_sparse_vector(self, collection: str, name: str) -> None:
        qe = _edge()

        def add() -> None:
            with self._file_lock(collection):
                meta = self._read_meta(collection)
                if any(v["name"] == name and v.get("kind") == "sparse" for v in meta["vectors"]):
                    return
                if any(v["name"] == name for v in meta["vectors"]):
                    raise InputError(f"Vector {name!r} of {collection!r} is dense, not a BM25 sparse vector.",
                                     fix="Set [collection].sparse_vector to another name (default \"bm25\").")
                shard = self._shard(collection)
                ensure_free_bytes(self.root, 0, f"adding the sparse vector {name!r} to {collection!r}")
                shard.update(qe.UpdateOperation.create_sparse_vector(name, modifier=qe.Modifier.Idf))
                shard.flush()
                self._write_meta(collection, {**meta, "vectors": [*meta["vectors"],
                                                                  {"name": name, "kind": "sparse", "modifier": "idf"}]})

        await self._run(add, write=True)

    @staticmethod
    def _vectors(vectors: Any) -> dict[str, Any]:
        qe = _edge()
        return {n: qe.SparseVector(list(v.indices), list(v.values)) if isinstance(v, SparseVector)
                else [float(x) for x in v] for n, v in vectors.items()}

    async def upsert(self, collection: str, points: Sequence[PointInput]) -> None:
        qe = _edge()
        structs = [qe.Point(check_ids([p.id])[0], self._vectors(p.vectors), p.payload or {}) for p in points]

        def write() -> None:
            ensure_free_space(self.root, points)
            shard = self._shard(collection)
            shard.update(qe.UpdateOperation.upsert_points(structs))
            shard.flush()

        await self._run(write, write=True)

    async def update_vectors(self, collection: str, points: Sequence[PointInput]) -> None:
        qe = _edge()
        pv = [qe.PointVectors(check_ids([p.id])[0], self._vectors(p.vectors)) for p in points]

        def write() -> None:
            ensure_free_space(self.root, points)
            shard = self._shard(collection)
            shard.update(qe.UpdateOperation.update_vectors(pv))
            shard.flush()

        await self._run(write, write=True)

    async def delete(self, collection: str, ids: Sequence[PointId]) -> None:
        qe = _edge()
        wanted = check_ids(ids)

        def write() -> None:
            shard = self._shard(collection)
            shard.update(qe.UpdateOperation.delete_points(wanted))
            shard.flush()

        await self._run(write, write=True)

    async def count(self, collection: str) -> int:
        qe = _edge()
        return await self._run(lambda: self._shard(collection).count(qe.CountRequest(exact=True)))

    # -- search -----------------------------------------------------------------------------------------------
    def _query(self, collection: str, q: Any, flt: Filter | None) -> tuple[Any, Filter | None]:
        """The edge query for a port query; point-id feedback examples become vectors plus an exclusion."""
        qe = _edge()
        if isinstance(q, Nearest):
            return qe.Query.Nearest([float(x) for x in q.vector], using=q.using), flt
        if isinstance(q, SparseNearest):
            return qe.Query.Nearest(qe.SparseVector(list(q.vector.indices), list(q.vector.values)), using=q.using), flt
        assert isinstance(q, RelevanceFeedback)
        ids = split_feedback(q.feedback)
        stored: dict[PointId, Any] = {}
        if ids:
            for rec in self._shard(collection).retrieve(ids, with_payload=False, with_vector=[q.using]):
                v = rec.vector
                stored[point_id(rec.id)] = v.get(q.using) if isinstance(v, dict) else v
        items = [qe.FeedbackItem(v, s) for v, s in feedback_vectors(q.feedback, stored, collection)]
        a, b, c = q.weights
        query = qe.Query.FeedbackNaive(qe.FeedbackNaiveQuery([float(x) for x in q.target], items,
                                                             qe.NaiveFeedbackStrategy(a, b, c)), using=q.using)
        return query, Filter.combine(flt, exclude=ids)

    def _points(self, raw: Sequence[Any], with_vector: str | None) -> list[Point]:
        out = []
        for p in raw:
            vector = None
            if with_vector is not None and p.vector is not None:
                v = p.vector.get(with_vector) if isinstance(p.vector, dict) else p.vector
                vector = None if v is None else [float(x) for x in v]
            out.append(Point(id=point_id(p.id), score=float(getattr(p, "score", 0.0) or 0.0), payload=p.payload or {},
                             vector=vector))
        return out

    def _layer(self, collection: str, q: Any, flt: Filter | None, params: SearchParams | None
               ) -> tuple[Any, Filter | None, list[Any] | None]:
        """One level of a query: the edge query, its filter and its prefetches (each with its own parameters). A level
        with prefetches gets none: qdrant-edge-py 0.9.0 applies them to every prefetch below it, over their own
        (measured: an RF rescoring sent with hnsw_ef=4096 ran its 100-neighbour searches at 4096, 34 ms for 16)."""
        qe = _edge()
        if not isinstance(q, Fusion | Rescore):
            query, flt = self._query(collection, q, flt)
            return query, flt, None
        prefetches = []
        for p in q.prefetch:
            inner, inner_filter, nested = self._layer(collection, p.query, p.filter, p.params or params)
            prefetches.append(qe.Prefetch(limit=p.limit, query=inner, prefetches=nested, filter=to_filter(inner_filter),
                                          params=None if nested else _params(p.params or params)))
        if isinstance(q, Fusion):
            return qe.Fusion.Rrf(k=RRF_K), flt, prefetches
        query, flt = self._query(collection, q.query, flt)
        return query, flt, prefetches

    def _query_sync(self, collection: str, request: QueryRequest) -> list[Point]:
        qe = _edge()
        q = request.query
        params = _params(request.params)
        query, flt, prefetches = self._layer(collection, q, request.filter, request.params)
        req = qe.QueryRequest(limit=request.limit, query=query, prefetches=prefetches, filter=to_filter(flt),
                              with_payload=True, params=None if prefetches else params,
                              with_vector=[request.with_vector] if request.with_vector is not None else False)
        return self._points(self._shard(collection).query(req), request.with_vector)

    async def query(self, collection: str, request: QueryRequest) -> list[Point]:
        return await self._run(self._query_sync, collection, request)

    async def retrieve(self, collection: str, ids: Sequence[PointId], *, with_vector: str | None = None) -> list[Point]:
        wanted = check_ids(ids)

        def get() -> list[Point]:
            recs = self._shard(collection).retrieve(wanted, with_payload=True,
                                                    with_vector=[with_vector] if with_vector is not None else False)
            return self._points(recs, with_vector)

        return await self._run(get)

    async def scroll(self, collection: str, *, offset: PointId | None = None, limit: int = 256,
                     with_vector: str | None = None, filter: Filter | None = None) -> tuple[list[Point], PointId | None]:
        qe = _edge()

        def page() -> tuple[list[Point], PointId | None]:
            recs, nxt = self._shard(collection).scroll(qe.ScrollRequest(
                offset=offset, limit=limit, filter=to_filter(filter), with_payload=True,
                with_vector=[with_vector] if with_vector is not None else False))
            return self._points(recs, with_vector), None if nxt is None else point_id(nxt)

        return await self._run(page)

    async def create_payload_index(self, collection: str, key: str,
                                   schema: Literal["keyword", "integer", "float", "bool"]) -> None:
        qe = _edge()
        kind = {"keyword": qe.PayloadSchemaType.Keyword, "integer": qe.PayloadSchemaType.Integer,
                "float": qe.PayloadSchemaType.Float, "bool": qe.PayloadSchemaType.Bool}[schema]

        def index() -> None:
            shard = self._shard(collection)
            ensure_free_bytes(self.root, folder_bytes(self._dir(collection) / "shard") // 4,
                              f"a payload index on {key!r}")
            shard.update(qe.UpdateOperation.create_field_index(key, kind))
            shard.flush()

        await self._run(index, write=True)

    async def optimize(self, collection: str) -> bool:
        """Build the HNSW index (blocking: qdrant-edge-py 0.9.0 holds the GIL while it runs)."""
        def build() -> bool:
            shard = self._shard(collection)
            # the index is built beside the segments it replaces: about as much again as the shard holds
            ensure_free_bytes(self.root, folder_bytes(self._dir(collection) / "shard"), "building the HNSW index")
            return bool(shard.optimize())

        return await self._run(build, write=True)

    # -- metadata (calibration profiles) ----------------------------------------------------------------------
    async def get_metadata(self, collection: str) -> dict[str, Any]:
        return dict((await self._run(self._read_meta, collection)).get("metadata") or {})

    async def set_metadata(self, collection: str, entries: dict[str, Any]) -> None:
        def merge() -> None:
            with self._file_lock(collection):
                meta = self._read_meta(collection)
                data = dict(meta.get("metadata") or {})
                for k, v in entries.items():
                    if v is None:
                        data.pop(k, None)
                    else:
                        data[k] = v
                self._write_meta(collection, {**meta, "metadata": data})

        await self._run(merge, write=True)
