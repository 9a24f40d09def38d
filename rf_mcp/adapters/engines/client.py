"""The engine port on qdrant-client: a Qdrant server (url) or qdrant-client's embedded engine (a folder).

One sync ``QdrantClient``; every call runs in a worker thread. The embedded engine is not thread-safe, so its
calls are serialised by a lock; a server client is thread-safe and runs calls in parallel.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

import anyio
from qdrant_client import QdrantClient, models

from rf_mcp.adapters.engines._shared import (
    check_ids,
    claim_folder,
    ensure_free_space,
    guarded,
    is_edge_folder,
    point_id,
)
from rf_mcp.config import QdrantSettings
from rf_mcp.errors import EngineError, InputError
from rf_mcp.ports import (
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
log = logging.getLogger("rf_mcp.engine")
MIN_SERVER = (1, 17)  # RelevanceFeedbackQuery became public in Qdrant 1.17
MIN_SERVER_NEW_VECTOR = (1, 18)  # PUT /collections/{name}/vectors/{vector}: a vector added to an existing collection
_SCHEMAS = {"keyword": models.PayloadSchemaType.KEYWORD, "integer": models.PayloadSchemaType.INTEGER,
            "float": models.PayloadSchemaType.FLOAT, "bool": models.PayloadSchemaType.BOOL}


# -- request translation (also used by the congruence tests to check the request shapes) ----------------------
def to_filter(flt: Filter | None) -> models.Filter | None:
    if flt is None:
        return None

    def cond(c: Any) -> Any:
        if isinstance(c, HasId):
            return models.HasIdCondition(has_id=list(c.has_id))
        if isinstance(c, Filter):
            return to_filter(c)
        assert isinstance(c, FieldCondition)
        if c.range is not None:
            r = c.range
            return models.FieldCondition(key=c.key, range=models.Range(gt=r.gt, gte=r.gte, lt=r.lt, lte=r.lte))
        m = c.match
        assert m is not None
        if m.value is not None:
            match: Any = models.MatchValue(value=m.value)
        elif m.any is not None:
            match = models.MatchAny(any=list(m.any))  # type: ignore[arg-type]  # one kind per list (checked by the port)
        else:
            match = models.MatchExcept.model_validate({"except": list(m.except_ or [])})
        return models.FieldCondition(key=c.key, match=match)

    return models.Filter(must=[cond(c) for c in flt.must] or None, should=[cond(c) for c in flt.should] or None,
                         must_not=[cond(c) for c in flt.must_not] or None)


def _sparse(v: SparseVector) -> models.SparseVector:
    return models.SparseVector(indices=list(v.indices), values=list(v.values))


def to_query(q: Any) -> Any:
    if isinstance(q, Nearest):
        return [float(x) for x in q.vector]
    if isinstance(q, SparseNearest):
        return _sparse(q.vector)
    assert isinstance(q, RelevanceFeedback)
    a, b, c = q.weights
    return models.RelevanceFeedbackQuery(relevance_feedback=models.RelevanceFeedbackInput(
        target=[float(x) for x in q.target],
        feedback=[models.FeedbackItem(example=f.example if isinstance(f.example, int | str)
                                      else [float(x) for x in f.example], score=float(f.score)) for f in q.feedback],
        strategy=models.NaiveFeedbackStrategy(naive=models.NaiveFeedbackStrategyParams(a=a, b=b, c=c))))


def _using(q: Any) -> str | None:
    return getattr(q, "using", None) or None


def _with_vectors(name: str | None) -> bool | list[str]:
    """``with_vectors`` for one dense vector ("" is the unnamed default vector)."""
    if name is None:
        return False
    return [name] if name else True


def _params(p: SearchParams | None) -> models.SearchParams | None:
    return None if p is None else models.SearchParams(hnsw_ef=p.hnsw_ef, exact=p.exact)


def to_request(request: QueryRequest) -> dict[str, Any]:
    """The ``query_points`` keyword arguments for a port request."""
    q = request.query
    kwargs: dict[str, Any] = {"limit": request.limit, "query_filter": to_filter(request.filter),
                              "with_payload": True, "with_vectors": _with_vectors(request.with_vector),
                              "search_params": _params(request.params)}
    if isinstance(q, Fusion | Rescore):
        kwargs["prefetch"] = _prefetches(q, request.params)
        kwargs["search_params"] = None  # each prefetch carries its own
        kwargs["query"] = models.FusionQuery(fusion=models.Fusion.RRF) if isinstance(q, Fusion) else to_query(q.query)
        kwargs["using"] = None if isinstance(q, Fusion) else _using(q.query)
    else:
        kwargs["query"] = to_query(q)
        kwargs["using"] = _using(q)
    return kwargs


def _prefetches(q: Fusion | Rescore, params: SearchParams | None) -> list[models.Prefetch]:
    """The prefetches of a fusion or a rescoring, nested ones included, each with its own search parameters."""
    out = []
    for p in q.prefetch:
        inner = p.query
        own = p.params or params
        if isinstance(inner, Rescore):  # a level with prefetches searches nothing itself: no parameters
            out.append(models.Prefetch(prefetch=_prefetches(inner, own), query=to_query(inner.query),
                                       using=_using(inner.query), limit=p.limit, filter=to_filter(p.filter)))
        else:
            out.append(models.Prefetch(query=to_query(inner), using=_using(inner), limit=p.limit,
                                       filter=to_filter(p.filter), params=_params(own)))
    return out


def _vector_out(raw: Any, name: str | None) -> list[float] | None:
    if name is None or raw is None:
        return None
    v = raw.get(name) if isinstance(raw, dict) else raw
    return None if v is None else [float(x) for x in v]


class ClientEngine(Engine):
    """qdrant-client's ``QdrantClient``: a server (``url``) or its embedded, pure-Python engine (``path``)."""

    def __init__(self, settings: QdrantSettings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._client: QdrantClient | None = None
        self._folder_lock: IO[str] | None = None
        self._server_version: tuple[int, int] | None = None  # a server's (major, minor), once connected

    @property
    def location(self) -> str:
        return self.settings.location

    @property
    def _remote(self) -> bool:
        return bool(self.settings.url)

    def _connect(self) -> QdrantClient:
        with self._lock:
            if self._client is None:
                s = self.settings
                try:
                    if s.url:
                        key = s.api_key.get_secret_value() if s.api_key else None
                        if key and s.url.startswith("http://"):
                            log.warning("The Qdrant API key is sent over plain http to %s: use https beyond this "
                                        "machine.", self.location)
                        with warnings.catch_warnings():  # said above, once, in our words
                            warnings.filterwarnings("ignore", "Api key is used with an insecure connection")
                            client = QdrantClient(url=s.url, api_key=key, timeout=max(1, int(s.timeout)),
                                                  check_compatibility=False)  # checked below, for what RF needs
                        self._check_server(client)
                        self._client = client
                    elif s.path == ":memory:":  # nothing persisted (experiments)
                        self._client = QdrantClient(location=":memory:")
                    else:
                        path = Path(s.data_path)
                        if is_edge_folder(path):
                            raise EngineError(
                                f"The folder {path} holds data of the edge engine, not of qdrant-client's engine.",
                                fix='Set [qdrant] backend = "edge" (or "auto") to use it.')
                        self._folder_lock = claim_folder(path)
                        try:
                            self._client = QdrantClient(path=str(path))
                        except BaseException:
                            self._folder_lock.close()
                            self._folder_lock = None
                            raise
                except RuntimeError as exc:  # the embedded folder is locked by another process
                    raise EngineError(
                        f"Cannot open the embedded Qdrant folder {s.data_path}: {exc}",
                        fix="Stop the other rf-mcp process using it, or run a Qdrant server and set QDRANT_URL.",
                    ) from None
            return self._client

    def _check_server(self, client: QdrantClient) -> None:
        """The server must answer, and be recent enough for the relevance-feedback query (Qdrant 1.17)."""
        version = guarded(lambda: client.info().version, self._map_error)
        parts = [int(p) for p in version.split(".")[:2] if p.isdigit()]
        self._server_version = (parts[0], parts[1]) if len(parts) == 2 else None
        if len(parts) == 2 and tuple(parts) < MIN_SERVER:
            client.close()
            raise EngineError(f"Qdrant at {self.location} runs version {version}; the relevance-feedback query "
                              f"needs {MIN_SERVER[0]}.{MIN_SERVER[1]} or newer.", fix="Upgrade the Qdrant server.")

    def _map_error(self, exc: Exception) -> EngineError:
        text = str(exc) or type(exc).__name__
        key = self.settings.api_key.get_secret_value() if self.settings.api_key else None
        if key:
            text = text.replace(key, "***")
        if self._remote and any(k in type(exc).__name__ for k in ("ResponseHandling", "Connect", "Timeout", "RpcError")):
            return EngineError(f"Qdrant at {self.location} did not answer: {text}",
                               fix="Check that the server runs and QDRANT_URL / QDRANT_API_KEY are right.")
        return EngineError(f"Qdrant refused the request: {text[:500]}", fix="Check the collection and arguments.")

    def _call(self, fn: Callable[[QdrantClient], T]) -> T:
        client = self._connect()
        if self._remote:
            return guarded(fn, self._map_error, client)
        with self._lock:
            return guarded(fn, self._map_error, client)

    async def _run(self, fn: Callable[[QdrantClient], T]) -> T:
        return await anyio.to_thread.run_sync(partial(self._call, fn))

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await anyio.to_thread.run_sync(client.close)
        if self._folder_lock is not None:
            self._folder_lock.close()  # releases the folder
            self._folder_lock = None

    # -- collections --------------------------------------------------------------------------------------
    async def list_collections(self) -> list[str]:
        res = await self._run(lambda c: c.get_collections())
        return sorted(col.name for col in res.collections)

    async def exists(self, collection: str) -> bool:
        return await self._run(lambda c: c.collection_exists(collection))

    def _missing(self, c: QdrantClient, collection: str) -> InputError:
        names = sorted(col.name for col in c.get_collections().collections)
        return InputError(f"Collection {collection!r} does not exist (existing: {names or 'none'}).",
                          fix="Create it with `rf-mcp index`, or name an existing collection.")

    async def describe(self, collection: str) -> CollectionInfo:
        def describe(c: QdrantClient) -> CollectionInfo:
            if not c.collection_exists(collection):
                raise self._missing(c, collection)
            info = c.get_collection(collection)
            params = info.config.params
            vectors: list[VectorInfo] = []
            raw = params.vectors
            items = {"": raw}.items() if isinstance(raw, models.VectorParams) else (raw or {}).items()
            for name, vp in items:
                kind: Literal["dense", "multi"] = "multi" if vp.multivector_config is not None else "dense"
                vectors.append(VectorInfo(name=name, kind=kind, dim=vp.size, distance=vp.distance.value))
            for name, sp in (params.sparse_vectors or {}).items():
                idf = sp.modifier == models.Modifier.IDF
                vectors.append(VectorInfo(name=name, kind="sparse", modifier="idf" if idf else None))
            count = info.points_count
            if count is None:
                count = c.count(collection, exact=True).count
            return CollectionInfo(name=collection, points_count=count, vectors=vectors,
                                  indexed_vectors=info.indexed_vectors_count,
                                  payload_indexes=sorted(info.payload_schema or {}))

        return await self._run(describe)

    async def create_collection(self, collection: str, spec: CollectionSpec) -> None:
        def create(c: QdrantClient) -> None:
            if c.collection_exists(collection):
                raise InputError(f"Collection {collection!r} already exists at {self.location}.", fix="Use another name.")
            stored = Path(self.settings.data_path) / "collection" / collection
            if not self.settings.url and self.settings.path != ":memory:" and stored.exists():
                raise InputError(  # data without its description (meta.json lost or edited): never overwrite it
                    f"{stored} holds data of a collection {collection!r} that the folder's meta.json does not describe: "
                    "refusing to create the collection over existing data.",
                    fix=f"Restore {Path(self.settings.data_path) / 'meta.json'} from a backup, or move {stored} away "
                        "first.")
            params = models.VectorParams(size=spec.dim, distance=models.Distance(spec.distance))
            vectors: Any = {spec.vector_name: params} if spec.vector_name else params
            sparse = {n: models.SparseVectorParams(modifier=models.Modifier.IDF) for n in spec.sparse} or None
            c.create_collection(collection, vectors_config=vectors, sparse_vectors_config=sparse,
                                hnsw_config=models.HnswConfigDiff(m=spec.hnsw_m))

        await self._run(create)

    async def add_sparse_vector(self, collection: str, name: str) -> None:
        def add(c: QdrantClient) -> None:
            if not c.collection_exists(collection):
                raise self._missing(c, collection)
            params = c.get_collection(collection).config.params
            if name in (params.sparse_vectors or {}):
                return
            dense = params.vectors
            if name in (dense if isinstance(dense, dict) else {"": dense}):
                raise InputError(f"Vector {name!r} of {collection!r} is dense, not a BM25 sparse vector.",
                                 fix="Set [collection].sparse_vector to another name (default \"bm25\").")
            have = self._server_version
            if self._remote and have is not None and have < MIN_SERVER_NEW_VECTOR:
                need = ".".join(map(str, MIN_SERVER_NEW_VECTOR))
                raise EngineError(
                    f"Qdrant at {self.location} runs version {have[0]}.{have[1]}: adding the sparse vector {name!r} to "
                    f"the existing collection {collection!r} needs {need} or newer. Nothing was changed.",
                    fix=f"Upgrade the Qdrant server to {need}+; or set [collection].sparse_vector = \"\" (BM25 term "
                        "statistics only, no hybrid search).")
            c.create_vector_name(collection, name, models.SparseVectorNameConfig(
                sparse=models.SparseVectorConfig(modifier=models.Modifier.IDF)))

        await self._run(add)

    @staticmethod
    def _vectors(vectors: Any) -> Any:
        out: dict[str, Any] = {}
        for name, v in vectors.items():
            out[name] = _sparse(v) if isinstance(v, SparseVector) else [float(x) for x in v]
        return out.get("") if set(out) == {""} else out

    async def upsert(self, collection: str, points: Sequence[PointInput]) -> None:
        structs = [models.PointStruct(id=check_ids([p.id])[0], vector=self._vectors(p.vectors), payload=p.payload or {})
                   for p in points]
        self._check_space(points)
        await self._run(lambda c: c.upsert(collection, points=structs, wait=True))

    async def update_vectors(self, collection: str, points: Sequence[PointInput]) -> None:
        pv = [models.PointVectors(id=check_ids([p.id])[0], vector=self._vectors(p.vectors)) for p in points]
        self._check_space(points)
        await self._run(lambda c: c.update_vectors(collection, points=pv, wait=True))

    async def delete(self, collection: str, ids: Sequence[PointId]) -> None:
        selector = models.PointIdsList(points=list[models.ExtendedPointId](check_ids(ids)))
        await self._run(lambda c: c.delete(collection, points_selector=selector, wait=True))

    def _check_space(self, points: Sequence[PointInput]) -> None:
        if not self._remote and self.settings.path != ":memory:":
            ensure_free_space(Path(self.settings.data_path), points)

    async def count(self, collection: str) -> int:
        return await self._run(lambda c: c.count(collection, exact=True).count)

    # -- search ---------------------------------------------------------------------------------------------
    async def query(self, collection: str, request: QueryRequest) -> list[Point]:
        if not self._remote and request.params is not None:  # the local mode always scans: parameters do nothing
            request = replace(request, params=None)
        kwargs = to_request(request)
        res = await self._run(lambda c: c.query_points(collection, **kwargs))
        return [Point(id=point_id(p.id), score=float(p.score), payload=p.payload or {},
                      vector=_vector_out(p.vector, request.with_vector)) for p in res.points]

    async def retrieve(self, collection: str, ids: Sequence[PointId], *, with_vector: str | None = None) -> list[Point]:
        wanted = check_ids(ids)
        recs = await self._run(lambda c: c.retrieve(collection, ids=wanted, with_payload=True,
                                                    with_vectors=_with_vectors(with_vector)))
        return [Point(id=point_id(r.id), payload=r.payload or {}, vector=_vector_out(r.vector, with_vector)) for r in recs]

    async def scroll(self, collection: str, *, offset: PointId | None = None, limit: int = 256,
                     with_vector: str | None = None, filter: Filter | None = None) -> tuple[list[Point], PointId | None]:
        flt = to_filter(filter)
        recs, nxt = await self._run(lambda c: c.scroll(collection, limit=limit, offset=offset, with_payload=True,
                                                       with_vectors=_with_vectors(with_vector), scroll_filter=flt))
        points = [Point(id=point_id(r.id), payload=r.payload or {}, vector=_vector_out(r.vector, with_vector))
                  for r in recs]
        return points, None if nxt is None else point_id(nxt)

    async def create_payload_index(self, collection: str, key: str,
                                   schema: Literal["keyword", "integer", "float", "bool"]) -> None:
        if not self._remote:  # qdrant-client's embedded engine keeps no payload indexes (it filters by scanning)
            return
        await self._run(lambda c: c.create_payload_index(collection, key, field_schema=_SCHEMAS[schema], wait=True))

    async def optimize(self, collection: str) -> bool:
        """A server builds its HNSW index by itself; the embedded engine has none."""
        return False

    # -- metadata -----------------------------------------------------------------------------------------
    async def get_metadata(self, collection: str) -> dict[str, Any]:
        info = await self._run(lambda c: c.get_collection(collection))
        return dict(info.config.metadata or {})

    async def set_metadata(self, collection: str, entries: dict[str, Any]) -> None:
        await self._run(lambda c: c.update_collection(collection, metadata=entries))
